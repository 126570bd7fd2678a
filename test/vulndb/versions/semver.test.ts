import fc from 'fast-check';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { compareSemverVersions, isValidSemverVersion } from '../../../src/vulndb/versions/semver.js';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['1.0.0', '=', '1.0.0'],
  ['1.0.0', '<', '2.0.0'],
  ['2.0.0', '<', '2.1.0'],
  ['2.1.0', '<', '2.1.1'],
  ['1.9.0', '<', '1.10.0'],
  ['1.0.9', '<', '1.0.10'],
  ['0.0.1', '<', '0.1.0'],
  ['1.0.0-alpha', '<', '1.0.0'],
  ['1.0.0-0', '<', '1.0.0'],
  ['1.0.0-rc.1', '<', '1.0.0'],
  ['1.0.0', '<', '1.0.1-0'],
  ['1.0.0-alpha', '<', '1.0.0-alpha.1'],
  ['1.0.0-alpha.1', '<', '1.0.0-alpha.beta'],
  ['1.0.0-alpha.beta', '<', '1.0.0-beta'],
  ['1.0.0-beta', '<', '1.0.0-beta.2'],
  ['1.0.0-beta.2', '<', '1.0.0-beta.11'],
  ['1.0.0-beta.11', '<', '1.0.0-rc.1'],
  ['1.0.0-2', '<', '1.0.0-10'],
  ['1.0.0-10', '<', '1.0.0-a'],
  ['1.0.0-a10', '<', '1.0.0-a2'],
  ['1.0.0-A', '<', '1.0.0-a'],
  ['1.0.0-Z', '<', '1.0.0-a'],
  ['1.0.0--', '<', '1.0.0-0a'],
  ['1.0.0-x-y', '>', '1.0.0-x.y'],
  ['1.0.0-0.0', '>', '1.0.0-0'],
  ['1.0.0-rc.1+build.1', '=', '1.0.0-rc.1+build.2'],
  ['1.0.0+build', '=', '1.0.0'],
  ['1.0.0+001', '=', '1.0.0+1'],
  ['1.0.0+20130313144700', '<', '1.0.1'],
  ['v1.2.3', '=', '1.2.3'],
  ['v1.2.3', '<', 'v1.2.4'],
  ['v2.0.0-beta.1', '<', '2.0.0'],
  ['10.0.0', '>', '9.99.99'],
  ['9007199254740991.0.0', '>', '9007199254740990.9.9'],
  ['0.0.0', '<', '0.0.1-0'],
  ['1.2.3-beta.4', '>', '1.2.3-beta.3.9'],
  ['1.2.3-beta.4.0', '>', '1.2.3-beta.4'],
  ['1.2.3-1.2.3', '<', '1.2.3-1.2.4'],
  ['1.2.3-1.02a', '<', '1.2.3-1.1a'],
  ['4.17.20', '<', '4.17.21'],
  ['0.10.0', '>', '0.9.9'],
  ['3.0.0-next.0', '<', '3.0.0-rc.0'],
  ['1.0.0-canary.2', '<', '1.0.0-canary.10'],
  ['1.0.0-canary.a', '>', '1.0.0-canary.10'],
];

const chain = [
  '0.0.0-0',
  '0.0.0',
  '0.0.1',
  '0.1.0-alpha',
  '0.1.0',
  '0.9.10',
  '0.10.0',
  '1.0.0-0',
  '1.0.0-1',
  '1.0.0-alpha',
  '1.0.0-alpha.1',
  '1.0.0-alpha.beta',
  '1.0.0-beta',
  '1.0.0-beta.2',
  '1.0.0-beta.11',
  '1.0.0-rc.1',
  ['1.0.0', 'v1.0.0', '1.0.0+abc', '1.0.0+exp.sha.5114f85'],
  '1.0.1',
  '1.1.0',
  '2.0.0',
  '10.0.0',
];

const cases = [...pairs, ...chainCases(chain)];

describe('compareSemverVersions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(compareSemverVersions(a, b)).toBe(expected[op]);
    expect(compareSemverVersions(b, a)).toBe(expected[flip[op]]);
  });

  it.each([
    '',
    '1',
    '1.2',
    '01.2.3',
    '1.02.3',
    '1.2.03',
    '1.2.3-01',
    '1.2.3-',
    '1.2.3+',
    '1.2.3-a..b',
    '=1.2.3',
    'V1.2.3',
    'vv1.2.3',
    ' 1.2.3',
    '1.2.3 ',
    '1.2.3.4',
    '1.2.3-béta',
    'latest',
    '*',
    '^1.2.3',
    '1.x',
    '99999999999999999.0.0',
  ])('rejects %j', (v) => {
    expect(isValidSemverVersion(v)).toBe(false);
    expect(() => compareSemverVersions(v, '1.0.0')).toThrow(VersionError);
    expect(() => compareSemverVersions('1.0.0', v)).toThrow(VersionError);
  });

  it('errors carry the shared code', () => {
    try {
      compareSemverVersions('nope', '1.0.0');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(VersionError);
      expect((e as VersionError).code).toBe('VERSION_INVALID');
    }
  });
});

const ident = fc.oneof(
  fc.nat({ max: 30 }).map(String),
  fc.stringMatching(/^[0-9A-Za-z-]{1,6}$/).filter((s) => !/^[0-9]+$/.test(s) || !/^0[0-9]/.test(s)),
);
const semverArb = fc
  .tuple(
    fc.nat({ max: 12 }),
    fc.nat({ max: 12 }),
    fc.nat({ max: 12 }),
    fc.array(ident, { maxLength: 3 }),
    fc.array(fc.stringMatching(/^[0-9A-Za-z-]{1,4}$/), { maxLength: 2 }),
  )
  .map(
    ([ma, mi, pa, pre, build]) =>
      `${ma}.${mi}.${pa}${pre.length ? `-${pre.join('.')}` : ''}${build.length ? `+${build.join('.')}` : ''}`,
  );

describe('compareSemverVersions properties', () => {
  it('agrees with semver.compare', () => {
    fc.assert(
      fc.property(semverArb, semverArb, (a, b) => {
        expect(compareSemverVersions(a, b)).toBe(semver.compare(a, b));
      }),
      { numRuns: 5000 },
    );
  });

  it('is antisymmetric', () => {
    fc.assert(
      fc.property(semverArb, semverArb, (a, b) => {
        expect(compareSemverVersions(a, b)).toBe(-compareSemverVersions(b, a) || 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(semverArb, semverArb, semverArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareSemverVersions);
        expect(compareSemverVersions(x!, y!)).toBeLessThanOrEqual(0);
        expect(compareSemverVersions(y!, z!)).toBeLessThanOrEqual(0);
        expect(compareSemverVersions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });
});
