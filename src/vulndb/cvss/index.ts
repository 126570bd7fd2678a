import { cvss3BaseScoreOf, parseCvss3 } from './v3.js';
import { cvss4BaseScoreOf, parseCvss4 } from './v4.js';

export { CvssError } from './errors.js';
export {
  cvss3BaseScore,
  cvss3BaseScoreOf,
  parseCvss3,
  roundUp30,
  roundUp31,
  type Cvss3BaseMetrics,
  type Cvss3Vector,
  type Cvss3Version,
} from './v3.js';
export {
  cvss4BaseScore,
  cvss4BaseScoreOf,
  cvss4MacroVector,
  parseCvss4,
  type Cvss4BaseMetrics,
  type Cvss4Vector,
} from './v4.js';

export type CvssVersion = '3.0' | '3.1' | '4.0';
export type CvssRating = 'none' | 'low' | 'medium' | 'high' | 'critical';

/**
 * Base score of any supported vector, or null when it cannot be scored. Advisory feeds carry all
 * sorts of strings in their severity fields (v2 vectors, bare numbers, typos), and one bad record
 * must not abort a scan, hence null rather than an exception. Use parseCvss3/parseCvss4 directly
 * to learn why a vector was rejected.
 */
export function scoreVector(vector: string): { version: CvssVersion; score: number } | null {
  try {
    if (typeof vector !== 'string') return null;
    if (vector.startsWith('CVSS:3.')) {
      const parsed = parseCvss3(vector);
      return { version: parsed.version, score: cvss3BaseScoreOf(parsed) };
    }
    if (vector.startsWith('CVSS:4.')) {
      const parsed = parseCvss4(vector);
      return { version: parsed.version, score: cvss4BaseScoreOf(parsed) };
    }
    return null;
  } catch {
    // Normally a CvssError; an internal calculator error is swallowed too, because the contract
    // is that one unscorable advisory never aborts a scan. The tests exercise every base vector.
    return null;
  }
}

/**
 * Qualitative severity (v3.1 section 5 and v4.0 section 6 share the scale). Scores carry one
 * decimal, so the bands are closed at the tenths; anything in between (a caller's own average,
 * say) falls into the band of its lower bound, and out-of-range or NaN input is an error.
 */
export function ratingFor(score: number): CvssRating {
  if (!Number.isFinite(score) || score < 0 || score > 10) {
    throw new RangeError(`CVSS score must be between 0.0 and 10.0, got ${score}`);
  }
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (score < 9) return 'high';
  return 'critical';
}
