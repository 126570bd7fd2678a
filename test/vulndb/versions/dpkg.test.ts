import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareDebianVersions,
  isValidDebianVersion,
  parseDebianVersion,
} from '../../../src/vulndb/versions/dpkg.js';
import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { CASES, EQUAL_GROUPS, INVALID, LADDER, type Case } from './dpkg-cases.js';

const cmp = compareDebianVersions;
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

describe('compareDebianVersions: table', () => {
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

describe('parseDebianVersion', () => {
  it('splits epoch at the first colon and revision at the last hyphen', () => {
    expect(parseDebianVersion('1:2.3-4')).toEqual({ epoch: 1, upstream: '2.3', revision: '4' });
    expect(parseDebianVersion('2.3')).toEqual({ epoch: 0, upstream: '2.3', revision: '' });
    expect(parseDebianVersion('1:2:3-a-b')).toEqual({ epoch: 1, upstream: '2:3-a', revision: 'b' });
    expect(parseDebianVersion('0:1.0-1ubuntu0.1')).toEqual({
      epoch: 0,
      upstream: '1.0',
      revision: '1ubuntu0.1',
    });
    expect(parseDebianVersion(' 1.0 ')).toEqual({ epoch: 0, upstream: '1.0', revision: '' });
    expect(parseDebianVersion('2147483647:1')).toEqual({ epoch: 2147483647, upstream: '1', revision: '' });
  });

  it.each(INVALID)('rejects %j', (v) => {
    expect(parseDebianVersion(v)).toBeNull();
    expect(isValidDebianVersion(v)).toBe(false);
    expect(() => cmp(v, '1.0')).toThrow(VersionError);
    expect(() => cmp('1.0', v)).toThrow(VersionError);
  });

  it('throws a VersionError carrying the shared code', () => {
    try {
      cmp('not a version', '1');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VersionError);
      expect((err as VersionError).code).toBe('VERSION_INVALID');
    }
  });
});

// Small alphabets make collisions (equal prefixes, equal versions) common, which is where
// ordering bugs hide.
const upstreamToken = fc.constantFrom(
  '0',
  '1',
  '2',
  '9',
  '00',
  '01',
  '10',
  'a',
  'b',
  'Z',
  '.',
  '+',
  '~',
  '~',
  '-',
  ':',
);
const revisionToken = fc.constantFrom('0', '1', '2', '00', 'a', 'ubuntu', 'b', '.', '+', '~');
const debianVersion: fc.Arbitrary<string> = fc
  .record({
    epoch: fc.option(fc.constantFrom('0', '1', '2', '10', '01'), { nil: undefined }),
    head: fc.constantFrom('0', '1', '2', '10'),
    upstream: fc.array(upstreamToken, { maxLength: 6 }),
    revision: fc.option(fc.array(revisionToken, { minLength: 1, maxLength: 4 }), { nil: undefined }),
  })
  .map(({ epoch, head, upstream, revision }) => {
    const up = head + upstream.join('');
    // A ':' in upstream needs an explicit epoch and a '-' needs a revision to stay unambiguous.
    const e = epoch ?? (up.includes(':') ? '0' : undefined);
    const r = revision?.join('') ?? (up.includes('-') ? '1' : undefined);
    return (e === undefined ? '' : `${e}:`) + up + (r === undefined ? '' : `-${r}`);
  });

describe('compareDebianVersions: properties', () => {
  it('generated versions are valid and round-trip through parse', () => {
    fc.assert(
      fc.property(debianVersion, (v) => {
        const p = parseDebianVersion(v);
        expect(p).not.toBeNull();
        const rebuilt = `${p!.epoch}:${p!.upstream}${p!.revision === '' ? '' : `-${p!.revision}`}`;
        expect(cmp(v, rebuilt)).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('is reflexive', () => {
    fc.assert(
      fc.property(debianVersion, (a) => cmp(a, a) === 0),
      { numRuns: 1000 },
    );
  });

  it('is antisymmetric', () => {
    fc.assert(
      fc.property(debianVersion, debianVersion, (a, b) => cmp(a, b) + cmp(b, a) === 0),
      { numRuns: 2000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(debianVersion, debianVersion, debianVersion, (a, b, c) => {
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
      fc.property(fc.array(debianVersion, { maxLength: 25 }), (list) => {
        const sorted = [...list].sort(cmp);
        for (let i = 1; i < sorted.length; i++)
          expect(cmp(sorted[i - 1] as string, sorted[i] as string)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 500 },
    );
  });

  it('orders by epoch before anything else', () => {
    fc.assert(
      fc.property(debianVersion, debianVersion, (a, b) => {
        const x = parseDebianVersion(a)!;
        const y = parseDebianVersion(b)!;
        if (x.epoch !== y.epoch) expect(cmp(a, b)).toBe(x.epoch < y.epoch ? -1 : 1);
      }),
      { numRuns: 1000 },
    );
  });

  it('puts a ~ suffix before the bare version and any other suffix after it', () => {
    fc.assert(
      fc.property(debianVersion, fc.constantFrom('a', '+', '.', '0.1', '1'), (v, tail) => {
        const base = parseDebianVersion(v)!;
        const with_ = (s: string) =>
          `${base.epoch}:${base.upstream}${s}${base.revision === '' ? '' : `-${base.revision}`}`;
        expect(cmp(with_('~'), with_(''))).toBe(-1);
        expect(cmp(with_('~'), with_(`~${tail}`))).toBe(-1);
        if (tail !== '0.1' && tail !== '1') expect(cmp(with_(tail), with_(''))).toBe(1);
      }),
      { numRuns: 500 },
    );
  });
});
