import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { comparePep440Versions, isValidPep440Version } from '../../../src/vulndb/versions/pep440.js';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['1.0.dev0', '<', '1.0a1'],
  ['1.0a1', '<', '1.0'],
  ['1.0', '<', '1.0.post1'],
  ['1!0.1', '>', '2.0'],
  ['1!0.1', '>', '9999.0'],
  ['0!1.0', '=', '1.0'],
  ['2!1.0', '>', '1!9.0'],
  ['1.0', '=', '1.0.0'],
  ['1.0', '=', '1'],
  ['1.0.0.0.0', '=', '1'],
  ['1.0', '<', '1.0.0.1'],
  ['1.9', '<', '1.10'],
  ['1.01', '=', '1.1'],
  ['1.0a1', '=', '1.0alpha1'],
  ['1.0a1', '=', '1.0.a1'],
  ['1.0a1', '=', '1.0-a-1'],
  ['1.0a', '=', '1.0a0'],
  ['1.0b2', '=', '1.0beta2'],
  ['1.0rc1', '=', '1.0c1'],
  ['1.0rc1', '=', '1.0pre1'],
  ['1.0rc1', '=', '1.0preview1'],
  ['1.0RC1', '=', '1.0rc1'],
  ['1.0a2', '<', '1.0a10'],
  ['1.0a10', '<', '1.0b1'],
  ['1.0b9', '<', '1.0rc1'],
  ['1.0rc9', '<', '1.0'],
  ['1.0.post1', '=', '1.0-1'],
  ['1.0.post1', '=', '1.0post1'],
  ['1.0.post1', '=', '1.0.rev1'],
  ['1.0.post1', '=', '1.0-r1'],
  ['1.0.post', '=', '1.0.post0'],
  ['1.0.post0', '>', '1.0'],
  ['1.0.dev', '=', '1.0.dev0'],
  ['1.0.dev1', '<', '1.0.dev2'],
  ['1.0.dev2', '<', '1.0a0'],
  ['1.0a1.dev1', '<', '1.0a1'],
  ['1.0a1.dev1', '>', '1.0a0'],
  ['1.0a1.post1', '>', '1.0a1'],
  ['1.0a1.post1', '<', '1.0a2.dev0'],
  ['1.0.post1.dev1', '<', '1.0.post1'],
  ['1.0.post1.dev1', '>', '1.0'],
  ['1.0.post1.dev1', '>', '1.0.post0'],
  ['1.0+local', '>', '1.0'],
  ['1.0+local', '<', '1.0.post1'],
  ['1.0+local', '<', '1.0.1'],
  ['1.0+abc', '<', '1.0+abd'],
  ['1.0+abc', '<', '1.0+1'],
  ['1.0+1', '<', '1.0+2'],
  ['1.0+2', '<', '1.0+10'],
  ['1.0+1', '<', '1.0+1.0'],
  ['1.0+ubuntu.1', '=', '1.0+ubuntu-1'],
  ['1.0+ubuntu.1', '=', '1.0+ubuntu_1'],
  ['1.0+ABC', '=', '1.0+abc'],
  ['1.0a1+local', '<', '1.0'],
  ['v1.0', '=', '1.0'],
  ['V1.0', '=', '1.0'],
  [' 1.0 ', '=', '1.0'],
  ['2.0.0', '>', '1.99.99'],
  ['20230101', '>', '2023.1'],
  ['1.0.0rc1', '<', '1.0.0'],
  ['1.0.0rc1', '>', '0.99'],
  ['3.2.1.post12', '>', '3.2.1.post2'],
  ['21.3', '<', '22.0.dev0'],
  ['4.0.0b1', '<', '4.0.0'],
  ['1.0.0-beta.2', '=', '1.0.0b2'],
];

const chain = [
  '0.1',
  '0.9.9',
  '1.0.dev0',
  '1.0.dev456',
  '1.0a1.dev0',
  ['1.0a1', '1.0.0a1', '1.0alpha1'],
  '1.0a2.dev456',
  '1.0a12.dev456',
  '1.0a12',
  '1.0b1.dev456',
  '1.0b2',
  '1.0b2.post345.dev456',
  '1.0b2.post345',
  '1.0rc1.dev456',
  ['1.0rc1', '1.0c1'],
  ['1.0', '1.0.0', 'v1'],
  '1.0+abc.5',
  '1.0+abc.7',
  '1.0+5',
  '1.0.post456.dev34',
  ['1.0.post456', '1.0-456'],
  '1.0.15',
  '1.1.dev1',
  '1!0.0.1',
];

const cases = [...pairs, ...chainCases(chain)];

describe('comparePep440Versions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(comparePep440Versions(a, b)).toBe(expected[op]);
    expect(comparePep440Versions(b, a)).toBe(expected[flip[op]]);
  });

  it.each([
    '',
    '   ',
    'abc',
    '1.0-',
    '1.0+',
    '1.0+abc+def',
    '1.0.',
    '.1.0',
    '1..0',
    '1.0a1b1',
    '1.0.post1.post2',
    '1!',
    '!1.0',
    '1.0-foo',
    'vv1.0',
    '1.0+local version',
    '1.*',
    '>=1.0',
    '99999999999999999999.0',
    '1.0.dev99999999999999999999',
  ])('rejects %j', (v) => {
    expect(isValidPep440Version(v)).toBe(false);
    expect(() => comparePep440Versions(v, '1.0')).toThrow(VersionError);
    expect(() => comparePep440Versions('1.0', v)).toThrow(VersionError);
  });
});

const pepArb = fc
  .tuple(
    fc.option(fc.nat({ max: 2 }), { nil: undefined }),
    fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 4 }),
    fc.option(fc.tuple(fc.constantFrom('a', 'b', 'rc'), fc.nat({ max: 3 })), { nil: undefined }),
    fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    fc.option(fc.array(fc.constantFrom('1', '2', '10', 'abc', 'x'), { minLength: 1, maxLength: 3 }), {
      nil: undefined,
    }),
  )
  .map(
    ([epoch, release, pre, post, dev, local]) =>
      `${epoch !== undefined ? `${epoch}!` : ''}${release.join('.')}${pre ? `${pre[0]}${pre[1]}` : ''}` +
      `${post !== undefined ? `.post${post}` : ''}${dev !== undefined ? `.dev${dev}` : ''}` +
      `${local ? `+${local.join('.')}` : ''}`,
  );

describe('comparePep440Versions properties', () => {
  it('is antisymmetric and reflexive', () => {
    fc.assert(
      fc.property(pepArb, pepArb, (a, b) => {
        expect(comparePep440Versions(a, a)).toBe(0);
        expect(comparePep440Versions(a, b)).toBe(-comparePep440Versions(b, a) || 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(pepArb, pepArb, pepArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(comparePep440Versions);
        expect(comparePep440Versions(x!, y!)).toBeLessThanOrEqual(0);
        expect(comparePep440Versions(y!, z!)).toBeLessThanOrEqual(0);
        expect(comparePep440Versions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });
});
