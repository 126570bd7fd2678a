import type { ScanResult } from '../sbom/result.js';
import { matchPackages, type AdvisorySource, type MatchOptions } from './match.js';

/** Adds vulnerability findings to a scan result; extraction is never redone, only matching. */
export function withVulnerabilities(result: ScanResult, source: AdvisorySource, options: MatchOptions = {}): ScanResult {
  const { findings, warnings } = matchPackages(source, result.os, result.packages, options);
  return { ...result, vulnerabilities: findings, warnings: [...result.warnings, ...warnings] };
}
