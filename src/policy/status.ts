/**
 * A verdict's status without the verdict document, for re-evaluating thousands of stored images
 * after a vulnerability-database update. It gives the status (and the failed rules) `evaluate`
 * would give, using the same rule predicate (`vulnerabilityMatches`), the same exception semantics
 * and the same default rule, but it decides the vulnerability part once per match key (every
 * package with the same key has the same findings) and takes the rest (secrets,
 * misconfigurations, packages, licences, base image, signature: none depend on the database) from
 * the image's last full verdict. The document, with every finding and remedy, is computed by
 * `evaluate` when someone asks for it.
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
import { resolvePolicy, ruleKind, type DefaultAction, type EffectivePolicy, type PolicyDocument, type PolicyRule } from './policy-document.js';

/** Actions as bits, so the actions of many packages combine with `|`. */
export const WARN_BIT = 1;
export const FAIL_BIT = 2;

function bitOf(action: DefaultAction): number {
  return action === 'fail' ? FAIL_BIT : action === 'warn' ? WARN_BIT : 0;
}

export function statusOfBits(bits: number): VerdictStatus {
  return bits & FAIL_BIT ? 'fail' : bits & WARN_BIT ? 'warn' : 'pass';
}

/** A failed reason of the database-independent part: its rule id and kind, in verdict order. */
export interface StaticFailReason {
  ruleId: string;
  kind: string;
}

/** The database-independent part of a full verdict: its actions and its failed reasons. */
export function staticPart(verdict: Verdict): { bits: number; failReasons: StaticFailReason[] } {
  let bits = 0;
  const failReasons: StaticFailReason[] = [];
  for (const r of verdict.reasons) {
    if (r.kind === 'vulnerability') continue;
    bits |= bitOf(r.action);
    if (r.action === 'fail') failReasons.push({ ruleId: r.ruleId, kind: r.kind });
  }
  return { bits, failReasons };
}

/** Rule masks have a bit per vulnerability rule and one for the default; more rules than this and the plan cannot be used. */
const MAX_RULES = 30;
const DEFAULT_BIT = 1 << MAX_RULES;
const DEFAULT_KINDS = ['vulnerability', 'secret', 'misconfiguration'];

/** The part of a policy that decides vulnerability reasons, for one evaluation context. */
export class VulnerabilityStatusPlan {
  private readonly rules: Array<{ id: string; upper: string; order: number; action: DefaultAction; condition: NonNullable<PolicyRule['vulnerability']> }>;
  private readonly order: Map<string, number>;
  private readonly defaultAction: DefaultAction;
  private readonly exempt: Set<string>;
  private readonly now: Date;
  /** Plans with equal signatures give equal masks for equal findings. */
  readonly signature: string;
  /** The earliest expiry among the exceptions in force here: after it the plan no longer holds. */
  readonly validUntil: number | null;
  /** False when the policy has too many vulnerability rules for a mask: evaluate in full. */
  readonly usable: boolean;

  constructor(policy: PolicyDocument | EffectivePolicy, ctx: EvaluationContext) {
    const effective: EffectivePolicy = 'appliedOverrides' in policy ? policy : resolvePolicy(policy, ctx.project);
    this.rules = effective.rules.flatMap((r, order) =>
      ruleKind(r) === 'vulnerability' ? [{ id: r.id, upper: r.id.toUpperCase(), order, action: r.action, condition: r.vulnerability! }] : [],
    );
    this.usable = this.rules.length <= MAX_RULES;
    this.order = new Map(effective.rules.map((r, i) => [r.id, i]));
    this.defaultAction = effective.defaultAction;
    const now = ctx.now.getTime();
    const active = effective.exceptions.filter((e) => scopeApplies(e.scope, ctx, ctx.digest) && (e.expires === undefined || now < expiryTime(e.expires)));
    this.exempt = new Set(active.map((e) => e.id.toUpperCase()));
    const expiries = active.flatMap((e) => (e.expires !== undefined ? [expiryTime(e.expires)] : [])).filter((t) => !Number.isNaN(t));
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

  /** Which rules these findings trigger (a bit per vulnerability rule, and one for the default), as `evaluate` would decide them. */
  maskOf(findings: readonly VulnerabilityFacts[]): number {
    let mask = 0;
    for (const f of findings) {
      let claimed = false;
      for (const [i, rule] of this.rules.entries()) {
        if (vulnerabilityMatches(rule.condition, f, this.now) !== true) continue;
        // A rule claims its matches even when its action is ignore, or an exception covers them.
        claimed = true;
        if (rule.action !== 'ignore' && !this.exempted(rule.upper, f)) mask |= 1 << i;
      }
      if (!claimed && this.defaultAction !== 'ignore' && !this.exempted('DEFAULT', f)) mask |= DEFAULT_BIT;
    }
    return mask;
  }

  /** The actions a rule mask stands for. */
  bitsOfMask(mask: number): number {
    let bits = mask & DEFAULT_BIT ? bitOf(this.defaultAction) : 0;
    for (const [i, rule] of this.rules.entries()) if (mask & (1 << i)) bits |= bitOf(rule.action);
    return bits;
  }

  /** The actions these findings trigger: each rule that matches one, and the default for a finding no rule matched. */
  bitsOf(findings: readonly VulnerabilityFacts[]): number {
    return this.bitsOfMask(this.maskOf(findings));
  }

  /**
   * The failed rules' ids in the order `evaluate` lists failed reasons: rules in policy order, then
   * the default reasons (vulnerabilities, secrets, misconfigurations).
   */
  failReasons(mask: number, staticFail: readonly StaticFailReason[]): string[] {
    const ruled: Array<{ id: string; order: number }> = [];
    for (const [i, rule] of this.rules.entries()) if (mask & (1 << i) && rule.action === 'fail') ruled.push({ id: rule.id, order: rule.order });
    for (const r of staticFail) if (r.ruleId !== 'default') ruled.push({ id: r.ruleId, order: this.order.get(r.ruleId) ?? Number.MAX_SAFE_INTEGER });
    ruled.sort((a, b) => a.order - b.order);
    const defaults = DEFAULT_KINDS.filter((kind) =>
      kind === 'vulnerability' ? mask & DEFAULT_BIT && this.defaultAction === 'fail' : staticFail.some((r) => r.ruleId === 'default' && r.kind === kind),
    );
    return [...ruled.map((r) => r.id), ...defaults.map(() => 'default')];
  }
}
