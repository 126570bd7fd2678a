/**
 * The result of scanning one image: what every output writer (table, JSON, CycloneDX, SPDX) takes.
 * `toJson` in ./json.ts is its canonical serialisation; docs/json-format.md describes each field.
 */
import type { Finding, Misconfiguration, SecretFinding } from './finding.js';
import type { LayerRef, OsInfo, Package } from './model.js';

export interface ImageDescription {
  reference: string;
  manifestDigest: string;
  configDigest: string;
  platform?: { os: string; architecture: string; variant?: string };
  layers: LayerRef[];
  repoTags?: string[];
  created?: string;
  /** The config's Labels (e.g. org.opencontainers.image.base.name), for policies; not in the JSON output. */
  labels?: Record<string, string>;
  /** The manifest's annotations, for policies; not in the JSON output. */
  annotations?: Record<string, string>;
}

export interface ScanResult {
  schemaVersion: 1;
  generator: { name: 'portcullis'; version: string };
  scannedAt: string;
  image: ImageDescription;
  os: OsInfo | null;
  packages: Package[];
  warnings: string[];
  /**
   * Present when the scan was matched against a vulnerability database (scan, not sbom):
   * findings after --severity/--ignore-unfixed filters and suppressions.
   */
  vulnerabilities?: Finding[];
  /** Findings left out by the ignore file or a VEX statement, with the reason shown to the user. */
  suppressed?: Array<{ finding: Finding; reason: string; source: string }>;
  /** Secrets found in any layer (deleted ones included, marked) and in the config and history. */
  secrets?: SecretFinding[];
  /** Failed misconfiguration checks. */
  misconfigurations?: Misconfiguration[];
}
