/**
 * RubyGems ordering: Gem::Version#<=> re-implemented with BigInt segments.
 *
 * @renovatebot/ruby-semver ports the same algorithm but compares letter segments with
 * `localeCompare` (Ruby compares bytes, so `B` < `a`) and numbers as JS numbers; doing it here
 * keeps Ruby's exact semantics. The tests cross-check the two where they should agree.
 *
 * The rules: `-` means `.pre.`; segments are runs of digits or of letters; a version is a
 * prerelease as soon as it has any letter; trailing zeros are insignificant both before and
 * after the first letter segment (so `1.0 == 1` and `1.a.0 == 1.a`); a letter segment sorts
 * before a number at the same position.
 */
import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

type Segment = bigint | string;

/** Gem::Version::ANCHORED_VERSION_PATTERN, without the "blank means 0" allowance (see below). */
const PATTERN = /^\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)\s*$/;

function canonicalSegments(v: string): Segment[] | null {
  const m = PATTERN.exec(v);
  if (m === null) return null;
  const normalised = (m[1] as string).replace(/-/g, '.pre.');
  const segments: Segment[] = (normalised.match(/[0-9]+|[a-z]+/gi) ?? []).map((s) =>
    /^[0-9]/.test(s) ? BigInt(s) : s,
  );
  const firstString = segments.findIndex((s) => typeof s === 'string');
  const numeric = firstString === -1 ? segments : segments.slice(0, firstString);
  const rest = firstString === -1 ? [] : segments.slice(firstString);
  const dropTrailingZeros = (xs: Segment[]): Segment[] => {
    let end = xs.length;
    while (end > 0 && xs[end - 1] === 0n) end--;
    return xs.slice(0, end);
  };
  return [...dropTrailingZeros(numeric), ...dropTrailingZeros(rest)];
}

/**
 * Ruby treats a blank string as version "0"; we reject it instead, since an empty version in
 * advisory data is a defect rather than a deliberate 0.
 */
export function isValidRubyGemsVersion(v: string): boolean {
  return typeof v === 'string' && canonicalSegments(v) !== null;
}

export function compareRubyGemsVersions(a: string, b: string): Ordering {
  const sa = typeof a === 'string' ? canonicalSegments(a) : null;
  if (sa === null) throw new VersionError(`invalid RubyGems version: ${JSON.stringify(a)}`);
  const sb = typeof b === 'string' ? canonicalSegments(b) : null;
  if (sb === null) throw new VersionError(`invalid RubyGems version: ${JSON.stringify(b)}`);
  const n = Math.max(sa.length, sb.length);
  for (let i = 0; i < n; i++) {
    // Missing segments count as 0, so `1.a` vs `1.a.1` compares 0 with 1.
    const l = sa[i] ?? 0n;
    const r = sb[i] ?? 0n;
    if (l === r) continue;
    if (typeof l === 'string' && typeof r !== 'string') return -1;
    if (typeof l !== 'string' && typeof r === 'string') return 1;
    // Same type here: bigint or string, both ordered by `<` (strings by UTF-16 unit = ASCII byte).
    return l < r ? -1 : 1;
  }
  return 0;
}
