/**
 * RPM version ordering (RHEL, Fedora, CentOS, Rocky, Alma, Amazon Linux, SUSE, ...), following
 * rpm's rpmvercmp for the version and release fields and its EVR rules around them.
 *
 * Strings take the form `[epoch:]version[-release]`. The epoch is compared numerically (missing
 * is 0), then the version, then the release -- but only when both sides have one, which is how
 * rpm matches a dependency or advisory range such as `>= 1.2` against `1.2-3.el9`. A consequence
 * is that this ordering is not transitive across mixed inputs (1.0-1 = 1.0 = 1.0-2, yet
 * 1.0-1 < 1.0-2); sort only lists where every entry has a release, or none does.
 */
import { VersionError } from './errors.js';

export interface RpmEvr {
  /** Missing, null or '' mean 0. */
  epoch?: number | string | null;
  version: string;
  /** Missing, null or '' mean "no release": compare the version only. */
  release?: string | null;
}

/**
 * rpm itself treats any other byte as a separator, but rpmbuild only lets these characters into
 * Version and Release, so anything else (spaces, '-', ':', non-ASCII) indicates a mis-parsed
 * string and is rejected rather than silently ordered.
 */
const FIELD = /^[A-Za-z0-9._+~^]+$/;
const EPOCH = /^[0-9]+$/;

interface Parsed {
  epoch: string;
  version: string;
  release: string | null;
}

/** Splits `[epoch:]version[-release]`, the epoch at the first ':' and the release at the '-'. */
function parse(v: string): Parsed | null {
  if (typeof v !== 'string') return null;
  let epoch = '0';
  let rest = v;
  const colon = v.indexOf(':');
  if (colon !== -1) {
    epoch = v.slice(0, colon);
    if (!EPOCH.test(epoch)) return null;
    rest = v.slice(colon + 1);
  }
  let version = rest;
  let release: string | null = null;
  const hyphen = rest.lastIndexOf('-');
  if (hyphen !== -1) {
    version = rest.slice(0, hyphen);
    release = rest.slice(hyphen + 1);
    if (!FIELD.test(release)) return null;
  }
  // FIELD excludes '-' and ':', so at most one hyphen and one colon survive parsing.
  if (!FIELD.test(version)) return null;
  return { epoch, version, release };
}

export function isValidRpmVersion(v: string): boolean {
  return parse(v) !== null;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

const TILDE = 126;
const CARET = 94;

function compareDigitRuns(a: string, b: string): -1 | 0 | 1 {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * rpmvercmp on one field. Both strings are cut into maximal runs of digits or of ASCII letters;
 * everything else except '~' and '^' only separates runs, and how many separators there are does
 * not matter (1.0 = 1_0 = 1..0). Runs are compared pairwise: digits numerically ignoring leading
 * zeros, letters byte-wise, and a digit run is newer than a letter run. '~' sorts before anything,
 * even the end of the string (1.0~rc1 < 1.0); '^' sorts after the end but before anything else
 * (1.0 < 1.0^git1 < 1.0.1).
 */
function compareRpmField(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  for (;;) {
    while (
      i < a.length &&
      !isDigit(a.charCodeAt(i)) &&
      !isAlpha(a.charCodeAt(i)) &&
      a.charCodeAt(i) !== TILDE &&
      a.charCodeAt(i) !== CARET
    )
      i++;
    while (
      j < b.length &&
      !isDigit(b.charCodeAt(j)) &&
      !isAlpha(b.charCodeAt(j)) &&
      b.charCodeAt(j) !== TILDE &&
      b.charCodeAt(j) !== CARET
    )
      j++;
    const ca = i < a.length ? a.charCodeAt(i) : -1;
    const cb = j < b.length ? b.charCodeAt(j) : -1;

    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === CARET || cb === CARET) {
      // A caret beats the end of the other string but loses to any further run there.
      if (ca === -1) return -1;
      if (cb === -1) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === -1 || cb === -1) {
      if (ca === -1 && cb === -1) return 0;
      // Whoever still has a run left is newer.
      return ca === -1 ? -1 : 1;
    }

    const numeric = isDigit(ca);
    if (numeric !== isDigit(cb)) return numeric ? 1 : -1;
    const test = numeric ? isDigit : isAlpha;
    const si = i;
    const sj = j;
    while (i < a.length && test(a.charCodeAt(i))) i++;
    while (j < b.length && test(b.charCodeAt(j))) j++;
    const x = a.slice(si, i);
    const y = b.slice(sj, j);
    const c = numeric ? compareDigitRuns(x, y) : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
}

function normaliseEpoch(e: number | string | null | undefined): string | null {
  if (e === undefined || e === null || e === '') return '0';
  if (typeof e === 'number') return Number.isSafeInteger(e) && e >= 0 ? String(e) : null;
  return typeof e === 'string' && EPOCH.test(e) ? e : null;
}

function normalise(v: RpmEvr): Parsed | null {
  if (v === null || typeof v !== 'object') return null;
  const epoch = normaliseEpoch(v.epoch);
  if (epoch === null || typeof v.version !== 'string' || !FIELD.test(v.version)) return null;
  const release = v.release === undefined || v.release === null || v.release === '' ? null : v.release;
  if (release !== null && (typeof release !== 'string' || !FIELD.test(release))) return null;
  return { epoch, version: v.version, release };
}

function compareParsed(x: Parsed, y: Parsed): -1 | 0 | 1 {
  const e = compareDigitRuns(x.epoch, y.epoch);
  if (e !== 0) return e;
  const v = compareRpmField(x.version, y.version);
  if (v !== 0) return v;
  if (x.release === null || y.release === null) return 0;
  return compareRpmField(x.release, y.release);
}

export function compareRpmVersions(a: string, b: string): -1 | 0 | 1 {
  const x = parse(a);
  if (x === null) throw new VersionError(`invalid RPM version: ${JSON.stringify(a)}`);
  const y = parse(b);
  if (y === null) throw new VersionError(`invalid RPM version: ${JSON.stringify(b)}`);
  return compareParsed(x, y);
}

export function compareRpmEvr(a: RpmEvr, b: RpmEvr): -1 | 0 | 1 {
  const x = normalise(a);
  if (x === null) throw new VersionError(`invalid RPM EVR: ${JSON.stringify(a)}`);
  const y = normalise(b);
  if (y === null) throw new VersionError(`invalid RPM EVR: ${JSON.stringify(b)}`);
  return compareParsed(x, y);
}
