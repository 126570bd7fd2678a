/**
 * Debian package version ordering (Debian and Ubuntu), following dpkg's own rules as described in
 * Debian Policy §5.6.12 and deb-version(7): `[epoch:]upstream_version[-debian_revision]`.
 *
 * Validation is deliberately as strict as dpkg's parser including the checks dpkg only *warns*
 * about (upstream must start with a digit, restricted character sets): a scanner that silently
 * accepted a malformed version could report a fixed package as vulnerable or the reverse, so we
 * would rather surface a VersionError to the caller.
 */
import { VersionError } from './errors.js';

export interface DebianVersion {
  /** Missing epoch is 0, exactly as dpkg treats it. */
  epoch: number;
  upstream: string;
  /** '' when the version has no hyphen; dpkg orders '' the same as '0'. */
  revision: string;
}

/** dpkg stores the epoch in an int and refuses larger values. */
const MAX_EPOCH = 2147483647;

/** Upstream may contain ':' (only reachable after an explicit epoch) and '-' (only with a revision). */
const UPSTREAM_CHARS = /^[0-9][A-Za-z0-9.+~:-]*$/;
const REVISION_CHARS = /^[A-Za-z0-9.+~]+$/;
/** dpkg trims blanks (space, tab) from both ends; any other whitespace is an invalid character. */
const EDGE_SPACE = /^[ \t]+|[ \t]+$/g;

export function parseDebianVersion(v: string): DebianVersion | null {
  if (typeof v !== 'string') return null;
  // dpkg treats '' as "no version" rather than a version; a comparison needs a real one.
  const s = v.replace(EDGE_SPACE, '');
  if (s === '') return null;

  // The epoch is everything before the *first* colon; later colons belong to upstream.
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon !== -1) {
    const epochText = s.slice(0, colon);
    if (!/^[0-9]+$/.test(epochText)) return null;
    epoch = Number(epochText);
    if (epoch > MAX_EPOCH) return null;
    rest = s.slice(colon + 1);
  }

  // The revision is everything after the *last* hyphen, so upstream may keep its own hyphens.
  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen !== -1) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (!REVISION_CHARS.test(revision)) return null;
  }
  if (!UPSTREAM_CHARS.test(upstream)) return null;
  return { epoch, upstream, revision };
}

export function isValidDebianVersion(v: string): boolean {
  return parseDebianVersion(v) !== null;
}

/**
 * Weight of one character in a non-digit run. '~' sorts before everything including the end of
 * the string (so 1.0~rc1 < 1.0), letters sort before all other punctuation, and the end of the
 * string (or a digit, which ends the run) weighs 0.
 */
function weight(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  if (c >= 48 && c <= 57) return 0;
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return c;
  if (c === 126) return -1;
  return c + 256;
}

function isDigitAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/** Compares two digit runs numerically without converting, so arbitrarily long runs are exact. */
function compareDigitRuns(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * dpkg's string ordering for upstream and revision: alternately compare a non-digit run
 * character by character (by weight) and a digit run numerically, until both strings end.
 */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigitAt(a, i)) || (j < b.length && !isDigitAt(b, j))) {
      const d = weight(a, i) - weight(b, j);
      if (d !== 0) return d < 0 ? -1 : 1;
      i++;
      j++;
    }
    const si = i;
    const sj = j;
    while (i < a.length && isDigitAt(a, i)) i++;
    while (j < b.length && isDigitAt(b, j)) j++;
    const d = compareDigitRuns(a.slice(si, i), b.slice(sj, j));
    if (d !== 0) return d;
  }
  return 0;
}

function parseOrThrow(v: string): DebianVersion {
  const p = parseDebianVersion(v);
  if (p === null) throw new VersionError(`invalid Debian version: ${JSON.stringify(v)}`);
  return p;
}

export function compareDebianVersions(a: string, b: string): -1 | 0 | 1 {
  const x = parseOrThrow(a);
  const y = parseOrThrow(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  const u = compareFragment(x.upstream, y.upstream);
  if (u !== 0) return u < 0 ? -1 : 1;
  // An absent revision compares as '' which the fragment ordering treats exactly like '0'.
  const r = compareFragment(x.revision, y.revision);
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}
