import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareAlpineVersions, isValidAlpineVersion } from '../../../src/vulndb/versions/apk.js';
import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { CASES, EQUAL_GROUPS, INVALID, LADDER, type Case } from './apk-cases.js';

const cmp = compareAlpineVersions;
const FORWARD = { '<': -1, '=': 0, '>': 1 } as const;
const BACKWARD = { '<': 1, '=': 0, '>': -1 } as const;

/** The hand-written cases plus every ladder pair and every pair inside an equality group. */
function allCases(): Case[] {
  const out: Case[] = [...CASES];
  LADDER.forEach((a, i) => LADDER.slice(i + 1).forEach((b) => out.push([a, '<', b])));
  for (const group of EQUAL_GROUPS)
    group.forEach((a, i) => group.slice(i + 1).forEach((b) => out.push([a, '=', b])));
  return out;
}

describe('compareAlpineVersions: table', () => {
  const cases = allCases();

  it('covers at least 500 cases and 60 hand-written ones', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(cases.length).toBeGreaterThanOrEqual(500);
  });

  it.each(cases)('%j %s %j', (a, op, b) => {
    expect(cmp(a, b)).toBe(FORWARD[op]);
    expect(cmp(b, a)).toBe(BACKWARD[op]);
  });
});

describe('isValidAlpineVersion', () => {
  it.each(INVALID)('rejects %j', (v) => {
    expect(isValidAlpineVersion(v)).toBe(false);
    expect(() => cmp(v, '1.0')).toThrow(VersionError);
    expect(() => cmp('1.0', v)).toThrow(VersionError);
  });

  it.each([
    '0',
    '1.2.3',
    '1.2.3a',
    '1.0_rc1',
    '1.0_alpha_pre2_p3',
    '1.0a_git20240101',
    '1.0_p1~0123abcdef-r12',
    '1.0~ab',
    '2024.01.01-r0',
  ])('accepts %j', (v) => {
    expect(isValidAlpineVersion(v)).toBe(true);
    expect(cmp(v, v)).toBe(0);
  });

  it('throws a VersionError carrying the shared code', () => {
    try {
      cmp('1.0-1', '1.0');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VersionError);
      expect((err as VersionError).code).toBe('VERSION_INVALID');
    }
  });
});

// Generated in grammar order from small alphabets so equal prefixes are common.
const num = fc.constantFrom('0', '1', '2', '9', '10', '00', '01', '010', '09');
const alpineVersion: fc.Arbitrary<string> = fc
  .record({
    first: num,
    rest: fc.array(num, { maxLength: 3 }),
    letter: fc.option(fc.constantFrom('a', 'b', 'z'), { nil: undefined }),
    suffixes: fc.array(
      fc.tuple(
        fc.constantFrom('alpha', 'beta', 'pre', 'rc', 'cvs', 'svn', 'git', 'hg', 'p'),
        fc.option(num, { nil: undefined }),
      ),
      { maxLength: 2 },
    ),
    hash: fc.option(fc.constantFrom('0', '00', 'a', 'ab', 'abc', '1f'), { nil: undefined }),
    revision: fc.option(num, { nil: undefined }),
  })
  .map(
    ({ first, rest, letter, suffixes, hash, revision }) =>
      [first, ...rest].join('.') +
      (letter ?? '') +
      suffixes.map(([s, n]) => `_${s}${n ?? ''}`).join('') +
      (hash === undefined ? '' : `~${hash}`) +
      (revision === undefined ? '' : `-r${revision}`),
  );

describe('compareAlpineVersions: properties', () => {
  it('accepts every generated version', () => {
    fc.assert(
      fc.property(alpineVersion, (v) => isValidAlpineVersion(v)),
      { numRuns: 1000 },
    );
  });

  it('is reflexive', () => {
    fc.assert(
      fc.property(alpineVersion, (a) => cmp(a, a) === 0),
      { numRuns: 1000 },
    );
  });

  it('is antisymmetric', () => {
    fc.assert(
      fc.property(alpineVersion, alpineVersion, (a, b) => cmp(a, b) + cmp(b, a) === 0),
      { numRuns: 2000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(alpineVersion, alpineVersion, alpineVersion, (a, b, c) => {
        for (const [x, y, z] of [
          [a, b, c],
          [a, c, b],
          [b, a, c],
          [b, c, a],
          [c, a, b],
          [c, b, a],
        ] as const) {
          if (cmp(x, y) <= 0 && cmp(y, z) <= 0) expect(cmp(x, z)).toBeLessThanOrEqual(0);
          if (cmp(x, y) === 0 && cmp(y, z) === 0) expect(cmp(x, z)).toBe(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('is consistent with sorting', () => {
    fc.assert(
      fc.property(fc.array(alpineVersion, { maxLength: 25 }), (list) => {
        const sorted = [...list].sort(cmp);
        for (let i = 1; i < sorted.length; i++)
          expect(cmp(sorted[i - 1] as string, sorted[i] as string)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 500 },
    );
  });

  it('treats a higher revision of the same version as newer', () => {
    fc.assert(
      fc.property(alpineVersion, fc.nat(50), (v, n) => {
        const base = v.replace(/-r[0-9]+$/, '');
        expect(cmp(`${base}-r${n}`, `${base}-r${n + 1}`)).toBe(-1);
        expect(cmp(base, `${base}-r${n}`)).toBe(-1);
      }),
      { numRuns: 500 },
    );
  });
});
