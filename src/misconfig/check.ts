import type { Misconfiguration, Severity } from '../sbom/finding.js';
import { byCodeUnits as cmp } from '../text-order.js';

/** The fixed part of a check: everything in a Misconfiguration except where and what was found. */
export interface CheckDef {
  id: string;
  title: string;
  severity: Severity;
  remedy: string;
  /** CIS Docker Benchmark v1.6 section. */
  cis?: string;
  /** Pod Security Standards level; undefined for checks that are good practice but not in PSS. */
  pss?: 'baseline' | 'restricted';
}

/** Builds a finding from a check definition; optional fields are left out rather than set to undefined. */
export function misconfig(def: CheckDef, message: string, target: string, line?: number): Misconfiguration {
  const m: Misconfiguration = {
    id: def.id,
    title: def.title,
    severity: def.severity,
    message,
    remedy: def.remedy,
    target,
  };
  if (def.cis !== undefined) m.cis = def.cis;
  if (def.pss !== undefined) m.pss = def.pss;
  if (line !== undefined) m.line = line;
  return m;
}

/** Stable output order: by line, then id, then message, so repeated scans diff cleanly. */
export function sortFindings(list: Misconfiguration[]): Misconfiguration[] {
  return list.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || cmp(a.id, b.id) || cmp(a.message, b.message));
}
