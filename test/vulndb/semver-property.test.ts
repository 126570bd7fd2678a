import fc from 'fast-check';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { affects } from '../../src/vulndb/match.js';

/** Versions like 1.2.3 and 1.2.3-beta.1, in a small space so ranges and versions collide often. */
const version = fc
  .tuple(fc.nat({ max: 4 }), fc.nat({ max: 4 }), fc.nat({ max: 4 }), fc.option(fc.constantFrom('alpha', 'beta.1', 'rc.2', '0'), { nil: undefined }))
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre ? `-${pre}` : ''}`);

/** A list of [introduced, fixed?] intervals that OSV would write as one SEMVER range. */
const intervals = fc.array(fc.tuple(version, fc.option(version, { nil: undefined })), { minLength: 1, maxLength: 3 }).map((pairs) =>
  pairs
    .map(([a, b]) => (b && semver.lt(b, a) ? ([b, a] as const) : ([a, b] as const)))
    .filter(([a, b]) => !b || semver.lt(a, b))
    .sort(([a], [b]) => semver.compare(a, b)),
);

/** Non-overlapping intervals as OSV publishes them (each fix before the next introduction). */
function disjoint(list: ReadonlyArray<readonly [string, string | undefined]>): Array<readonly [string, string | undefined]> {
  const out: Array<readonly [string, string | undefined]> = [];
  for (const iv of list) {
    const prev = out[out.length - 1];
    if (prev && (prev[1] === undefined || semver.lte(iv[0], prev[1]))) continue;
    out.push(iv);
  }
  return out;
}

describe('SEMVER range matching agrees with the semver package', () => {
  it('on thousands of generated versions and ranges', () => {
    fc.assert(
      fc.property(version, intervals, (v, raw) => {
        const ivs = disjoint(raw);
        fc.pre(ivs.length > 0);
        const events = ivs.flatMap(([a, b]) => [{ introduced: a }, ...(b ? [{ fixed: b }] : [])]);
        const range = ivs.map(([a, b]) => (b ? `>=${a} <${b}` : `>=${a}`)).join(' || ');
        const expected = semver.satisfies(v, range, { includePrerelease: true });
        const got = affects(v, { ranges: [{ type: 'SEMVER', events }], versions: [] }, 'npm', () => {}).affected;
        expect(got, `${v} in ${range}`).toBe(expected);
      }),
      { numRuns: 5000 },
    );
  });

  it('introduced "0" means every version before the fix, and last_affected is inclusive', () => {
    fc.assert(
      fc.property(version, version, (v, bound) => {
        const fixed = affects(v, { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: bound }] }], versions: [] }, 'npm', () => {});
        expect(fixed.affected).toBe(semver.lt(v, bound));
        const last = affects(v, { ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { last_affected: bound }] }], versions: [] }, 'npm', () => {});
        expect(last.affected).toBe(semver.lte(v, bound));
      }),
      { numRuns: 3000 },
    );
  });
});
