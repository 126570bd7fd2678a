import { MACROVECTOR_SCORES } from './v4-macrovectors.js';
import { splitVector, type MetricDefinitions } from './vector.js';

/**
 * CVSS v4.0 base (CVSS-B) scores, following FIRST's "CVSS v4.0 Specification Document" section 8:
 * a vector is mapped to a MacroVector (six equivalence classes, EQ1..EQ6) whose expert-assigned
 * score is looked up, then lowered by interpolating how far the vector sits from the
 * highest-severity vectors of its MacroVector towards the next-lower MacroVectors.
 *
 * Only the base group is scored. Threat, environmental and supplemental metrics are validated but
 * play no part: the result is what the specification calls CVSS-B, which is what a scanner can
 * state about a vulnerability without knowing the deployment.
 */

const IMPACT = ['N', 'L', 'H'] as const;
const REQUIREMENT = ['X', 'H', 'M', 'L'] as const;
const MODIFIED_IMPACT = ['X', 'H', 'L', 'N'] as const;
const MODIFIED_SUBSEQUENT = ['X', 'S', 'H', 'L', 'N'] as const;

export const CVSS4_BASE_METRICS = ['AV', 'AC', 'AT', 'PR', 'UI', 'VC', 'VI', 'VA', 'SC', 'SI', 'SA'] as const;

/** Every v4.0 metric and its values (specification section 7, "Vector String"). */
const DEFINITIONS: MetricDefinitions = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  AT: ['N', 'P'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'P', 'A'],
  VC: IMPACT,
  VI: IMPACT,
  VA: IMPACT,
  SC: IMPACT,
  SI: IMPACT,
  SA: IMPACT,
  E: ['X', 'A', 'P', 'U'],
  CR: REQUIREMENT,
  IR: REQUIREMENT,
  AR: REQUIREMENT,
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MAC: ['X', 'L', 'H'],
  MAT: ['X', 'N', 'P'],
  MPR: ['X', 'N', 'L', 'H'],
  MUI: ['X', 'N', 'P', 'A'],
  MVC: MODIFIED_IMPACT,
  MVI: MODIFIED_IMPACT,
  MVA: MODIFIED_IMPACT,
  MSC: MODIFIED_IMPACT,
  MSI: MODIFIED_SUBSEQUENT,
  MSA: MODIFIED_SUBSEQUENT,
  S: ['X', 'N', 'P'],
  AU: ['X', 'N', 'Y'],
  R: ['X', 'A', 'U', 'I'],
  V: ['X', 'D', 'C'],
  RE: ['X', 'L', 'M', 'H'],
  U: ['X', 'Clear', 'Green', 'Amber', 'Red'],
};

export interface Cvss4BaseMetrics {
  readonly AV: 'N' | 'A' | 'L' | 'P';
  readonly AC: 'L' | 'H';
  readonly AT: 'N' | 'P';
  readonly PR: 'N' | 'L' | 'H';
  readonly UI: 'N' | 'P' | 'A';
  readonly VC: 'N' | 'L' | 'H';
  readonly VI: 'N' | 'L' | 'H';
  readonly VA: 'N' | 'L' | 'H';
  readonly SC: 'N' | 'L' | 'H';
  readonly SI: 'N' | 'L' | 'H';
  readonly SA: 'N' | 'L' | 'H';
}

export interface Cvss4Vector {
  readonly version: '4.0';
  readonly base: Cvss4BaseMetrics;
  /** Every metric the vector carried (threat, environmental, supplemental included), as written. */
  readonly metrics: ReadonlyMap<string, string>;
}

/** Parses a `CVSS:4.0/...` vector; throws `CvssError` on anything malformed. */
export function parseCvss4(vector: string): Cvss4Vector {
  const { metrics } = splitVector(vector, 'CVSS v4.0', ['4.0'], DEFINITIONS, CVSS4_BASE_METRICS);
  // splitVector has checked that every base metric is present with one of its defined values.
  const base = Object.fromEntries(
    CVSS4_BASE_METRICS.map((k) => [k, metrics.get(k)]),
  ) as unknown as Cvss4BaseMetrics;
  return { version: '4.0', base, metrics };
}

/**
 * The metric values the scoring algorithm reads. For CVSS-B the threat metric takes its
 * "Not Defined" meaning, Attacked (worst case), and the security requirements take High, exactly
 * as the specification defines X for them; subsequent-system Safety (MSI/MSA = S) cannot arise.
 */
type Effective = Cvss4BaseMetrics & {
  readonly E: 'A' | 'P' | 'U';
  readonly CR: 'H' | 'M' | 'L';
  readonly IR: 'H' | 'M' | 'L';
  readonly AR: 'H' | 'M' | 'L';
};
type ScoredMetric = keyof Effective;

function baseOnly(base: Cvss4BaseMetrics): Effective {
  return { ...base, E: 'A', CR: 'H', IR: 'H', AR: 'H' };
}

/**
 * Severity steps of each value, 0 = most severe. Distances are counted in whole steps so the
 * interpolation below works on exact small integers rather than accumulating decimal noise.
 * SC has no Safety value, so its scale starts at 1 to line up with SI/SA (where S is step 0).
 */
const STEP: Readonly<Record<ScoredMetric, Readonly<Record<string, number>>>> = {
  AV: { N: 0, A: 1, L: 2, P: 3 },
  PR: { N: 0, L: 1, H: 2 },
  UI: { N: 0, P: 1, A: 2 },
  AC: { L: 0, H: 1 },
  AT: { N: 0, P: 1 },
  VC: { H: 0, L: 1, N: 2 },
  VI: { H: 0, L: 1, N: 2 },
  VA: { H: 0, L: 1, N: 2 },
  SC: { H: 1, L: 2, N: 3 },
  SI: { S: 0, H: 1, L: 2, N: 3 },
  SA: { S: 0, H: 1, L: 2, N: 3 },
  CR: { H: 0, M: 1, L: 2 },
  IR: { H: 0, M: 1, L: 2 },
  AR: { H: 0, M: 1, L: 2 },
  E: { A: 0, P: 1, U: 2 },
};

function stepOf(metric: ScoredMetric, value: string): number {
  const step = STEP[metric][value];
  if (step === undefined) throw new Error(`no severity step for ${metric}:${value}`);
  return step;
}

/** The MacroVector (EQ1..EQ6 levels, specification section 8) of a vector's base metrics. */
export function cvss4MacroVector(parsed: Cvss4Vector): string {
  return macroVectorOf(baseOnly(parsed.base));
}

function macroVectorOf(m: Effective): string {
  const eq1 =
    m.AV === 'N' && m.PR === 'N' && m.UI === 'N'
      ? 0
      : (m.AV === 'N' || m.PR === 'N' || m.UI === 'N') && m.AV !== 'P'
        ? 1
        : 2;
  const eq2 = m.AC === 'L' && m.AT === 'N' ? 0 : 1;
  const eq3 = m.VC === 'H' && m.VI === 'H' ? 0 : m.VC === 'H' || m.VI === 'H' || m.VA === 'H' ? 1 : 2;
  // Level 0 needs MSI/MSA = Safety, an environmental value, so a base vector is at 1 or 2.
  const eq4 = m.SC === 'H' || m.SI === 'H' || m.SA === 'H' ? 1 : 2;
  const eq5 = stepOf('E', m.E);
  const eq6 =
    (m.CR === 'H' && m.VC === 'H') || (m.IR === 'H' && m.VI === 'H') || (m.AR === 'H' && m.VA === 'H')
      ? 0
      : 1;
  return `${eq1}${eq2}${eq3}${eq4}${eq5}${eq6}`;
}

/**
 * The highest-severity vectors of each EQ level, and the depth of each level in severity steps
 * (the specification's maximal severity distance, +1 so the lowest vector of a level stays short of
 * the next level's score). Both are data of the standard, written as in FIRST's reference calculator
 * (https://github.com/RedHatProductSecurity/cvss-v4-calculator, MAX_COMPOSED / MAX_SEVERITY); the
 * order of the alternatives matters, the first one that dominates the vector is the reference point.
 * EQ3 and EQ6 are interlinked (both read VC/VI/VA), so they are measured as one, keyed "EQ3EQ6".
 */
interface Level {
  readonly highest: readonly (readonly [ScoredMetric, number][])[];
  readonly depth: number;
}

function level(depth: number, ...highest: string[]): Level {
  const parse = (v: string): [ScoredMetric, number][] =>
    v.split('/').map((pair) => {
      const [metric, value] = pair.split(':') as [ScoredMetric, string];
      return [metric, stepOf(metric, value)];
    });
  return { depth, highest: highest.map(parse) };
}

const EQ1: Readonly<Record<string, Level>> = {
  '0': level(1, 'AV:N/PR:N/UI:N'),
  '1': level(4, 'AV:A/PR:N/UI:N', 'AV:N/PR:L/UI:N', 'AV:N/PR:N/UI:P'),
  '2': level(5, 'AV:P/PR:N/UI:N', 'AV:A/PR:L/UI:P'),
};
const EQ2: Readonly<Record<string, Level>> = {
  '0': level(1, 'AC:L/AT:N'),
  '1': level(2, 'AC:H/AT:N', 'AC:L/AT:P'),
};
const EQ3EQ6: Readonly<Record<string, Level>> = {
  '00': level(7, 'VC:H/VI:H/VA:H/CR:H/IR:H/AR:H'),
  '01': level(6, 'VC:H/VI:H/VA:L/CR:M/IR:M/AR:H', 'VC:H/VI:H/VA:H/CR:M/IR:M/AR:M'),
  '10': level(8, 'VC:L/VI:H/VA:H/CR:H/IR:H/AR:H', 'VC:H/VI:L/VA:H/CR:H/IR:H/AR:H'),
  '11': level(
    8,
    'VC:L/VI:H/VA:L/CR:H/IR:M/AR:H',
    'VC:L/VI:H/VA:H/CR:H/IR:M/AR:M',
    'VC:H/VI:L/VA:H/CR:M/IR:H/AR:M',
    'VC:H/VI:L/VA:L/CR:M/IR:H/AR:H',
    'VC:L/VI:L/VA:H/CR:H/IR:H/AR:M',
  ),
  '21': level(10, 'VC:L/VI:L/VA:L/CR:H/IR:H/AR:H'),
};
const EQ4: Readonly<Record<string, Level>> = {
  '0': level(6, 'SC:H/SI:S/SA:S'),
  '1': level(5, 'SC:H/SI:H/SA:H'),
  '2': level(4, 'SC:L/SI:L/SA:L'),
};

/**
 * Distance, in severity steps, from the first highest-severity vector of the level that is at
 * least as severe as `m` in every metric. Every reachable vector has one; not finding one means the
 * tables above are wrong, which must fail loudly rather than score silently.
 */
function distanceWithin(
  m: Effective,
  lvl: Level | undefined,
  what: string,
): { distance: number; depth: number } {
  if (lvl) {
    for (const candidate of lvl.highest) {
      const gaps = candidate.map(([metric, top]) => stepOf(metric, m[metric]) - top);
      if (gaps.every((gap) => gap >= 0))
        return { distance: gaps.reduce((a, b) => a + b, 0), depth: lvl.depth };
    }
  }
  throw new Error(`CVSS v4.0 internal error: no highest-severity vector for ${what}`);
}

/** Rounds half up to one decimal; the margin absorbs binary noise in an exact .x5 midpoint. */
function roundToTenth(value: number): number {
  return Math.round((value + 1e-6) * 10) / 10;
}

function scoreEffective(m: Effective): number {
  // With no impact on either system there is nothing to score (specification section 8).
  if ([m.VC, m.VI, m.VA, m.SC, m.SI, m.SA].every((v) => v === 'N')) return 0;

  const macro = macroVectorOf(m);
  const top = MACROVECTOR_SCORES[macro];
  if (top === undefined) throw new Error(`CVSS v4.0 internal error: no score for MacroVector ${macro}`);
  const [eq1, eq2, eq3, eq4, eq5, eq6] = macro.split('').map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];

  const scoreOf = (levels: readonly number[]): number | undefined => MACROVECTOR_SCORES[levels.join('')];
  const lowerScore = (index: number): number | undefined => {
    const levels = [eq1, eq2, eq3, eq4, eq5, eq6];
    levels[index] = (levels[index] ?? 0) + 1;
    return scoreOf(levels);
  };

  // EQ3 and EQ6 step down together along 00 -> {01, 10} -> 11 -> 21; from 00 both neighbours are
  // one step lower, and the specification takes the higher-scoring one as "the" next MacroVector.
  let lowerEq3Eq6: number | undefined;
  if (eq3 === 0 && eq6 === 0) {
    const viaEq6 = lowerScore(5);
    const viaEq3 = lowerScore(2);
    lowerEq3Eq6 = viaEq6 === undefined || viaEq3 === undefined ? undefined : Math.max(viaEq6, viaEq3);
  } else if (eq3 === 1 && eq6 === 0) {
    lowerEq3Eq6 = lowerScore(5);
  } else if (eq3 <= 1) {
    lowerEq3Eq6 = lowerScore(2);
  }

  const parts: { lower: number | undefined; proportion: () => number }[] = [
    { lower: lowerScore(0), proportion: () => share(distanceWithin(m, EQ1[`${eq1}`], `EQ1=${eq1}`)) },
    { lower: lowerScore(1), proportion: () => share(distanceWithin(m, EQ2[`${eq2}`], `EQ2=${eq2}`)) },
    {
      lower: lowerEq3Eq6,
      proportion: () => share(distanceWithin(m, EQ3EQ6[`${eq3}${eq6}`], `EQ3EQ6=${eq3}${eq6}`)),
    },
    { lower: lowerScore(3), proportion: () => share(distanceWithin(m, EQ4[`${eq4}`], `EQ4=${eq4}`)) },
    // EQ5 is a single metric, so every vector is its level's highest: it counts towards the mean
    // with a zero shift, which is how the specification dampens the other EQs' shifts.
    { lower: lowerScore(4), proportion: () => 0 },
  ];

  // Each EQ that has a lower MacroVector shifts the score down by the gap to that MacroVector
  // times how deep into its own level the vector sits; the shifts are averaged. EQs at their
  // lowest level have nothing to interpolate towards and are left out of the mean.
  let total = 0;
  let counted = 0;
  for (const part of parts) {
    if (part.lower === undefined) continue;
    counted += 1;
    total += (top - part.lower) * part.proportion();
  }
  const mean = counted === 0 ? 0 : total / counted;
  return roundToTenth(Math.min(10, Math.max(0, top - mean)));
}

function share({ distance, depth }: { distance: number; depth: number }): number {
  return distance / depth;
}

/** CVSS-B score of a parsed v4.0 vector. */
export function cvss4BaseScoreOf(parsed: Cvss4Vector): number {
  return scoreEffective(baseOnly(parsed.base));
}

/** Parses and scores a v4.0 vector (CVSS-B); throws `CvssError` when it is malformed. */
export function cvss4BaseScore(vector: string): number {
  return cvss4BaseScoreOf(parseCvss4(vector));
}
