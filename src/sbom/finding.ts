import type { LayerRef, PackageType } from './model.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'none' | 'unknown';

export const SEVERITY_ORDER: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'none', 'unknown'];

/** Higher is worse; 'unknown' ranks below 'none' only for sorting, never for policy. */
export function severityRank(s: Severity): number {
  return { critical: 5, high: 4, medium: 3, low: 2, none: 1, unknown: 0 }[s];
}

/** One vulnerability in one installed package. Several ids that name the same flaw are one finding. */
export interface Finding {
  /** The id shown first: the advisory from the database the package was matched in. */
  id: string;
  /** Every other id for the same flaw (CVE, GHSA, DSA, ...), sorted. */
  aliases: string[];
  package: {
    type: PackageType;
    namespace?: string;
    name: string;
    version: string;
    purl: string;
    sourceName?: string;
    layer: LayerRef;
    paths: string[];
  };
  /** The OSV ecosystem the match was made in, e.g. `Debian:12`, `Alpine:v3.20`, `npm`. */
  ecosystem: string;
  /** The package name as the advisory names it (Debian source package, Alpine origin, ...). */
  matchedName: string;
  /** The version compared against the advisory (the source version for Debian). */
  installedVersion: string;
  /** Versions that fix it, lowest first; empty when there is no fix yet. */
  fixedVersions: string[];
  severity: Severity;
  /** CVSS base score when a vector was known. */
  score?: number;
  cvssVector?: string;
  /** Where the severity came from: the record's vector, the database's rating, or the upstream CVE. */
  severitySource?: 'record' | 'database' | 'upstream-cve';
  summary?: string;
  published?: string;
  modified?: string;
  references: string[];
}
