/**
 * Severity and fix-state filters, and the exit-code policy (`--fail-on`).
 */
import { SEVERITY_ORDER, severityRank, type Finding, type Severity } from '../sbom/finding.js';
import { PolicyError } from './ignore.js';

export interface FilterOptions {
  /** Keep only these severities; undefined or empty keeps all. */
  severities?: Severity[];
  /** Drop findings with no fixed version yet (nothing the user can upgrade to). */
  ignoreUnfixed?: boolean;
}

export function filterFindings(findings: Finding[], opts: FilterOptions = {}): Finding[] {
  const wanted =
    opts.severities !== undefined && opts.severities.length > 0 ? new Set(opts.severities) : undefined;
  return findings.filter(
    (f) =>
      (wanted === undefined || wanted.has(f.severity)) &&
      !(opts.ignoreUnfixed === true && f.fixedVersions.length === 0),
  );
}

function isSeverity(s: string): s is Severity {
  return (SEVERITY_ORDER as readonly string[]).includes(s);
}

/** One severity name, case-insensitive; unknown names are a PolicyError listing the valid ones. */
export function parseSeverity(name: string): Severity {
  const s = name.trim().toLowerCase();
  if (!isSeverity(s)) {
    throw new PolicyError(
      'POLICY_BAD_SEVERITY',
      `unknown severity "${name.trim()}"; valid: ${SEVERITY_ORDER.join(', ')}`,
      {
        subject: name,
      },
    );
  }
  return s;
}

/** `'CRITICAL,HIGH'` → `['critical', 'high']`; duplicates dropped, order kept. Empty is an error. */
export function parseSeverityList(list: string): Severity[] {
  const parts = list
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) {
    throw new PolicyError('POLICY_BAD_SEVERITY', `no severities given; valid: ${SEVERITY_ORDER.join(', ')}`, {
      subject: list,
    });
  }
  const bad = parts.filter((p) => !isSeverity(p.toLowerCase()));
  if (bad.length > 0) {
    const names = bad.map((b) => `"${b}"`).join(', ');
    throw new PolicyError(
      'POLICY_BAD_SEVERITY',
      `unknown severit${bad.length > 1 ? 'ies' : 'y'} ${names}; valid: ${SEVERITY_ORDER.join(', ')}`,
      {
        subject: list,
      },
    );
  }
  return [...new Set(parts.map((p) => parseSeverity(p)))];
}

/**
 * True when any finding is at or above `failOn`. 'unknown' ranks lowest only for sorting: a finding
 * of unknown severity is not known to be at or above any threshold, so it counts only when the
 * threshold itself is 'unknown' (which then means "fail on any finding").
 */
export function shouldFail(findings: ReadonlyArray<{ severity: Severity }>, failOn: Severity): boolean {
  if (failOn === 'unknown') return findings.length > 0;
  const threshold = severityRank(failOn);
  return findings.some((f) => f.severity !== 'unknown' && severityRank(f.severity) >= threshold);
}
