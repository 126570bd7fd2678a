import { compareAlpineVersions } from './apk.js';
import { compareComposerVersions } from './composer.js';
import { compareDebianVersions } from './dpkg.js';
import { compareGoVersions } from './go.js';
import { compareMavenVersions } from './maven.js';
import { compareNuGetVersions } from './nuget.js';
import { comparePep440Versions } from './pep440.js';
import { compareRpmVersions } from './rpm.js';
import { compareRubyGemsVersions } from './rubygems.js';
import { compareSemverVersions } from './semver.js';

export { VersionError } from './errors.js';

export type Compare = (a: string, b: string) => number;

/**
 * The version ordering for an OSV ecosystem. The release suffix (`Debian:12`, `Alpine:v3.20`) does
 * not change the ordering, so only the base name counts. Unknown ecosystems get no ordering: the
 * matcher then relies on a record's explicit `versions` list.
 */
const BY_BASE: Record<string, Compare> = {
  Debian: compareDebianVersions,
  Ubuntu: compareDebianVersions,
  Alpine: compareAlpineVersions,
  Wolfi: compareAlpineVersions,
  Chainguard: compareAlpineVersions,
  'Red Hat': compareRpmVersions,
  'Rocky Linux': compareRpmVersions,
  AlmaLinux: compareRpmVersions,
  'openSUSE': compareRpmVersions,
  SUSE: compareRpmVersions,
  Mageia: compareRpmVersions,
  npm: compareSemverVersions,
  'crates.io': compareSemverVersions,
  Go: compareGoVersions,
  PyPI: comparePep440Versions,
  Maven: compareMavenVersions,
  RubyGems: compareRubyGemsVersions,
  NuGet: compareNuGetVersions,
  Packagist: compareComposerVersions,
};

export function ecosystemBase(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  return i < 0 ? ecosystem : ecosystem.slice(0, i);
}

export function orderingFor(ecosystem: string): Compare | undefined {
  return BY_BASE[ecosystemBase(ecosystem)];
}

/** OSV SEMVER ranges use plain SemVer 2.0 whatever the ecosystem; Go's `v` prefix is dropped. */
export function compareSemverRangeVersions(a: string, b: string): number {
  const strip = (v: string) => v.replace(/^v/, '').replace(/\+incompatible$/, '');
  return compareSemverVersions(strip(a), strip(b));
}
