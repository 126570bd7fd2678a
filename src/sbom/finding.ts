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

/** A secret found in a layer file, the image config or its history. Never holds the secret itself. */
export interface SecretFinding {
  /** Stable rule id, e.g. `aws-access-key-id`, `github-pat`, `private-key`. */
  ruleId: string;
  /** Human title of the rule. */
  title: string;
  severity: Severity;
  /** Where: `file` (a layer file), `config` (Env, Labels, Cmd, Entrypoint) or `history` (created_by). */
  location: 'file' | 'config' | 'history';
  /** The file path, or the config field (`Env[2]`, `Labels.key`, `history[3].created_by`). */
  target: string;
  line?: number;
  /** The layer the file is in (file findings only). */
  layer?: LayerRef;
  /** The first 4 characters and the length, e.g. `ghp_…(40 chars)`. */
  redacted: string;
  /** The file was removed or replaced by a later layer: absent from the container, still shipped in the image. */
  deleted?: boolean;
}

/** A misconfiguration check that failed, for an image, a Dockerfile or a Kubernetes object. */
export interface Misconfiguration {
  /** Stable id, e.g. `PC-IMG-001`. */
  id: string;
  title: string;
  severity: Severity;
  /** What was found, specifically (which file, which port, which container). */
  message: string;
  remedy: string;
  /** CIS Docker Benchmark v1.6 section, when the check corresponds to one (e.g. `4.1`). */
  cis?: string;
  /** Pod Security Standards level the check belongs to (Kubernetes checks). */
  pss?: 'baseline' | 'restricted';
  /** Where: a file path (Dockerfile, manifest), a config field or an image path. */
  target: string;
  line?: number;
}
