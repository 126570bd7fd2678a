/**
 * The public face of the SBOM module: the package model, the scan result, the writers for each
 * output format and their validators.
 */
import { toCycloneDx } from './cyclonedx.js';
import { toJson } from './json.js';
import type { ScanResult } from './result.js';
import { toSpdx, type SpdxOptions } from './spdx.js';
import { toTable } from './table.js';

export type { LayerRef, OsInfo, Package, PackageRecord, PackageType } from './model.js';
export { OS_PACKAGE_TYPES } from './model.js';
export type { ImageDescription, ScanResult } from './result.js';
export { buildPurl, imagePurl, normalisePypiName, packageDisplayName, parseImageReference } from './purl.js';
export type { ParsedImageReference } from './purl.js';
export { CDX_PROPERTY, buildCycloneDxBom, toCycloneDx, validateCycloneDx } from './cyclonedx.js';
export { spdxDocumentSchema, toSpdx, toSpdxExpression, validateSpdx } from './spdx.js';
export type { SpdxDocument, SpdxOptions, SpdxValidationIssue } from './spdx.js';
export { comparePackages, toJson, toJsonValue } from './json.js';
export { toTable } from './table.js';
export type { TableOptions } from './table.js';

export type OutputFormat = 'table' | 'json' | 'cyclonedx' | 'spdx';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'cyclonedx', 'spdx'];

export interface FormatOptions {
  /** Table only: ANSI colours (pass whether stdout is a terminal). Default false. */
  color?: boolean;
  /** SPDX only: see SpdxOptions.namespaceBase. */
  spdx?: SpdxOptions;
}

/** Renders a scan result in one of the output formats; JSON formats use a 2-space indent. */
export function formatResult(result: ScanResult, format: OutputFormat, opts: FormatOptions = {}): string {
  switch (format) {
    case 'table':
      return toTable(result, { color: opts.color ?? false });
    case 'json':
      return toJson(result);
    case 'cyclonedx':
      return JSON.stringify(toCycloneDx(result), null, 2);
    case 'spdx':
      return JSON.stringify(toSpdx(result, opts.spdx), null, 2);
    default: {
      const never: never = format;
      throw new RangeError(`unknown output format: ${String(never)}`);
    }
  }
}
