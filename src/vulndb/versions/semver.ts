/**
 * SemVer 2.0.0 ordering for npm and crates.io as OSV records them.
 *
 * Parsing and precedence come from the `semver` package in strict mode (loose off) so that we
 * agree with npm itself. Build metadata is ignored for ordering, as SemVer requires.
 */
import semver from 'semver';

import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

/**
 * Parses one version or returns null. `semver` trims surrounding whitespace and tolerates `=`
 * only in loose mode; we reject whitespace ourselves so that a padded string in the database is
 * reported rather than silently matched. A single leading lowercase `v` is accepted because some
 * GHSA-sourced npm records carry it and `semver` strict mode accepts it too.
 */
function parse(v: string): semver.SemVer | null {
  if (typeof v !== 'string' || v.length === 0 || v !== v.trim()) return null;
  return semver.parse(v, { loose: false });
}

export function isValidSemverVersion(v: string): boolean {
  return parse(v) !== null;
}

export function compareSemverVersions(a: string, b: string): Ordering {
  const pa = parse(a);
  if (pa === null) throw new VersionError(`invalid semver version: ${JSON.stringify(a)}`);
  const pb = parse(b);
  if (pb === null) throw new VersionError(`invalid semver version: ${JSON.stringify(b)}`);
  return pa.compare(pb);
}
