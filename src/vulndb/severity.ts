import type { Severity } from '../sbom/finding.js';
import { ratingFor, scoreVector } from './cvss/index.js';

export interface SeverityInput {
  type: string;
  score: string;
}

export interface ResolvedSeverity {
  severity: Severity;
  score?: number;
  vector?: string;
}

const VECTOR_PREFERENCE = ['CVSS_V4', 'CVSS_V3'];

/** Scores the best CVSS vector among `severity[]` entries: v4 first, then v3.x. */
export function severityFromVectors(entries: readonly SeverityInput[] | undefined): ResolvedSeverity | undefined {
  if (!entries?.length) return undefined;
  const sorted = [...entries].sort((a, b) => rank(a.type) - rank(b.type));
  for (const e of sorted) {
    const scored = scoreVector(e.score);
    if (scored) return { severity: ratingFor(scored.score), score: scored.score, vector: e.score };
  }
  return undefined;
}

function rank(type: string): number {
  const i = VECTOR_PREFERENCE.indexOf(type);
  return i < 0 ? VECTOR_PREFERENCE.length : i;
}

/** GHSA and some distros publish a word instead of a vector. */
export function severityFromWord(word: string | undefined): Severity | undefined {
  switch (word?.trim().toLowerCase()) {
    case 'critical':
      return 'critical';
    case 'high':
    case 'important':
      return 'high';
    case 'moderate':
    case 'medium':
      return 'medium';
    case 'low':
    case 'negligible':
      return 'low';
    default:
      return undefined;
  }
}
