/**
 * Applies the user's ignore rules and VEX statements to a scan's findings. Pure: the caller loads
 * the files and passes the clock, so results are reproducible and testable.
 */
import type { Finding } from '../sbom/finding.js';
import { ignoreRuleMatches, isIgnoreExpired, type IgnoreRule } from './ignore.js';
import {
  describeVexStatement,
  vexDecision,
  vexSuppresses,
  type ImageIdentity,
  type VexStatement,
} from './vex.js';

export interface SuppressOptions {
  ignore?: IgnoreRule[];
  vex?: VexStatement[];
  /** The scanned image, so VEX statements about the image as a whole can apply. */
  image?: ImageIdentity;
  /** Defaults to the current time; only used to decide ignore-rule expiry. */
  now?: Date;
}

export interface SuppressedFinding {
  finding: Finding;
  reason: string;
  /** Where the decision came from: `<ignore file>:<line>` or `<vex file> statement <n>`. */
  source: string;
}

export interface SuppressResult {
  kept: Finding[];
  suppressed: SuppressedFinding[];
  /** Ignore rules past their expiry date; they no longer suppress and should be renewed or removed. */
  expiredIgnores: IgnoreRule[];
}

function ruleSource(rule: IgnoreRule): string {
  return rule.line !== undefined ? `${rule.source}:${rule.line}` : rule.source;
}

export function applySuppressions(findings: Finding[], opts: SuppressOptions = {}): SuppressResult {
  const now = opts.now ?? new Date();
  const active: IgnoreRule[] = [];
  const expiredIgnores: IgnoreRule[] = [];
  // Every expired rule is reported, matched or not: a stale exception is worth cleaning up either way.
  for (const rule of opts.ignore ?? []) (isIgnoreExpired(rule, now) ? expiredIgnores : active).push(rule);
  const statements = opts.vex ?? [];

  const kept: Finding[] = [];
  const suppressed: SuppressedFinding[] = [];
  for (const finding of findings) {
    // VEX first: a supplier's statement about the product is more specific than a blanket ignore,
    // and its justification is the better reason to show. A VEX `affected` does not cancel an
    // ignore rule, though: the ignore file is the user's own explicit decision.
    const statement = statements.length > 0 ? vexDecision(finding, statements, opts.image) : undefined;
    if (statement !== undefined && vexSuppresses(statement)) {
      suppressed.push({
        finding,
        reason: describeVexStatement(statement),
        source: `${statement.source} statement ${statement.index}`,
      });
      continue;
    }
    const rule = active.find((r) => ignoreRuleMatches(r, finding));
    if (rule !== undefined) {
      const until = rule.expires !== undefined ? ` (until ${rule.expires})` : '';
      suppressed.push({ finding, reason: `ignored: ${rule.reason}${until}`, source: ruleSource(rule) });
      continue;
    }
    kept.push(finding);
  }
  return { kept, suppressed, expiredIgnores };
}
