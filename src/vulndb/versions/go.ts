/**
 * Go module version ordering, following golang.org/x/mod/semver, plus the Go toolchain
 * ("stdlib") tag spellings that OSV's Go data uses.
 *
 * Go's semver differs from npm's in ways that matter here: numbers have no size limit (they are
 * compared by length, then lexically), `vMAJOR` and `vMAJOR.MINOR` are accepted as shorthands for
 * `.0`, and build metadata — which is where `+incompatible` lives — never affects order.
 * Pseudo-versions are ordinary prereleases, so they need no special casing: their fixed-width
 * timestamps make the lexical identifier comparison chronological.
 */
import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

interface GoSemver {
  major: string;
  minor: string;
  patch: string;
  /** Dot-separated identifiers without the leading `-`; empty for a release. */
  prerelease: string[];
}

const NUMERIC = /^(0|[1-9][0-9]*)$/;
const IDENT = /^[0-9A-Za-z-]+$/;

/**
 * Go toolchain tags (`go1.21rc2`, `go1.9beta1`, `go1.20`) become the semver that the Go
 * vulnerability database publishes for the `stdlib`/`toolchain` modules: `v1.21.0-rc.2`,
 * `v1.9.0-beta.1`, `v1.20.0`. The prerelease spelling is accepted with or without the `go`
 * prefix because OSV consumers have seen both.
 */
const TOOLCHAIN_TAG = /^(?:go|v)?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:(beta|rc)([0-9]+))?$/;

function normaliseToolchain(v: string): string | null {
  // `go1` was the first release tag and has no minor component.
  if (v === 'go1') return 'v1.0.0';
  const m = TOOLCHAIN_TAG.exec(v);
  if (m === null) return null;
  const [, major, minor, patch, kind, num] = m;
  let out = `v${major}.${minor}.${patch ?? '0'}`;
  if (kind !== undefined) out += `-${kind}.${num}`;
  return out;
}

function parsePrerelease(s: string): string[] | null {
  const parts = s.split('.');
  for (const p of parts) {
    if (!IDENT.test(p)) return null;
    // Numeric identifiers may not have leading zeros (x/mod/semver isBadNum).
    if (/^[0-9]+$/.test(p) && !NUMERIC.test(p)) return null;
  }
  return parts;
}

function parseGoSemver(input: string): GoSemver | null {
  if (!input.startsWith('v')) return null;
  let rest = input.slice(1);
  let build: string | undefined;
  const plus = rest.indexOf('+');
  if (plus >= 0) {
    build = rest.slice(plus + 1);
    rest = rest.slice(0, plus);
    // Build identifiers must be well-formed even though they are ignored for ordering.
    if (build.split('.').some((p) => !IDENT.test(p))) return null;
  }
  let pre: string | undefined;
  const dash = rest.indexOf('-');
  if (dash >= 0) {
    pre = rest.slice(dash + 1);
    rest = rest.slice(0, dash);
  }
  const nums = rest.split('.');
  if (nums.length > 3 || nums.some((n) => !NUMERIC.test(n))) return null;
  // Shorthands (`v1`, `v1.2`) are only allowed bare, exactly as x/mod/semver does.
  if (nums.length < 3 && (pre !== undefined || build !== undefined)) return null;
  let prerelease: string[] = [];
  if (pre !== undefined) {
    const parsed = parsePrerelease(pre);
    if (parsed === null) return null;
    prerelease = parsed;
  }
  return { major: nums[0] ?? '0', minor: nums[1] ?? '0', patch: nums[2] ?? '0', prerelease };
}

function parse(v: string): GoSemver | null {
  if (typeof v !== 'string' || v.length === 0) return null;
  const direct = parseGoSemver(v.startsWith('v') ? v : `v${v}`);
  if (direct !== null) return direct;
  const toolchain = normaliseToolchain(v);
  return toolchain === null ? null : parseGoSemver(toolchain);
}

/** Compares decimal strings without leading zeros of any length: longer is larger. */
function compareDigits(x: string, y: string): Ordering {
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  if (x === y) return 0;
  return x < y ? -1 : 1;
}

function comparePrerelease(x: string[], y: string[]): Ordering {
  // A release outranks any prerelease of the same core version.
  if (x.length === 0 || y.length === 0) {
    if (x.length === y.length) return 0;
    return x.length === 0 ? 1 : -1;
  }
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const dx = x[i] as string;
    const dy = y[i] as string;
    if (dx === dy) continue;
    const nx = /^[0-9]+$/.test(dx);
    const ny = /^[0-9]+$/.test(dy);
    if (nx !== ny) return nx ? -1 : 1;
    if (nx) return compareDigits(dx, dy);
    // ASCII byte order, as Go string comparison does.
    return dx < dy ? -1 : 1;
  }
  if (x.length === y.length) return 0;
  return x.length < y.length ? -1 : 1;
}

export function isValidGoVersion(v: string): boolean {
  return parse(v) !== null;
}

export function compareGoVersions(a: string, b: string): Ordering {
  const pa = parse(a);
  if (pa === null) throw new VersionError(`invalid Go version: ${JSON.stringify(a)}`);
  const pb = parse(b);
  if (pb === null) throw new VersionError(`invalid Go version: ${JSON.stringify(b)}`);
  return (
    compareDigits(pa.major, pb.major) ||
    compareDigits(pa.minor, pb.minor) ||
    compareDigits(pa.patch, pb.patch) ||
    comparePrerelease(pa.prerelease, pb.prerelease)
  );
}
