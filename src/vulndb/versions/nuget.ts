/**
 * NuGet ordering (NuGet.Versioning's VersionComparer.Default): SemVer 2.0 extended with the
 * legacy fourth "revision" number.
 *
 * Differences from plain SemVer that this handles: 1 to 4 numeric parts (missing ones are 0, so
 * `1.0 == 1.0.0 == 1.0.0.0`), leading zeros allowed and ignored, prerelease labels compared
 * case-insensitively, and a label only counts as numeric when it fits NuGet's Int32 parse.
 * Build metadata after `+` is ignored.
 */
import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

interface NuGetVersion {
  parts: [bigint, bigint, bigint, bigint];
  labels: string[];
}

const PATTERN =
  /^([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

const INT32_MAX = 2147483647n;

function parse(v: string): NuGetVersion | null {
  if (typeof v !== 'string') return null;
  const m = PATTERN.exec(v);
  if (m === null) return null;
  const num = (s: string | undefined): bigint => (s === undefined ? 0n : BigInt(s));
  return {
    parts: [num(m[1]), num(m[2]), num(m[3]), num(m[4])],
    labels: m[5] === undefined ? [] : m[5].split('.'),
  };
}

/** NuGet uses Int32.TryParse: digits only here, and overflow means "not numeric". */
function asInt32(label: string): bigint | null {
  if (!/^[0-9]+$/.test(label)) return null;
  const n = BigInt(label);
  return n <= INT32_MAX ? n : null;
}

function compareLabel(x: string, y: string): Ordering {
  const nx = asInt32(x);
  const ny = asInt32(y);
  if (nx !== null && ny !== null) return nx === ny ? 0 : nx < ny ? -1 : 1;
  if (nx !== null) return -1;
  if (ny !== null) return 1;
  // StringComparer.OrdinalIgnoreCase upper-cases both sides, then compares code units.
  const ux = x.toUpperCase();
  const uy = y.toUpperCase();
  return ux === uy ? 0 : ux < uy ? -1 : 1;
}

export function isValidNuGetVersion(v: string): boolean {
  return parse(v) !== null;
}

export function compareNuGetVersions(a: string, b: string): Ordering {
  const pa = parse(a);
  if (pa === null) throw new VersionError(`invalid NuGet version: ${JSON.stringify(a)}`);
  const pb = parse(b);
  if (pb === null) throw new VersionError(`invalid NuGet version: ${JSON.stringify(b)}`);
  for (let i = 0; i < 4; i++) {
    const x = pa.parts[i] as bigint;
    const y = pb.parts[i] as bigint;
    if (x !== y) return x < y ? -1 : 1;
  }
  // A release outranks its prereleases.
  if (pa.labels.length === 0 || pb.labels.length === 0) {
    if (pa.labels.length === pb.labels.length) return 0;
    return pa.labels.length === 0 ? 1 : -1;
  }
  const n = Math.max(pa.labels.length, pb.labels.length);
  for (let i = 0; i < n; i++) {
    const x = pa.labels[i];
    const y = pb.labels[i];
    // A shorter label list that is a prefix of the longer one sorts first.
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const r = compareLabel(x, y);
    if (r !== 0) return r;
  }
  return 0;
}
