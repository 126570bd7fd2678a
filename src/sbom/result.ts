/**
 * The result of scanning one image: what every output writer (table, JSON, CycloneDX, SPDX) takes.
 * `toJson` in ./json.ts is its canonical serialisation; docs/json-format.md describes each field.
 */
import type { LayerRef, OsInfo, Package } from './model.js';

export interface ImageDescription {
  reference: string;
  manifestDigest: string;
  configDigest: string;
  platform?: { os: string; architecture: string; variant?: string };
  layers: LayerRef[];
  repoTags?: string[];
  created?: string;
}

export interface ScanResult {
  schemaVersion: 1;
  generator: { name: 'portcullis'; version: string };
  scannedAt: string;
  image: ImageDescription;
  os: OsInfo | null;
  packages: Package[];
  warnings: string[];
}
