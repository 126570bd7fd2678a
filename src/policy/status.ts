/**
 * A verdict's status without the verdict document, for re-evaluating thousands of stored images
 * after a vulnerability-database update. It gives the status `evaluate` would give, using the same
 * rule predicate (`vulnerabilityMatches`), the same exception semantics and the same default rule,
 * but it decides the vulnerability part once per match key (every package with the same key has
 * the same findings) and takes the rest (secrets, misconfigurations, packages, licences, base
 * image, signature: none of them depend on the database) from the image's last full verdict. The
 * document, with every finding and remedy, is computed by `evaluate` when someone asks for it.
 */
import {
  expiryTime,
  scopeApplies,
  vulnerabilityMatches,
  type EvaluationContext,
  type Verdict,
  type VerdictStatus,
  type VulnerabilityFacts,
} from './evaluate.js';
import {
  resolvePolicy,
  ruleKind,
  type DefaultAction,
  type EffectivePolicy,
  type PolicyDocument,
  type PolicyRule,
} from './policy-document.js';

/** Actions as bits, so the actions of many packages combine with `|`. */
export const WARN_BIT = 1;
export const FAIL_BIT = 2;

function bitOf(action: DefaultAction): number {
  return action === 'fail' ? FAIL_BIT : action === 'warn' ? WARN_BIT : 0;
}

export function statusOfBits(bits: number): VerdictStatus {
  return bits & FAIL_BIT ? 'fail' : bits & WARN_BIT ? 'warn' : 'pass';
}

/** The bits of the reasons of a full verdict that are not about vulnerabilities. */
export function staticBits(verdict: Verdict): number {
  let bits = 0;
  for (const r of verdict.reasons) if (r.kind !== 'vulnerability') bits |= bitOf(r.action);
  return bits;
}

/** The part of a policy that decides vulnerability reasons, for one evaluation context. */
export class VulnerabilityStatusPlan {
  private readonly rules: Array<{
    id: string;
    action: DefaultAction;
    condition: NonNullable<PolicyRule['vulnerability']>;
  }>;
  private readonly defaultAction: DefaultAction;
  private readonly exempt: Set<string>;
  private readonly now: Date;
  /** Plans with equal signatures give equal bits for equal findings. */
  readonly signature: string;
  /** The earliest expiry among the exceptions in force here: after it the plan no longer holds. */
  readonly validUntil: number | null;

  constructor(policy: PolicyDocument | EffectivePolicy, ctx: EvaluationContext) {
    const effective: EffectivePolicy =
      'appliedOverrides' in policy ? policy : resolvePolicy(policy, ctx.project);
    this.rules = effective.rules.flatMap((r) =>
      ruleKind(r) === 'vulnerability'
        ? [{ id: r.id.toUpperCase(), action: r.action, condition: r.vulnerability! }]
        : [],
    );
    this.defaultAction = effective.defaultAction;
    const now = ctx.now.getTime();
    const active = effective.exceptions.filter(
      (e) =>
        scopeApplies(e.scope, ctx, ctx.digest) && (e.expires === undefined || now < expiryTime(e.expires)),
    );
    this.exempt = new Set(active.map((e) => e.id.toUpperCase()));
    const expiries = active
      .flatMap((e) => (e.expires !== undefined ? [expiryTime(e.expires)] : []))
      .filter((t) => !Number.isNaN(t));
    this.validUntil = expiries.length > 0 ? Math.min(...expiries) : null;
    this.signature = `${effective.appliedOverrides.join(',')}\u0000${[...this.exempt].sort().join(',')}`;
    this.now = ctx.now;
  }

  private exempted(ruleId: string, f: VulnerabilityFacts): boolean {
    if (this.exempt.size === 0) return false;
    if (this.exempt.has(ruleId)) return true;
    if (this.exempt.has(f.id.toUpperCase())) return true;
    return f.aliases.some((a) => this.exempt.has(a.toUpperCase()));
  }

  /** The actions these findings trigger: each rule that matches one, and the default for a finding no rule matched. */
  bitsOf(findings: readonly VulnerabilityFacts[]): number {
    let bits = 0;
    for (const f of findings) {
      let claimed = false;
      for (const rule of this.rules) {
        if (vulnerabilityMatches(rule.condition, f, this.now) !== true) continue;
        // A rule claims its matches even when its action is ignore, or an exception covers them.
        claimed = true;
        if (rule.action !== 'ignore' && !this.exempted(rule.id, f)) bits |= bitOf(rule.action);
      }
      if (!claimed && this.defaultAction !== 'ignore' && !this.exempted('DEFAULT', f))
        bits |= bitOf(this.defaultAction);
    }
    return bits;
  }
}
