import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { compareNuGetVersions, isValidNuGetVersion } from '../../../src/vulndb/versions/nuget.js';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['1.0.0-Alpha', '=', '1.0.0-alpha'],
  ['1.0.0-ALPHA.1', '=', '1.0.0-alpha.1'],
  ['1.0.0-beta', '=', '1.0.0-BETA'],
  ['1.0.0-Beta', '>', '1.0.0-alpha'],
  ['1.0.0-alpha', '<', '1.0.0-Beta'],
  ['1.0', '=', '1.0.0'],
  ['1', '=', '1.0.0.0'],
  ['1.0.0', '=', '1.0.0.0'],
  ['1.0.0.1', '>', '1.0.0'],
  ['1.0.0.1', '<', '1.0.1'],
  ['1.0.0.10', '>', '1.0.0.9'],
  ['01.002.0003', '=', '1.2.3'],
  ['1.0.01', '=', '1.0.1'],
  ['1.0.0+build', '=', '1.0.0'],
  ['1.0.0+build.1', '=', '1.0.0+build.2'],
  ['1.0.0-rc.1+sha.abc', '=', '1.0.0-RC.1'],
  ['1.0.0-alpha', '<', '1.0.0'],
  ['1.0.0.0-alpha', '<', '1.0.0'],
  ['1.0.0.1-alpha', '>', '1.0.0'],
  ['1.0.0-alpha', '<', '1.0.0-alpha.1'],
  ['1.0.0-alpha.1', '<', '1.0.0-alpha.beta'],
  ['1.0.0-beta.2', '<', '1.0.0-beta.11'],
  ['1.0.0-beta.02', '=', '1.0.0-beta.2'],
  ['1.0.0-2', '<', '1.0.0-10'],
  ['1.0.0-10', '<', '1.0.0-a'],
  ['1.0.0-a10', '<', '1.0.0-a2'],
  ['1.0.0-beta1', '<', '1.0.0-beta2'],
  ['1.0.0-beta10', '<', '1.0.0-beta2'],
  ['1.0.0-beta-1', '<', '1.0.0-beta1'],
  ['1.0.0-2147483647', '<', '1.0.0-2147483648'],
  // Beyond Int32 a label is not numeric for NuGet, so it sorts after every number.
  ['1.0.0-2147483648', '>', '1.0.0-3'],
  ['1.0.0-2147483648', '>', '1.0.0-100'],
  ['1.0.0-99999999999', '>', '1.0.0-2147483648'],
  ['1.0.0-rc', '>', '1.0.0-preview'],
  ['1.0.0-preview.1', '<', '1.0.0-preview.2'],
  ['1.0.0-preview1-final', '<', '1.0.0-rc1-final'],
  ['6.0.0-preview.7.21377.19', '<', '6.0.0-rc.1.21451.13'],
  ['6.0.0-rc.2.21480.5', '<', '6.0.0'],
  ['4.5.1', '>', '4.5.0'],
  ['4.10.0', '>', '4.9.9.9'],
  ['13.0.1', '>', '12.0.3'],
  ['2.0.0', '>', '1.999.999.999'],
  ['1.0.0-x', '<', '1.0.0-X-'],
  ['1.0.0-a-b', '>', '1.0.0-a'],
  ['1.0.0-a.b', '>', '1.0.0-a'],
  ['1.0.0-a-', '>', '1.0.0-a.b'],
];

const chain = [
  '0.0.1',
  '0.1.0',
  '0.9.0',
  '1.0.0-0',
  '1.0.0-1',
  ['1.0.0-alpha', '1.0.0-ALPHA', '1.0-Alpha', '1.0.0.0-alpha'],
  '1.0.0-alpha.1',
  '1.0.0-alpha.beta',
  ['1.0.0-beta', '1.0.0-Beta+meta'],
  '1.0.0-beta.2',
  '1.0.0-beta.11',
  '1.0.0-rc.1',
  ['1.0.0', '1.0', '1', '1.0.0.0', '1.0.0+abc', '01.0.0'],
  '1.0.0.1-beta',
  '1.0.0.1',
  '1.0.1',
  '1.1.0',
  '2.0.0',
  '10.0.0',
];

const cases = [...pairs, ...chainCases(chain)];

describe('compareNuGetVersions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(compareNuGetVersions(a, b)).toBe(expected[op]);
    expect(compareNuGetVersions(b, a)).toBe(expected[flip[op]]);
  });

  it.each([
    '',
    'v1.0.0',
    '1.0.0.0.0',
    '.1',
    '1.',
    '1..0',
    '1.0.0-',
    '1.0.0+',
    '1.0.0-a..b',
    '1.0.0-a_b',
    '1.0.0 ',
    ' 1.0.0',
    '1.0.0-béta',
    '[1.0,2.0)',
    '*',
    '1.*',
    'latest',
  ])('rejects %j', (v) => {
    expect(isValidNuGetVersion(v)).toBe(false);
    expect(() => compareNuGetVersions(v, '1.0.0')).toThrow(VersionError);
    expect(() => compareNuGetVersions('1.0.0', v)).toThrow(VersionError);
  });
});

const label = fc.oneof(
  fc.nat({ max: 20 }).map(String),
  fc.constantFrom('alpha', 'Alpha', 'ALPHA', 'beta', 'rc', 'RC', 'preview', '01', '2147483648', 'a-b'),
);
const versionArb = fc
  .tuple(
    fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 4 }),
    fc.array(label, { maxLength: 3 }),
    fc.boolean(),
  )
  .map(
    ([nums, pre, meta]) => `${nums.join('.')}${pre.length ? `-${pre.join('.')}` : ''}${meta ? '+m.1' : ''}`,
  );

describe('compareNuGetVersions properties', () => {
  it('is antisymmetric and reflexive', () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        expect(compareNuGetVersions(a, a)).toBe(0);
        expect(compareNuGetVersions(a, b)).toBe(-compareNuGetVersions(b, a) || 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareNuGetVersions);
        expect(compareNuGetVersions(x!, y!)).toBeLessThanOrEqual(0);
        expect(compareNuGetVersions(y!, z!)).toBeLessThanOrEqual(0);
        expect(compareNuGetVersions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });
});
