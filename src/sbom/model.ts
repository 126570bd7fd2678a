/**
 * The package model shared by analysers, SBOM writers and (later) the vulnerability matcher.
 * `PackageType` values are purl types, so a package's ecosystem and its purl never disagree.
 */
export const PACKAGE_TYPES = ['apk', 'deb', 'rpm', 'npm', 'pypi', 'maven', 'golang', 'gem', 'cargo', 'composer', 'nuget'] as const;
export type PackageType = (typeof PACKAGE_TYPES)[number];

export const OS_PACKAGE_TYPES: ReadonlySet<PackageType> = new Set(['apk', 'deb', 'rpm']);

/** What an analyser reports for one package, before the squash adds layer, purl and ownership. */
export interface PackageRecord {
  type: PackageType;
  /** purl namespace: Maven groupId, npm scope (with @), Go module path prefix; absent otherwise. */
  namespace?: string;
  name: string;
  version: string;
  /** OS packages: the source package (Debian Source, Alpine origin, RPM source rpm name). */
  sourceName?: string;
  sourceVersion?: string;
  arch?: string;
  /** RPM epoch, when not zero. */
  epoch?: number;
  licenses?: string[];
  /** npm: only a development dependency. */
  dev?: boolean;
  /** Files that declare this package (package DB, METADATA, jar, lockfile, binary). */
  paths?: string[];
  /** Free-form facts worth keeping (Go toolchain version, jar path inside a jar, ...). */
  properties?: Record<string, string>;
}

export interface OsInfo {
  /** Lower-case distro id as in os-release ID: alpine, debian, ubuntu, rhel, rocky, ... */
  family: string;
  version: string;
  /** A friendlier name, from PRETTY_NAME when present. */
  name?: string;
  /** Codename (VERSION_CODENAME) when known. */
  codename?: string;
}

export interface LayerRef {
  index: number;
  /** Digest of the layer blob as stored (compressed). */
  digest: string;
  /** Uncompressed digest from the config's rootfs.diff_ids, when known. */
  diffId?: string;
}

/** A package as it appears in the final (squashed) image. */
export interface Package extends PackageRecord {
  purl: string;
  paths: string[];
  licenses: string[];
  layer: LayerRef;
  /** Which analyser found it. */
  foundBy: string;
  /** Set on language packages whose files an OS package manager installed (vendor first matching). */
  ownedBy?: { type: 'deb' | 'apk' | 'rpm'; name: string };
}
