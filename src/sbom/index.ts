/**
 * The public face of the SBOM module: the package model, the scan result and its vulnerability
 * findings, the writers for each output format and their validators.
 */
import { toCycloneDx } from './cyclonedx.js';
import { toJson } from './json.js';
import type { ScanResult } from './result.js';
import { toSarif, type SarifOptions } from './sarif.js';
import { toSpdx, type SpdxOptions } from './spdx.js';
import { toTable } from './table.js';

export type { LayerRef, OsInfo, Package, PackageRecord, PackageType } from './model.js';
export { OS_PACKAGE_TYPES, PACKAGE_TYPES } from './model.js';
export type { ImageDescription, ScanResult } from './result.js';
export type { Finding, Severity } from './finding.js';
export { SEVERITY_ORDER, severityRank } from './finding.js';
export { buildPurl, imagePurl, normalisePypiName, packageDisplayName, parseImageReference } from './purl.js';
export type { ParsedImageReference } from './purl.js';
export {
  CDX_PROPERTY,
  advisorySource,
  buildCycloneDxBom,
  toCycloneDx,
  validateCycloneDx,
} from './cyclonedx.js';
export {
  DEFAULT_SECURITY_SEVERITY,
  SARIF_FINGERPRINT_KEY,
  SARIF_SCHEMA_URI,
  SARIF_SCHEMA_URIS,
  imagePathUri,
  sarifLevel,
  sarifLogSchema,
  toSarif,
  validateSarif,
} from './sarif.js';
export type { SarifLevel, SarifOptions, SarifValidationIssue } from './sarif.js';
export { spdxDocumentSchema, toSpdx, toSpdxExpression, validateSpdx } from './spdx.js';
export type { SpdxDocument, SpdxOptions, SpdxValidationIssue } from './spdx.js';
export { compareFindings, comparePackages, toJson, toJsonValue } from './json.js';
export { TITLE_WIDTH, toTable } from './table.js';
export type { TableOptions } from './table.js';

export type OutputFormat = 'table' | 'json' | 'cyclonedx' | 'spdx' | 'sarif';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'cyclonedx', 'spdx', 'sarif'];

export interface FormatOptions {
  /** Table only: ANSI colours (pass whether stdout is a terminal). Default false. */
  color?: boolean;
  /** SPDX only: see SpdxOptions.namespaceBase. */
  spdx?: SpdxOptions;
  /** SARIF only: see SarifOptions. */
  sarif?: SarifOptions;
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
    case 'sarif':
      return JSON.stringify(toSarif(result, opts.sarif), null, 2);
    default: {
      const never: never = format;
      throw new RangeError(`unknown output format: ${String(never)}`);
    }
  }
}
