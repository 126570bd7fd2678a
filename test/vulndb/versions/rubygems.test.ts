import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { compareRubyGemsVersions, isValidRubyGemsVersion } from '../../../src/vulndb/versions/rubygems.js';
import { eq, gt } from '@renovatebot/ruby-semver';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['1.0', '=', '1'],
  ['1.0.0', '=', '1'],
  ['1.0.0.0.0', '=', '1.0'],
  ['1.01', '=', '1.1'],
  ['1.9', '<', '1.10'],
  ['1.0.1', '>', '1'],
  ['1.0.a', '=', '1.a'],
  ['1.0.a', '<', '1'],
  ['1.a', '<', '1.0'],
  ['1.a.0', '=', '1.a'],
  ['1.0.0-rc1', '=', '1.0.0.pre.rc1'],
  ['1.0.0-rc1', '<', '1.0.0'],
  ['1.0.0.rc1', '<', '1.0.0'],
  ['1.0.0.rc1', '<', '1.0.0.rc2'],
  ['1.0.0.rc2', '<', '1.0.0.rc10'],
  ['1.0.0.rc1', '=', '1.0.0rc1'],
  ['1.0.0.beta', '<', '1.0.0.rc'],
  ['1.0.0.alpha', '<', '1.0.0.beta'],
  ['1.0.0.a', '<', '1.0.0.b'],
  ['1.0.0.b', '<', '1.0.0.pre'],
  ['1.0.0.pre', '<', '1.0.0.rc'],
  ['1.0.0.rc', '<', '1.0.0'],
  ['1.0.0.A', '<', '1.0.0.a'],
  ['1.0.0.Z', '<', '1.0.0.a'],
  ['1.0.0.beta', '<', '1.0.0.beta.1'],
  ['1.0.0.beta.1', '<', '1.0.0.beta.2'],
  ['1.0.0.beta.a', '<', '1.0.0.beta.1'],
  ['1.0.0.beta1', '=', '1.0.0.beta.1'],
  ['1.0.0.1', '>', '1.0.0'],
  ['1.0.0.1', '>', '1.0.0.rc1'],
  ['2.0.0.pre', '>', '1.9.9'],
  ['1.2.3-1', '<', '1.2.3'],
  ['1.2.3-1', '>', '1.2.2'],
  ['1.2.3-java', '<', '1.2.3'],
  ['1.2.3-java', '=', '1.2.3.pre.java'],
  ['1.2.3-x86-linux', '=', '1.2.3.pre.x86.pre.linux'],
  ['5.2.4.2', '>', '5.2.4.1'],
  ['5.2.4.2', '<', '5.2.5'],
  ['6.0.0.beta1', '<', '6.0.0'],
  ['6.0.0.beta1', '>', '5.2.99'],
  ['7.0.0.alpha2', '<', '7.0.0.beta1'],
  ['0.9.12', '<', '0.10.0'],
  ['1.13.10', '>', '1.13.9'],
  [' 1.0 ', '=', '1.0'],
  ['123456789012345678901234567890', '>', '123456789012345678901234567889'],
  ['1.123456789012345678901234567890', '>', '1.9'],
  ['0', '=', '0.0'],
  ['0.0.1', '>', '0'],
  ['1.0.0.pre.0', '=', '1.0.0.pre'],
  ['1.0.a10', '>', '1.0.a9'],
  ['1.0.a10', '>', '1.0.a1'],
  ['1.0.ab', '>', '1.0.aa'],
  ['1.0.ab', '<', '1.0.b'],
];

const chain = [
  '0.1',
  '0.9.9',
  '1.0.0.a',
  '1.0.0.a1',
  '1.0.0.alpha',
  '1.0.0.alpha.2',
  '1.0.0.b',
  '1.0.0.beta',
  '1.0.0.beta.2',
  // `-rc.1` means `.pre.rc.1`, and a missing segment counts as 0, which beats a letter segment.
  '1.0.0-rc.1',
  ['1.0.0.pre', '1.0.0.pre.0', '1.0.pre'],
  '1.0.0.pre.1',
  ['1.0.0.rc.1', '1.0.0.rc1'],
  '1.0.0.rc2',
  ['1', '1.0', '1.0.0', '1.0.0.0'],
  '1.0.0.1',
  '1.0.1.a',
  '1.0.1',
  '1.1',
  '2.0.0.rc1',
  '2',
];

const cases = [...pairs, ...chainCases(chain)];

describe('compareRubyGemsVersions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(compareRubyGemsVersions(a, b)).toBe(expected[op]);
    expect(compareRubyGemsVersions(b, a)).toBe(expected[flip[op]]);
  });

  it.each([
    '',
    '   ',
    'a',
    'a.1',
    '.1',
    '1.',
    '1..0',
    '1.0-',
    '1-.0',
    '1.0_1',
    '1.0+build',
    'v1.0',
    '1.0.-1',
    '1.0 1',
    '1.0\n2',
    '1.0.rc!',
    '~> 1.0',
  ])('rejects %j', (v) => {
    expect(isValidRubyGemsVersion(v)).toBe(false);
    expect(() => compareRubyGemsVersions(v, '1.0.0')).toThrow(VersionError);
    expect(() => compareRubyGemsVersions('1.0.0', v)).toThrow(VersionError);
  });
});

/** Gem-like versions: numeric head, optional letter segments and `-` prerelease tails. */
const versionArb = fc
  .tuple(
    fc.array(fc.nat({ max: 4 }), { minLength: 1, maxLength: 4 }),
    fc.array(
      fc.oneof(fc.nat({ max: 4 }).map(String), fc.constantFrom('a', 'b', 'pre', 'rc', 'rc1', 'beta2')),
      {
        maxLength: 3,
      },
    ),
    fc.option(fc.constantFrom('1', 'java', 'rc.1', 'x86-linux'), { nil: undefined }),
  )
  .map(([head, tail, dash]) => [...head, ...tail].join('.') + (dash !== undefined ? `-${dash}` : ''));

describe('compareRubyGemsVersions properties', () => {
  it('is antisymmetric and reflexive', () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        expect(compareRubyGemsVersions(a, a)).toBe(0);
        expect(compareRubyGemsVersions(a, b)).toBe(-compareRubyGemsVersions(b, a) || 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareRubyGemsVersions);
        expect(compareRubyGemsVersions(x!, y!)).toBeLessThanOrEqual(0);
        expect(compareRubyGemsVersions(y!, z!)).toBeLessThanOrEqual(0);
        expect(compareRubyGemsVersions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with @renovatebot/ruby-semver on lowercase, small-number versions', () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        const ours = compareRubyGemsVersions(a, b);
        const theirs = eq(a, b) ? 0 : gt(a, b) ? 1 : -1;
        expect(ours).toBe(theirs);
      }),
      { numRuns: 3000 },
    );
  });
});
