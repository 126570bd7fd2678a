import { splitVector, type MetricDefinitions } from './vector.js';

/**
 * CVSS v3.0 / v3.1 base scores, following FIRST's "CVSS v3.1: Specification Document" section 7.1
 * (base equations), 7.4 (metric values) and Appendix A (Roundup). v3.0's base equations are the
 * same; it differs only in how Roundup is computed (see `roundUp30`).
 */

export type Cvss3Version = '3.0' | '3.1';

export interface Cvss3BaseMetrics {
  readonly AV: 'N' | 'A' | 'L' | 'P';
  readonly AC: 'L' | 'H';
  readonly PR: 'N' | 'L' | 'H';
  readonly UI: 'N' | 'R';
  readonly S: 'U' | 'C';
  readonly C: 'N' | 'L' | 'H';
  readonly I: 'N' | 'L' | 'H';
  readonly A: 'N' | 'L' | 'H';
}

export interface Cvss3Vector {
  readonly version: Cvss3Version;
  readonly base: Cvss3BaseMetrics;
  /** Every metric the vector carried, temporal and environmental ones included, as written. */
  readonly metrics: ReadonlyMap<string, string>;
}

export const CVSS3_BASE_METRICS = ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'] as const;

const IMPACT = ['N', 'L', 'H'] as const;
const REQUIREMENT = ['X', 'L', 'M', 'H'] as const;
const MODIFIED_IMPACT = ['X', 'N', 'L', 'H'] as const;

/**
 * All v3.x metrics (specification section 6, table 15). Temporal and environmental ones are parsed
 * and validated so a typo there is still reported, but they do not enter the base score.
 */
const DEFINITIONS: MetricDefinitions = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'R'],
  S: ['U', 'C'],
  C: IMPACT,
  I: IMPACT,
  A: IMPACT,
  E: ['X', 'U', 'P', 'F', 'H'],
  RL: ['X', 'O', 'T', 'W', 'U'],
  RC: ['X', 'U', 'R', 'C'],
  CR: REQUIREMENT,
  IR: REQUIREMENT,
  AR: REQUIREMENT,
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MAC: ['X', 'L', 'H'],
  MPR: ['X', 'N', 'L', 'H'],
  MUI: ['X', 'N', 'R'],
  MS: ['X', 'U', 'C'],
  MC: MODIFIED_IMPACT,
  MI: MODIFIED_IMPACT,
  MA: MODIFIED_IMPACT,
};

/** Parses a `CVSS:3.0/...` or `CVSS:3.1/...` vector; throws `CvssError` on anything malformed. */
export function parseCvss3(vector: string): Cvss3Vector {
  const { version, metrics } = splitVector(
    vector,
    'CVSS v3',
    ['3.0', '3.1'],
    DEFINITIONS,
    CVSS3_BASE_METRICS,
  );
  // splitVector has checked that every base metric is present with one of its defined values.
  const base = Object.fromEntries(
    CVSS3_BASE_METRICS.map((k) => [k, metrics.get(k)]),
  ) as unknown as Cvss3BaseMetrics;
  return { version: version as Cvss3Version, base, metrics };
}

// Metric weights, specification section 7.4.
const AV_WEIGHT = { N: 0.85, A: 0.62, L: 0.55, P: 0.2 } as const;
const AC_WEIGHT = { L: 0.77, H: 0.44 } as const;
const UI_WEIGHT = { N: 0.85, R: 0.62 } as const;
const CIA_WEIGHT = { H: 0.56, L: 0.22, N: 0 } as const;
// Privileges matter more when the attack reaches beyond the vulnerable component's authority.
const PR_WEIGHT = {
  U: { N: 0.85, L: 0.62, H: 0.27 },
  C: { N: 0.85, L: 0.68, H: 0.5 },
} as const;

/**
 * v3.1 Roundup (Appendix A). Working on an integer number of 1/100000ths first absorbs the binary
 * floating-point noise (e.g. 4.000000000000001) that made naive ceil-based v3.0 calculators round
 * exact tenths up by 0.1.
 */
export function roundUp31(value: number): number {
  const scaled = Math.round(value * 100_000);
  if (scaled % 10_000 === 0) return scaled / 100_000;
  return (Math.floor(scaled / 10_000) + 1) / 10;
}

/**
 * v3.0 Roundup: "the smallest number, specified to one decimal place, that is equal to or higher
 * than its input", applied directly to the double-precision result as FIRST's v3.0 calculator did.
 * Kept distinct from v3.1 on purpose: v3.0 scores published by that calculator (and NVD) carry its
 * occasional +0.1 artefacts, and reproducing a published score matters more here than purity.
 */
export function roundUp30(value: number): number {
  return Math.ceil(value * 10) / 10;
}

/** Base score of a parsed v3 vector (section 7.1), rounded per the vector's own version. */
export function cvss3BaseScoreOf(parsed: Cvss3Vector): number {
  const m = parsed.base;
  const roundUp = parsed.version === '3.0' ? roundUp30 : roundUp31;
  const changed = m.S === 'C';
  const iss = 1 - (1 - CIA_WEIGHT[m.C]) * (1 - CIA_WEIGHT[m.I]) * (1 - CIA_WEIGHT[m.A]);
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15) : 6.42 * iss;
  if (impact <= 0) return 0;
  const exploitability = 8.22 * AV_WEIGHT[m.AV] * AC_WEIGHT[m.AC] * PR_WEIGHT[m.S][m.PR] * UI_WEIGHT[m.UI];
  // Scope change scales the sum by 1.08, which is why both branches need the cap at 10.
  const raw = changed ? 1.08 * (impact + exploitability) : impact + exploitability;
  return roundUp(Math.min(raw, 10));
}

/** Parses and scores a v3.0/v3.1 vector; throws `CvssError` when it is malformed. */
export function cvss3BaseScore(vector: string): number {
  return cvss3BaseScoreOf(parseCvss3(vector));
}
