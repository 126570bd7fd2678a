import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { compareGoVersions, isValidGoVersion } from '../../../src/vulndb/versions/go.js';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['v1.0.0', '=', '1.0.0'],
  ['v1.2.3', '<', 'v1.2.4'],
  ['v1.9.0', '<', 'v1.10.0'],
  ['v1', '=', 'v1.0.0'],
  ['v1.2', '=', 'v1.2.0'],
  ['v1.2', '<', 'v1.2.1'],
  ['v2', '>', 'v1.99.99'],
  // +incompatible is build metadata and never affects order.
  ['v2.0.0+incompatible', '=', 'v2.0.0'],
  ['v2.0.0+incompatible', '<', 'v2.0.1+incompatible'],
  ['v2.1.0+incompatible', '>', 'v2.0.9'],
  ['v3.0.0-rc.1+incompatible', '<', 'v3.0.0+incompatible'],
  // Pseudo-version forms.
  ['v0.0.0-20191109021931-daa7c04131f5', '<', 'v0.0.0-20200101000000-000000000000'],
  ['v0.0.0-20191109021931-daa7c04131f5', '<', 'v0.0.1'],
  ['v0.0.0-20191109021931-daa7c04131f5', '<', 'v0.0.0'],
  ['v1.2.4-0.20191109021931-daa7c04131f5', '>', 'v1.2.3'],
  ['v1.2.4-0.20191109021931-daa7c04131f5', '<', 'v1.2.4'],
  ['v1.2.4-0.20191109021931-daa7c04131f5', '<', 'v1.2.4-0.20191109021932-aaaaaaaaaaaa'],
  ['v1.2.4-0.20191109021931-daa7c04131f5', '<', 'v1.2.4-alpha'],
  ['v1.2.4-0.20191109021931-daa7c04131f5', '>', 'v1.2.4-0'],
  ['v1.2.3-pre.0.20191109021931-daa7c04131f5', '>', 'v1.2.3-pre'],
  ['v1.2.3-pre.0.20191109021931-daa7c04131f5', '<', 'v1.2.3-pre.1'],
  ['v1.2.3-pre.0.20191109021931-daa7c04131f5', '<', 'v1.2.3'],
  ['v1.2.3-pre.0.20191109021931-daa7c04131f5', '>', 'v1.2.3-pre.0'],
  ['v1.2.3-pre.0.20191109021931-daa7c04131f5', '<', 'v1.2.3-pre.0.20191109021931-daa7c04131f6'],
  ['v0.0.0-20191109021931-daa7c04131f5+incompatible', '=', 'v0.0.0-20191109021931-daa7c04131f5'],
  ['v2.0.1-0.20200101000000-abcdefabcdef+incompatible', '>', 'v2.0.0+incompatible'],
  // Arbitrary-size numbers, compared as Go does (length first).
  ['v123456789012345678901234567890.0.0', '>', 'v99999999999999999999999999999.0.0'],
  ['v1.0.0-123456789012345678901234567890', '>', 'v1.0.0-99999999999999999999999999999'],
  ['v1.0.0-2', '<', 'v1.0.0-10'],
  ['v1.0.0-10', '<', 'v1.0.0-a'],
  ['v1.0.0-Beta', '<', 'v1.0.0-beta'],
  ['v1.0.0-alpha', '<', 'v1.0.0-alpha.0'],
  ['v1.0.0-x-y', '>', 'v1.0.0-x.y'],
  // Toolchain (stdlib) spellings.
  ['go1.19.8', '=', 'v1.19.8'],
  ['go1.19.8', '=', '1.19.8'],
  ['go1.19.8', '<', 'go1.19.9'],
  ['go1.19.10', '>', 'go1.19.9'],
  ['go1.20', '=', 'v1.20.0'],
  ['go1.20', '<', 'go1.20.1'],
  ['go1.21rc2', '=', 'v1.21.0-rc.2'],
  ['go1.21rc2', '=', '1.21.0-rc.2'],
  ['go1.21rc2', '<', 'go1.21.0'],
  ['go1.21rc2', '>', 'go1.21rc1'],
  ['go1.21rc2', '>', 'go1.20.14'],
  ['go1.9beta1', '=', 'v1.9.0-beta.1'],
  ['go1.9beta2', '<', 'go1.9rc1'],
  ['go1.9beta2', '<', 'go1.9'],
  ['go1', '=', 'v1.0.0'],
  ['go1.22.0', '>', 'go1.21.13'],
  ['1.21rc2', '=', 'go1.21rc2'],
  ['v1.21rc2', '=', 'go1.21rc2'],
];

const chain = [
  'v0.0.0-20180101000000-aaaaaaaaaaaa',
  'v0.0.0-20190101000000-aaaaaaaaaaaa',
  ['v0.0.0', 'v0.0', 'v0', '0.0.0'],
  'v0.0.1',
  'v0.1.0',
  'v0.9.0',
  'v0.10.0',
  'v1.0.0-0.20200101000000-abcdefabcdef',
  'v1.0.0-alpha',
  'v1.0.0-alpha.1',
  'v1.0.0-alpha.beta',
  'v1.0.0-beta',
  'v1.0.0-beta.2',
  'v1.0.0-beta.11',
  'v1.0.0-rc.1',
  ['v1.0.0', 'v1', '1.0.0', 'go1', 'v1.0.0+meta'],
  'v1.0.1-0.20200101000000-abcdefabcdef',
  'v1.0.1',
  ['v2.0.0+incompatible', 'v2.0.0'],
  'v2.0.1-0.20210101000000-abcdefabcdef+incompatible',
];

const cases = [...pairs, ...chainCases(chain)];

describe('compareGoVersions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(compareGoVersions(a, b)).toBe(expected[op]);
    expect(compareGoVersions(b, a)).toBe(expected[flip[op]]);
  });

  it.each([
    '',
    'v',
    'go',
    'v01.0.0',
    'v1.01.0',
    'v1.0.0-01',
    'v1.0.0-',
    'v1.0.0+',
    'v1.0.0-a..b',
    'v1.2-pre',
    'v1+meta',
    'v1.2.3.4',
    'V1.2.3',
    ' v1.2.3',
    'v1.2.3 ',
    'latest',
    'go1.21rc',
    'go1.21alpha1',
    'gox1.2',
    'go1.2.3rc1x',
    'v1.0.0-béta',
  ])('rejects %j', (v) => {
    expect(isValidGoVersion(v)).toBe(false);
    expect(() => compareGoVersions(v, 'v1.0.0')).toThrow(VersionError);
    expect(() => compareGoVersions('v1.0.0', v)).toThrow(VersionError);
  });
});

const ident = fc.oneof(
  fc.nat({ max: 20 }).map(String),
  fc.constantFrom(
    'alpha',
    'beta',
    'rc',
    'pre',
    'Z',
    '20191109021931-daa7c04131f5',
    '20200101000000-abcdefabcdef',
  ),
);
const goArb = fc.oneof(
  fc
    .tuple(
      fc.nat({ max: 5 }),
      fc.nat({ max: 5 }),
      fc.nat({ max: 5 }),
      fc.array(ident, { maxLength: 3 }),
      fc.boolean(),
    )
    .map(
      ([ma, mi, pa, pre, inc]) =>
        `v${ma}.${mi}.${pa}${pre.length ? `-${pre.join('.')}` : ''}${inc ? '+incompatible' : ''}`,
    ),
  fc.tuple(fc.nat({ max: 5 }), fc.nat({ max: 5 })).map(([ma, mi]) => `v${ma}.${mi}`),
  fc
    .tuple(
      fc.nat({ max: 22 }),
      fc.option(fc.nat({ max: 9 })),
      fc.option(fc.constantFrom('rc1', 'rc2', 'beta1')),
    )
    .map(([mi, pa, pre]) => (pre !== null ? `go1.${mi}${pre}` : `go1.${mi}${pa !== null ? `.${pa}` : ''}`)),
);

describe('compareGoVersions properties', () => {
  it('is antisymmetric and reflexive', () => {
    fc.assert(
      fc.property(goArb, goArb, (a, b) => {
        expect(compareGoVersions(a, a)).toBe(0);
        expect(compareGoVersions(a, b)).toBe(-compareGoVersions(b, a) || 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(goArb, goArb, goArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareGoVersions);
        expect(compareGoVersions(x!, y!)).toBeLessThanOrEqual(0);
        expect(compareGoVersions(y!, z!)).toBeLessThanOrEqual(0);
        expect(compareGoVersions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });
});
