/**
 * PEP 440 ordering for PyPI, delegated to @renovatebot/pep440 (a port of `packaging.version`).
 *
 * The wrapper exists to turn the library's failure modes into VersionError: `compare` throws a
 * TypeError on unparsable input, and it parses numbers with `Number`, so components beyond 2^53
 * would silently collapse together. Neither is acceptable for vulnerability matching.
 */
import { compare, parse } from '@renovatebot/pep440';

import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

/**
 * Returns the version with surrounding whitespace removed (PEP 440 says it is ignored) or null
 * when the library cannot order it faithfully.
 */
function normalise(v: string): string | null {
  if (typeof v !== 'string') return null;
  const trimmed = v.trim();
  if (trimmed.length === 0 || parse(trimmed) === null) return null;
  // Every digit run must survive the library's `Number` conversion exactly.
  for (const run of trimmed.match(/[0-9]+/g) ?? []) {
    if (!Number.isSafeInteger(Number(run))) return null;
  }
  return trimmed;
}

export function isValidPep440Version(v: string): boolean {
  return normalise(v) !== null;
}

export function comparePep440Versions(a: string, b: string): Ordering {
  const na = normalise(a);
  if (na === null) throw new VersionError(`invalid PEP 440 version: ${JSON.stringify(a)}`);
  const nb = normalise(b);
  if (nb === null) throw new VersionError(`invalid PEP 440 version: ${JSON.stringify(b)}`);
  // The library returns the raw length difference for release tuples, so clamp to the sign.
  return Math.sign(compare(na, nb)) as Ordering;
}
