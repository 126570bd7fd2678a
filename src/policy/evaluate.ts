/**
 * Policy evaluation: a scan result and a policy in, a verdict out. Pure and deterministic: no I/O,
 * the clock is passed in, and every list in the verdict has a stable order, so CI logs diff cleanly
 * and the registry gate (later) gets the same answer as `portcullis policy test`.
 *
 * Fails closed: a rule that needs findings the scan did not produce (vulnerabilities without a
 * database, secrets or misconfigurations not scanned for) is an error, never a pass.
 */
import { createRequire } from 'node:module';

import type { Finding, Misconfiguration, SecretFinding, Severity } from '../sbom/finding.js';
import { severityRank } from '../sbom/finding.js';
import type { Package, PackageType } from '../sbom/model.js';
import type { ScanResult } from '../sbom/result.js';
import { orderingFor } from '../vulndb/versions/index.js';
import { PolicyError } from './ignore.js';
import {
  globMatches,
  resolvePolicy,
  ruleKind,
  type DefaultAction,
  type EffectivePolicy,
  type ExceptionScope,
  type PolicyDocument,
  type PolicyRule,
  type RuleAction,
  type RuleKind,
  type ScopedException,
  type SeverityThreshold,
} from './policy-document.js';
import { byCodeUnits } from '../text-order.js';

export type VerdictStatus = 'pass' | 'warn' | 'fail';

/** What the signing issue will fill in; absent means signatures cannot be verified yet. */
export interface SignatureState {
  verified: boolean;
  /** e.g. `no signature found`, `signed by key K`. */
  detail: string;
}

export interface EvaluationContext {
  project?: string;
  repository?: string;
  /** The manifest digest; defaults to the scan result's. */
  digest?: string;
  now: Date;
  signature?: SignatureState;
}

/** One thing a rule matched: a vulnerability, secret, check, package, licence, base image or signature. */
export interface FindingRef {
  kind: RuleKind;
  /** Advisory id, secret rule id, check id, package name, licence id, base image, or `signature`. */
  id: string;
  aliases?: string[];
  severity?: Severity;
  package?: { type: PackageType; name: string; version: string; purl: string };
  installedVersion?: string;
  /** The version to upgrade to (the lowest fixed version above the installed one). */
  fixedVersion?: string;
  published?: string;
  /** File path, config field or check target. */
  target?: string;
  line?: number;
  layer?: number;
  /** Secrets: removed by a later layer but still shipped in an earlier one. */
  deleted?: boolean;
  message: string;
  remedy: string;
}

export interface VerdictReason {
  /** The rule's id, or `default` for findings no rule matched. */
  ruleId: string;
  action: RuleAction;
  kind: RuleKind;
  message: string;
  remedy: string;
  findings: FindingRef[];
}

export interface ExceptionReport {
  id: string;
  scope: ExceptionScope;
  reason: string;
  author?: string;
  expires?: string;
  /** Where in the policy it is written. */
  origin: string;
  /** The rule matches it covers (applied) or would have covered (expired). */
  matches: Array<{ ruleId: string; finding: FindingRef }>;
}

export interface Verdict {
  status: VerdictStatus;
  policy: { name?: string; defaultAction: DefaultAction; overrides: string[] };
  context: { project?: string; repository?: string; digest?: string; evaluatedAt: string };
  /** Fail reasons first, then warnings; in policy order; `default` last. */
  reasons: VerdictReason[];
  exceptionsApplied: ExceptionReport[];
  /** Exceptions in scope whose expiry has passed: they no longer apply. */
  expiredExceptions: ExceptionReport[];
  /** Things worth knowing that did not change the verdict (e.g. findings without a published date). */
  notes: string[];
}

const DAY_MS = 86_400_000;
export const BASE_NAME_KEY = 'org.opencontainers.image.base.name';

// ---- matching helpers -------------------------------------------------------------------------

function severityAtLeast(severity: Severity, threshold: SeverityThreshold | undefined): boolean {
  if (threshold === undefined || threshold === 'any' || threshold === 'unknown') return true;
  return severity !== 'unknown' && severityRank(severity) >= severityRank(threshold);
}

const anyGlob = (patterns: readonly string[], value: string) => patterns.some((p) => globMatches(p, value));

/** Expiry instant: a bare date expires at 00:00 UTC that day (as in .portcullisignore). */
export function expiryTime(expires: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(expires) ? `${expires}T00:00:00Z` : expires);
}

export function scopeApplies(scope: ExceptionScope, ctx: EvaluationContext, digest: string | undefined): boolean {
  if (scope === 'global') return true;
  if (scope.project !== undefined && (ctx.project === undefined || !globMatches(scope.project, ctx.project))) return false;
  if (scope.repository !== undefined && (ctx.repository === undefined || !globMatches(scope.repository, ctx.repository)))
    return false;
  if (scope.digest !== undefined && scope.digest !== digest) return false;
  return true;
}

/** The lowest fixed version above the installed one, in the ecosystem's own ordering when known. */
function upgradeTarget(f: Finding): string | undefined {
  if (f.fixedVersions.length === 0) return undefined;
  const compare = orderingFor(f.ecosystem);
  if (compare === undefined) return f.fixedVersions[0];
  const safe = (a: string, b: string) => {
    try {
      return compare(a, b);
    } catch {
      return 0;
    }
  };
  const above = f.fixedVersions.filter((v) => safe(v, f.installedVersion) > 0).sort(safe);
  return above[0] ?? f.fixedVersions[0];
}

// ---- finding references -----------------------------------------------------------------------

function vulnerabilityRef(f: Finding): FindingRef {
  const fixed = upgradeTarget(f);
  const pkg = f.package;
  return {
    kind: 'vulnerability',
    id: f.id,
    ...(f.aliases.length > 0 ? { aliases: [...f.aliases] } : {}),
    severity: f.severity,
    package: { type: pkg.type, name: pkg.name, version: pkg.version, purl: pkg.purl },
    installedVersion: f.installedVersion,
    ...(fixed !== undefined ? { fixedVersion: fixed } : {}),
    ...(f.published !== undefined ? { published: f.published } : {}),
    ...(pkg.paths[0] !== undefined ? { target: pkg.paths[0] } : {}),
    layer: pkg.layer.index,
    message: `${f.id} (${f.severity}) in ${pkg.name} ${pkg.version}${fixed !== undefined ? `, fixed in ${fixed}` : ', no fix yet'}`,
    remedy:
      fixed !== undefined
        ? `upgrade ${pkg.name} to ${fixed} (${pkg.name}@${fixed})`
        : `no fixed version of ${pkg.name} yet: remove it, or add an exception with a reason and an expiry until a fix ships`,
  };
}

function secretRef(s: SecretFinding): FindingRef {
  const where = `${s.target}${s.line !== undefined ? `:${s.line}` : ''}`;
  const line = s.line !== undefined ? ` (line ${s.line})` : '';
  const place =
    s.location === 'file'
      ? s.deleted
        ? `rebuild without ${s.target}: deleting it in a later layer does not help, layer ${s.layer?.index ?? '?'} still ships it (use a multi-stage build or RUN --mount=type=secret)`
        : `remove the secret from ${s.target}${line}, added in layer ${s.layer?.index ?? '?'}`
      : `remove it from ${s.target} and pass it at run time`;
  return {
    kind: 'secret',
    id: s.ruleId,
    severity: s.severity,
    target: s.target,
    ...(s.line !== undefined ? { line: s.line } : {}),
    ...(s.layer !== undefined ? { layer: s.layer.index } : {}),
    ...(s.deleted ? { deleted: true } : {}),
    message: `${s.title} in ${where} (${s.redacted})${s.deleted ? ', deleted in a later layer' : ''}`,
    remedy: `${place}, then rotate the ${s.title}: everyone who can pull the image has it`,
  };
}

function misconfigurationRef(m: Misconfiguration): FindingRef {
  const where = `${m.target}${m.line !== undefined ? `:${m.line}` : ''}`;
  return {
    kind: 'misconfiguration',
    id: m.id,
    severity: m.severity,
    target: m.target,
    ...(m.line !== undefined ? { line: m.line } : {}),
    message: `${m.id} ${m.title}: ${m.message}`,
    remedy: `${m.remedy} (${where})`,
  };
}

function packageRef(p: Package, message: string, remedy: string, kind: RuleKind = 'package', id = p.name): FindingRef {
  return {
    kind,
    id,
    package: { type: p.type, name: p.name, version: p.version, purl: p.purl },
    installedVersion: p.version,
    ...(p.paths[0] !== undefined ? { target: p.paths[0] } : {}),
    layer: p.layer.index,
    message,
    remedy,
  };
}

/** The ids an exception may name to cover this finding (besides the rule's own id). */
function findingNames(ref: FindingRef): string[] {
  const names = [ref.id, ...(ref.aliases ?? [])];
  if (ref.kind === 'licence' && ref.package !== undefined) names.push(ref.package.name);
  return names.map((n) => n.toUpperCase());
}

function compareRefs(a: FindingRef, b: FindingRef): number {
  const key = (r: FindingRef) =>
    [r.package?.name ?? '', r.package?.version ?? '', r.target ?? '', String(r.line ?? 0).padStart(9, '0'), r.id, r.message].join('\u0000');
  const [ka, kb] = [key(a), key(b)];
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

// ---- licences -----------------------------------------------------------------------------------

type LicenceNode =
  | { license: string; plus?: boolean; exception?: string }
  | { left: LicenceNode; conjunction: 'and' | 'or'; right: LicenceNode };

let parseSpdx: ((s: string) => LicenceNode) | undefined;
function parseLicence(expression: string): LicenceNode | undefined {
  // spdx-expression-parse is CommonJS without types; loaded only when a licence rule runs.
  parseSpdx ??= createRequire(import.meta.url)('spdx-expression-parse') as (s: string) => LicenceNode;
  try {
    return parseSpdx(expression);
  } catch {
    return undefined;
  }
}

/**
 * The denied licence ids a licence expression forces on its user: every one of an AND, but an OR
 * only when all its choices are denied (the user can pick the allowed one).
 */
function deniedIn(node: LicenceNode, denied: readonly string[]): string[] {
  if ('license' in node) return anyGlob(denied, node.license) ? [node.license] : [];
  const left = deniedIn(node.left, denied);
  const right = deniedIn(node.right, denied);
  if (node.conjunction === 'and') return [...left, ...right];
  return left.length > 0 && right.length > 0 ? [...left, ...right] : [];
}

function deniedLicences(licence: string, denied: readonly string[]): string[] {
  const tree = parseLicence(licence);
  if (tree !== undefined) return deniedIn(tree, denied);
  return anyGlob(denied, licence.trim()) ? [licence.trim()] : [];
}

// ---- base images --------------------------------------------------------------------------------

/** docker-style normalisation: `alpine:3.20` → `docker.io/library/alpine:3.20`. */
export function normaliseImageName(name: string): string {
  let rest = name.trim();
  const first = rest.split('/')[0] ?? '';
  const hasHost = rest.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasHost) rest = `docker.io/${rest.includes('/') ? rest : `library/${rest}`}`;
  return rest.replace(/^(index\.docker\.io|registry-1\.docker\.io)\//, 'docker.io/');
}

/** A pattern without a tag or digest allows every tag and digest of that repository. */
function baseAllowed(pattern: string, base: string): boolean {
  const p = normaliseImageName(pattern);
  const b = normaliseImageName(base);
  if (globMatches(p, b)) return true;
  const lastSegment = p.slice(p.lastIndexOf('/') + 1);
  if (lastSegment.includes(':') || p.includes('@')) return false;
  const repo = b.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  return globMatches(p, repo);
}

// ---- rules --------------------------------------------------------------------------------------

interface Inputs {
  result: ScanResult;
  ctx: EvaluationContext;
}

interface RuleOutcome {
  /** The action the matches carry (a rule's `whenUnknown` may lower or raise it), or ignore. */
  action: DefaultAction;
  findings: FindingRef[];
  message: (n: number) => string;
  notes: string[];
}

function need<T>(value: T | undefined, rule: PolicyRule, what: string, how: string): T {
  if (value === undefined) {
    throw new PolicyError(
      'POLICY_UNEVALUABLE',
      `rule "${rule.id}" needs ${what}, but the scan did not produce them; ${how}. A policy that cannot be evaluated fails, it never passes`,
    );
  }
  return value;
}

/** The parts of a vulnerability finding a rule looks at (a matched finding, or one shared by every package with the same match key). */
export type VulnerabilityFacts = Pick<Finding, 'id' | 'aliases' | 'severity' | 'fixedVersions' | 'published'>;

/**
 * Whether a vulnerability rule's condition covers a finding; `undated` when only a missing
 * published date kept it from being checked against olderThanDays (it does not match).
 */
export function vulnerabilityMatches(c: NonNullable<PolicyRule['vulnerability']>, f: VulnerabilityFacts, now: Date): boolean | 'undated' {
  if (c.severities !== undefined ? !c.severities.includes(f.severity) : !severityAtLeast(f.severity, c.severity)) return false;
  if (c.fixAvailable !== undefined && c.fixAvailable !== f.fixedVersions.length > 0) return false;
  if (c.ids !== undefined) {
    const names = [f.id, ...f.aliases].map((n) => n.toUpperCase());
    if (!c.ids.some((id) => names.includes(id.toUpperCase()))) return false;
  }
  if (c.olderThanDays !== undefined) {
    const published = f.published === undefined ? NaN : Date.parse(f.published);
    if (Number.isNaN(published)) return 'undated';
    if (now.getTime() - published < c.olderThanDays * DAY_MS) return false;
  }
  return true;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function evaluateRule(rule: PolicyRule, { result, ctx }: Inputs): RuleOutcome {
  const kind = ruleKind(rule);
  const notes: string[] = [];
  switch (kind) {
    case 'vulnerability': {
      const c = rule.vulnerability!;
      const findings = need(
        result.vulnerabilities,
        rule,
        'vulnerabilities',
        'import a vulnerability database first (portcullis db update, or db import for offline use)',
      );
      let undated = 0;
      const matched = findings.filter((f) => {
        const hit = vulnerabilityMatches(c, f, ctx.now);
        if (hit === 'undated') undated++;
        return hit === true;
      });
      if (undated > 0) {
        notes.push(
          `rule "${rule.id}": ${plural(undated, 'vulnerability', 'vulnerabilities')} without a published date could not be checked against olderThanDays`,
        );
      }
      const describe = [
        c.severity !== undefined && c.severity !== 'any' ? `${c.severity} or worse` : '',
        c.severities !== undefined ? c.severities.join('/') : '',
        c.fixAvailable === true ? 'with a fix available' : c.fixAvailable === false ? 'with no fix yet' : '',
        c.olderThanDays !== undefined ? `published more than ${c.olderThanDays} days ago` : '',
      ]
        .filter((s) => s !== '')
        .join(', ');
      return {
        action: rule.action,
        findings: matched.map(vulnerabilityRef),
        message: (n) => `${plural(n, 'vulnerability', 'vulnerabilities')}${describe !== '' ? ` (${describe})` : ''}`,
        notes,
      };
    }
    case 'secret': {
      const c = rule.secret!;
      const secrets = need(result.secrets, rule, 'secret findings', 'scan with the secret scanner enabled');
      const matched = secrets.filter(
        (s) => (c.rules === undefined || anyGlob(c.rules, s.ruleId)) && severityAtLeast(s.severity, c.severity),
      );
      return {
        action: rule.action,
        findings: matched.map(secretRef),
        message: (n) => `${plural(n, 'secret')} in the image`,
        notes,
      };
    }
    case 'misconfiguration': {
      const c = rule.misconfiguration!;
      const checks = need(result.misconfigurations, rule, 'misconfiguration findings', 'scan with the misconfig scanner enabled');
      const matched = checks.filter((m) => (c.ids === undefined || anyGlob(c.ids, m.id)) && severityAtLeast(m.severity, c.severity));
      return {
        action: rule.action,
        findings: matched.map(misconfigurationRef),
        message: (n) => `${plural(n, 'failed check')}${c.ids !== undefined ? ` (${c.ids.join(', ')})` : ''}`,
        notes,
      };
    }
    case 'package': {
      const c = rule.package!;
      const matched = result.packages.filter((p) => {
        if (c.types !== undefined && !c.types.includes(p.type)) return false;
        const full = p.namespace !== undefined ? `${p.namespace}/${p.name}` : p.name;
        return anyGlob(c.names, p.name) || anyGlob(c.names, full);
      });
      return {
        action: rule.action,
        findings: matched.map((p) =>
          packageRef(
            p,
            `denied package ${p.name} ${p.version} (${p.type}, layer ${p.layer.index})`,
            `remove ${p.name} from the image (installed in layer ${p.layer.index}${p.paths[0] !== undefined ? `, ${p.paths[0]}` : ''})`,
          ),
        ),
        message: (n) => `${plural(n, 'denied package')} (${c.names.join(', ')})`,
        notes,
      };
    }
    case 'licence': {
      const c = rule.licence!;
      const findings: FindingRef[] = [];
      for (const p of result.packages) {
        const hits = [...new Set(p.licenses.flatMap((l) => deniedLicences(l, c.denied)))].sort();
        for (const lic of hits) {
          findings.push(
            packageRef(
              p,
              `${p.name} ${p.version} is licensed ${p.licenses.join(' AND ')}; ${lic} is denied`,
              `replace ${p.name} with a package under an allowed licence, or remove it`,
              'licence',
              lic,
            ),
          );
        }
      }
      return {
        action: rule.action,
        findings,
        message: (n) => `${plural(n, 'package')} under a denied licence (${c.denied.join(', ')})`,
        notes,
      };
    }
    case 'baseImage': {
      const c = rule.baseImage!;
      const base = result.image.annotations?.[BASE_NAME_KEY] ?? result.image.labels?.[BASE_NAME_KEY];
      const allowedText = c.allowed.join(', ');
      if (base === undefined) {
        return {
          action: c.whenUnknown ?? rule.action,
          findings: [
            {
              kind: 'baseImage',
              id: 'unknown',
              message: `the base image is not recorded (no ${BASE_NAME_KEY} annotation or label)`,
              remedy: `record it when building: LABEL ${BASE_NAME_KEY}=<image> in the Dockerfile, or docker buildx build --annotation ${BASE_NAME_KEY}=<image>; allowed: ${allowedText}`,
            },
          ],
          message: () => 'base image unknown',
          notes,
        };
      }
      const ok = c.allowed.some((p) => baseAllowed(p, base));
      return {
        action: rule.action,
        findings: ok
          ? []
          : [
              {
                kind: 'baseImage',
                id: base,
                target: BASE_NAME_KEY,
                message: `base image ${base} is not allowed`,
                remedy: `rebuild FROM one of: ${allowedText}`,
              },
            ],
        message: () => 'base image not allowed',
        notes,
      };
    }
    case 'signature': {
      const c = rule.signature!;
      if (ctx.signature === undefined) {
        return {
          action: c.whenUnverifiable ?? rule.action,
          findings: [
            {
              kind: 'signature',
              id: 'signature',
              message: 'signatures cannot be verified yet (signature verification is not built yet)',
              remedy:
                'set whenUnverifiable on this rule to decide what happens until verification ships, or add an exception naming this rule',
            },
          ],
          message: () => 'signature not verifiable',
          notes,
        };
      }
      return {
        action: rule.action,
        findings: ctx.signature.verified
          ? []
          : [
              {
                kind: 'signature',
                id: 'signature',
                message: `no valid signature: ${ctx.signature.detail}`,
                remedy: 'sign the image with a key or identity this policy trusts, then push the signature',
              },
            ],
        message: () => 'signature required',
        notes,
      };
    }
  }
}

// ---- evaluation ---------------------------------------------------------------------------------

interface ExceptionState {
  exception: ScopedException;
  expired: boolean;
  matches: Array<{ ruleId: string; finding: FindingRef }>;
}

function report(state: ExceptionState): ExceptionReport {
  const e = state.exception;
  return {
    id: e.id,
    scope: e.scope,
    reason: e.reason,
    ...(e.author !== undefined ? { author: e.author } : {}),
    ...(e.expires !== undefined ? { expires: e.expires } : {}),
    origin: e.origin,
    matches: state.matches,
  };
}

/** Evaluates a policy document for one project (overrides applied), or an already resolved policy. */
export function evaluate(result: ScanResult, policy: PolicyDocument | EffectivePolicy, ctx: EvaluationContext): Verdict {
  const effective: EffectivePolicy = 'appliedOverrides' in policy ? policy : resolvePolicy(policy, ctx.project);
  const digest = ctx.digest ?? (result.image.manifestDigest !== '' ? result.image.manifestDigest : undefined);
  const now = ctx.now.getTime();

  const inScope: ExceptionState[] = effective.exceptions
    .filter((e) => scopeApplies(e.scope, ctx, digest))
    .map((exception) => ({
      exception,
      expired: exception.expires !== undefined && now >= expiryTime(exception.expires),
      matches: [],
    }));
  /** The active exception covering this match, if any; expired ones that would have covered it are noted. */
  const exempt = (ruleId: string, finding: FindingRef): boolean => {
    const names = findingNames(finding);
    let covered = false;
    for (const state of inScope) {
      const id = state.exception.id.toUpperCase();
      if (id !== ruleId.toUpperCase() && !names.includes(id)) continue;
      if (state.expired) {
        state.matches.push({ ruleId, finding });
      } else if (!covered) {
        state.matches.push({ ruleId, finding });
        covered = true;
      }
    }
    return covered;
  };

  const reasons: Array<VerdictReason & { order: number }> = [];
  const notes: string[] = [];
  // Findings of the three scanners that some rule matched (excepted or not): the rest get the default action.
  const claimed = new Set<string>();
  const claimKey = (f: FindingRef) => `${f.kind}\u0000${f.id}\u0000${f.package?.purl ?? ''}\u0000${f.target ?? ''}\u0000${f.line ?? ''}\u0000${f.message}`;

  for (const [order, rule] of effective.rules.entries()) {
    const outcome = evaluateRule(rule, { result, ctx });
    notes.push(...outcome.notes);
    for (const f of outcome.findings) claimed.add(claimKey(f));
    if (outcome.action === 'ignore') continue;
    const kept = outcome.findings.filter((f) => !exempt(rule.id, f)).sort(compareRefs);
    if (kept.length === 0) continue;
    reasons.push({
      ruleId: rule.id,
      action: outcome.action,
      kind: ruleKind(rule),
      message: `${rule.description !== undefined ? `${rule.description}: ` : ''}${outcome.message(kept.length)}`,
      remedy: summariseRemedy(kept),
      findings: kept,
      order,
    });
  }

  const unmatched: Array<[RuleKind, FindingRef[] | undefined]> = [
    ['vulnerability', result.vulnerabilities?.map(vulnerabilityRef)],
    ['secret', result.secrets?.map(secretRef)],
    ['misconfiguration', result.misconfigurations?.map(misconfigurationRef)],
  ];
  for (const [kind, refs] of unmatched) {
    if (refs === undefined) {
      if (kind === 'vulnerability') notes.push('vulnerabilities were not checked (no vulnerability database)');
      continue;
    }
    if (effective.defaultAction === 'ignore') continue;
    const rest = refs.filter((f) => !claimed.has(claimKey(f)) && !exempt('default', f)).sort(compareRefs);
    if (rest.length === 0) continue;
    const what = { vulnerability: 'vulnerability', secret: 'secret', misconfiguration: 'failed check' }[kind as 'secret'];
    reasons.push({
      ruleId: 'default',
      action: effective.defaultAction,
      kind,
      message: `${plural(rest.length, what, kind === 'vulnerability' ? 'vulnerabilities' : undefined)} no rule matched (defaultAction: ${effective.defaultAction})`,
      remedy: summariseRemedy(rest),
      findings: rest,
      order: Number.MAX_SAFE_INTEGER,
    });
  }

  reasons.sort((a, b) => (a.action === b.action ? 0 : a.action === 'fail' ? -1 : 1) || a.order - b.order);
  const status: VerdictStatus = reasons.some((r) => r.action === 'fail')
    ? 'fail'
    : reasons.some((r) => r.action === 'warn')
      ? 'warn'
      : 'pass';

  return {
    status,
    policy: {
      ...(effective.name !== undefined ? { name: effective.name } : {}),
      defaultAction: effective.defaultAction,
      overrides: effective.appliedOverrides,
    },
    context: {
      ...(ctx.project !== undefined ? { project: ctx.project } : {}),
      ...(ctx.repository !== undefined ? { repository: ctx.repository } : {}),
      ...(digest !== undefined ? { digest } : {}),
      evaluatedAt: ctx.now.toISOString(),
    },
    reasons: reasons.map(({ order: _order, ...r }) => r),
    exceptionsApplied: inScope.filter((s) => !s.expired && s.matches.length > 0).map(report),
    expiredExceptions: inScope.filter((s) => s.expired).map(report),
    notes: [...new Set(notes)],
  };
}

/**
 * One remedy line per reason: vulnerabilities collapse to one upgrade per package (the highest
 * fixed version any of its advisories needs); other kinds list their distinct remedies.
 */
function summariseRemedy(findings: FindingRef[]): string {
  const upgrades = new Map<string, { name: string; version: string; to?: string; ecosystemPurl: string; unfixed: number }>();
  const others: string[] = [];
  for (const f of findings) {
    if (f.kind !== 'vulnerability' || f.package === undefined) {
      if (!others.includes(f.remedy)) others.push(f.remedy);
      continue;
    }
    const key = `${f.package.purl}`;
    const entry = upgrades.get(key) ?? { name: f.package.name, version: f.package.version, ecosystemPurl: f.package.purl, unfixed: 0 };
    if (f.fixedVersion === undefined) entry.unfixed++;
    else if (entry.to === undefined || compareFixed(f.package.type, entry.to, f.fixedVersion) < 0) entry.to = f.fixedVersion;
    upgrades.set(key, entry);
  }
  const lines: string[] = [];
  for (const u of [...upgrades.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (u.to !== undefined) lines.push(`upgrade ${u.name} ${u.version} to ${u.to} (${u.name}@${u.to})`);
    if (u.unfixed > 0) lines.push(`${u.name}: ${plural(u.unfixed, 'advisory', 'advisories')} with no fix yet (remove it, or add an exception with an expiry)`);
  }
  return [...new Set(lines), ...others].join('; ');
}

const TYPE_ECOSYSTEM: Partial<Record<PackageType, string>> = {
  apk: 'Alpine',
  deb: 'Debian',
  rpm: 'Red Hat',
  npm: 'npm',
  pypi: 'PyPI',
  maven: 'Maven',
  golang: 'Go',
  gem: 'RubyGems',
  cargo: 'crates.io',
  composer: 'Packagist',
  nuget: 'NuGet',
};

function compareFixed(type: PackageType, a: string, b: string): number {
  const compare = orderingFor(TYPE_ECOSYSTEM[type] ?? '');
  try {
    if (compare !== undefined) return compare(a, b);
  } catch {
    // fall through to text order
  }
  return byCodeUnits(a, b);
}
