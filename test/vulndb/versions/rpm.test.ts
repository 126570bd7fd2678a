import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VersionError } from '../../../src/vulndb/versions/errors.js';
import {
  compareRpmEvr,
  compareRpmVersions,
  isValidRpmVersion,
  type RpmEvr,
} from '../../../src/vulndb/versions/rpm.js';
import {
  CASES,
  EQUAL_GROUPS,
  INVALID,
  LADDER_VERSION_ONLY,
  LADDER_WITH_RELEASE,
  type Case,
} from './rpm-cases.js';

const cmp = compareRpmVersions;
const FORWARD = { '<': -1, '=': 0, '>': 1 } as const;
const BACKWARD = { '<': 1, '=': 0, '>': -1 } as const;

/** The hand-written cases plus every pair within each ladder and within each equality group. */
function allCases(): Case[] {
  const out: Case[] = [...CASES];
  for (const ladder of [LADDER_WITH_RELEASE, LADDER_VERSION_ONLY]) {
    ladder.forEach((a, i) => ladder.slice(i + 1).forEach((b) => out.push([a, '<', b])));
  }
  for (const group of EQUAL_GROUPS)
    group.forEach((a, i) => group.slice(i + 1).forEach((b) => out.push([a, '=', b])));
  return out;
}

/** Splits the string form the same way rpm does, for checking compareRpmEvr against it. */
function toEvr(v: string): RpmEvr {
  const colon = v.indexOf(':');
  const epoch = colon === -1 ? undefined : v.slice(0, colon);
  const rest = v.slice(colon + 1);
  const hyphen = rest.lastIndexOf('-');
  return hyphen === -1
    ? { epoch, version: rest }
    : { epoch, version: rest.slice(0, hyphen), release: rest.slice(hyphen + 1) };
}

describe('compareRpmVersions: table', () => {
  const cases = allCases();

  it('covers at least 500 cases and 60 hand-written ones', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(cases.length).toBeGreaterThanOrEqual(500);
  });

  it.each(cases)('%j %s %j', (a, op, b) => {
    expect(cmp(a, b)).toBe(FORWARD[op]);
    expect(cmp(b, a)).toBe(BACKWARD[op]);
    expect(compareRpmEvr(toEvr(a), toEvr(b))).toBe(FORWARD[op]);
  });
});

describe('compareRpmEvr', () => {
  it('treats a missing, null or empty epoch as 0 and accepts numeric or string epochs', () => {
    expect(compareRpmEvr({ version: '1.0', release: '1' }, { epoch: 0, version: '1.0', release: '1' })).toBe(
      0,
    );
    expect(compareRpmEvr({ epoch: null, version: '1.0' }, { epoch: '', version: '1.0' })).toBe(0);
    expect(compareRpmEvr({ epoch: '1', version: '1.0' }, { epoch: 1, version: '1.0' })).toBe(0);
    expect(compareRpmEvr({ epoch: 2, version: '1.0' }, { epoch: '10', version: '0.1' })).toBe(-1);
    expect(compareRpmEvr({ epoch: 1, version: '0' }, { version: '99' })).toBe(1);
  });

  it('compares releases only when both sides have one', () => {
    expect(compareRpmEvr({ version: '1.0', release: '5' }, { version: '1.0' })).toBe(0);
    expect(compareRpmEvr({ version: '1.0', release: '5' }, { version: '1.0', release: null })).toBe(0);
    expect(compareRpmEvr({ version: '1.0', release: '5' }, { version: '1.0', release: '' })).toBe(0);
    expect(compareRpmEvr({ version: '1.0', release: '5' }, { version: '1.0', release: '6' })).toBe(-1);
    expect(compareRpmEvr({ version: '1.1', release: '1' }, { version: '1.0' })).toBe(1);
  });

  it.each<RpmEvr>([
    { version: '' },
    { version: '1.0-1' },
    { version: '1:1.0' },
    { version: '1.0', release: '1-2' },
    { version: '1.0', release: 'a b' },
    { epoch: -1, version: '1.0' },
    { epoch: 1.5, version: '1.0' },
    { epoch: Number.NaN, version: '1.0' },
    { epoch: 'x', version: '1.0' },
    { epoch: ' 1', version: '1.0' },
  ])('rejects %j', (evr) => {
    expect(() => compareRpmEvr(evr, { version: '1.0' })).toThrow(VersionError);
    expect(() => compareRpmEvr({ version: '1.0' }, evr)).toThrow(VersionError);
  });
});

describe('isValidRpmVersion', () => {
  it.each(INVALID)('rejects %j', (v) => {
    expect(isValidRpmVersion(v)).toBe(false);
    expect(() => cmp(v, '1.0')).toThrow(VersionError);
    expect(() => cmp('1.0', v)).toThrow(VersionError);
  });

  it('throws a VersionError carrying the shared code', () => {
    try {
      cmp('1.0', '1 0');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VersionError);
      expect((err as VersionError).code).toBe('VERSION_INVALID');
    }
  });
});

// Small alphabets so equal segments, separators and tilde/caret collisions are common.
const fieldToken = fc.constantFrom(
  '0',
  '1',
  '2',
  '9',
  '00',
  '01',
  '10',
  'a',
  'b',
  'A',
  'Z',
  'el',
  '.',
  '.',
  '_',
  '+',
  '~',
  '^',
);
const field = fc.array(fieldToken, { minLength: 1, maxLength: 6 }).map((t) => t.join(''));
const epoch = fc.option(fc.constantFrom('0', '1', '2', '10', '01'), { nil: undefined });
const withEpoch = (e: string | undefined, rest: string) => (e === undefined ? rest : `${e}:${rest}`);
const versionOnly = fc.tuple(epoch, field).map(([e, v]) => withEpoch(e, v));
const withRelease = fc.tuple(epoch, field, field).map(([e, v, r]) => withEpoch(e, `${v}-${r}`));
const anyRpm = fc.oneof(versionOnly, withRelease);

describe('compareRpmVersions: properties', () => {
  it('accepts every generated version', () => {
    fc.assert(
      fc.property(anyRpm, (v) => isValidRpmVersion(v)),
      { numRuns: 1000 },
    );
  });

  it('is reflexive', () => {
    fc.assert(
      fc.property(anyRpm, (a) => cmp(a, a) === 0),
      { numRuns: 1000 },
    );
  });

  it('is antisymmetric, including across release / no release', () => {
    fc.assert(
      fc.property(anyRpm, anyRpm, (a, b) => cmp(a, b) + cmp(b, a) === 0),
      { numRuns: 3000 },
    );
  });

  it('agrees with compareRpmEvr on the split form', () => {
    fc.assert(
      fc.property(anyRpm, anyRpm, (a, b) => cmp(a, b) === compareRpmEvr(toEvr(a), toEvr(b))),
      { numRuns: 1000 },
    );
  });

  // Transitivity and sorting hold within versions that all have a release, or all lack one;
  // mixing them is deliberately not transitive (1.0-1 = 1.0 = 1.0-2 but 1.0-1 < 1.0-2).
  for (const [name, arb] of [
    ['with release', withRelease],
    ['without release', versionOnly],
  ] as const) {
    it(`is transitive (${name})`, () => {
      fc.assert(
        fc.property(arb, arb, arb, (a, b, c) => {
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

    it(`is consistent with sorting (${name})`, () => {
      fc.assert(
        fc.property(fc.array(arb, { maxLength: 25 }), (list) => {
          const sorted = [...list].sort(cmp);
          for (let i = 1; i < sorted.length; i++)
            expect(cmp(sorted[i - 1] as string, sorted[i] as string)).toBeLessThanOrEqual(0);
        }),
        { numRuns: 500 },
      );
    });
  }

  it('ignores the release when only one side has one', () => {
    fc.assert(
      fc.property(versionOnly, field, (v, r) => {
        expect(cmp(v, `${v}-${r}`)).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('sorts ~ before and ^ after the bare version', () => {
    fc.assert(
      fc.property(field, field, (v, tail) => {
        expect(cmp(`${v}~${tail}`, v)).toBe(-1);
        expect(cmp(`${v}^`, v)).toBe(1);
        expect(cmp(`${v}^${tail}`, `${v}.1`)).toBe(-1);
      }),
      { numRuns: 500 },
    );
  });
});
