/**
 * The policy document: one YAML format for the built-in policy, policy files and the `policy:` key
 * of portcullis.yaml. docs/policy.md describes every key.
 *
 * ```yaml
 * version: 1
 * defaultAction: warn            # what findings no rule matched do: fail | warn | ignore
 * rules:
 *   - id: critical-fixable
 *     action: fail               # fail | warn
 *     vulnerability: { severity: critical, fixAvailable: true }
 * exceptions:
 *   - id: CVE-2024-1234          # advisory id or alias, check id, secret rule id, package name or rule id
 *     scope: { repository: team/api }
 *     reason: not reachable from the entrypoint
 *     author: alice@example.com
 *     expires: 2025-06-30
 * projects:
 *   "team-*":                    # glob on the project name
 *     mode: extend               # extend (same rule id replaces) | replace (rules list replaces)
 *     rules: [...]
 * ```
 *
 * Every object is strict: an unknown key is an error, so a typo (`expire:`, `fixavailable:`) can
 * never quietly loosen the policy. Errors name the file, the line, the path in the document and
 * what to change.
 */
import { LineCounter, isCollection, parseDocument, type Document } from 'yaml';
import { z } from 'zod';

import { SEVERITY_ORDER, type Severity } from '../sbom/finding.js';
import { PACKAGE_TYPES } from '../sbom/model.js';
import { PolicyError, isValidDate, readPolicyFile } from './ignore.js';

export const RULE_ACTIONS = ['fail', 'warn'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];
export const DEFAULT_ACTIONS = ['fail', 'warn', 'ignore'] as const;
export type DefaultAction = (typeof DEFAULT_ACTIONS)[number];
/** What a rule does when its condition cannot be decided (no base image recorded, no signature check yet). */
export type UndecidedAction = DefaultAction;

/** A minimum severity; `any` (and `unknown`, as for --fail-on) matches every finding, unknown severity included. */
export type SeverityThreshold = Severity | 'any';
export const SEVERITY_THRESHOLDS: readonly SeverityThreshold[] = [...SEVERITY_ORDER, 'any'];

export const RULE_KINDS = [
  'vulnerability',
  'secret',
  'misconfiguration',
  'package',
  'baseImage',
  'signature',
  'licence',
] as const;
export type RuleKind = (typeof RULE_KINDS)[number];


const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

const text = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .trim()
    .min(1, `${what} must not be empty`);
const list = (what: string) =>
  z.array(text(`each ${what}`), { error: `must be a list of ${what}s` }).min(1, `list at least one ${what}`);
const severityThreshold = z.enum(SEVERITY_THRESHOLDS as [SeverityThreshold, ...SeverityThreshold[]], {
  error: `must be one of ${SEVERITY_THRESHOLDS.join(', ')}`,
});
const undecided = z.enum(DEFAULT_ACTIONS, { error: `must be one of ${DEFAULT_ACTIONS.join(', ')}` });

const vulnerabilityCondition = z.strictObject({
  severity: severityThreshold.optional(),
  severities: z
    .array(z.enum(SEVERITY_ORDER as [Severity, ...Severity[]], { error: `must be one of ${SEVERITY_ORDER.join(', ')}` }))
    .min(1, 'list at least one severity')
    .optional(),
  fixAvailable: z.boolean({ error: 'must be true or false' }).optional(),
  olderThanDays: z
    .number({ error: 'must be a whole number of days' })
    .int('must be a whole number of days')
    .nonnegative('must not be negative')
    .optional(),
  ids: list('advisory id').optional(),
});

const secretCondition = z.strictObject({
  rules: list('secret rule id').optional(),
  severity: severityThreshold.optional(),
});

const misconfigurationCondition = z.strictObject({
  ids: list('check id').optional(),
  severity: severityThreshold.optional(),
});

const packageCondition = z.strictObject({
  names: list('package name'),
  types: z
    .array(z.enum(PACKAGE_TYPES, { error: `must be one of ${PACKAGE_TYPES.join(', ')}` }))
    .min(1, 'list at least one package type')
    .optional(),
});

const baseImageCondition = z.strictObject({
  allowed: list('image reference or pattern'),
  whenUnknown: undecided.optional(),
});

const signatureCondition = z.strictObject({
  whenUnverifiable: undecided.optional(),
});

const licenceCondition = z.strictObject({
  denied: list('SPDX licence id'),
});

const ruleSchema = z
  .strictObject({
    id: text('id').refine((s) => ID_RE.test(s), 'id must be letters, digits and . _ : - (no spaces)'),
    action: z.enum(RULE_ACTIONS, { error: 'action must be fail or warn' }),
    description: text('description').optional(),
    vulnerability: vulnerabilityCondition.optional(),
    secret: secretCondition.optional(),
    misconfiguration: misconfigurationCondition.optional(),
    package: packageCondition.optional(),
    baseImage: baseImageCondition.optional(),
    signature: signatureCondition.optional(),
    licence: licenceCondition.optional(),
    // The American spelling is accepted and stored as `licence`.
    license: licenceCondition.optional(),
  })
  .superRefine((rule, ctx) => {
    const kinds = [...RULE_KINDS, 'license' as const].filter((k) => rule[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? `rule "${rule.id}" needs one condition: ${RULE_KINDS.join(', ')}`
            : `rule "${rule.id}" has ${kinds.join(' and ')}; give each condition its own rule`,
      });
    }
    if (rule.vulnerability?.severity !== undefined && rule.vulnerability.severities !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['vulnerability'],
        message: 'give severity (a minimum) or severities (an exact list), not both',
      });
    }
  })
  .transform(({ license, ...rest }) => (license !== undefined ? { ...rest, licence: license } : rest));

/** `2025-06-30` (expires at 00:00 UTC that day) or an ISO 8601 date-time with a time zone. */
function isExpiry(value: string): boolean {
  if (isValidDate(value)) return true;
  return (
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
    isValidDate(value.slice(0, 10)) &&
    !Number.isNaN(Date.parse(value))
  );
}

const scopeObject = z
  .strictObject({
    project: text('scope.project').optional(),
    repository: text('scope.repository').optional(),
    digest: text('scope.digest')
      .refine((d) => /^sha(256:[0-9a-f]{64}|512:[0-9a-f]{128})$/.test(d), 'scope.digest must be sha256:<64 hex>')
      .optional(),
  })
  .refine((s) => s.project !== undefined || s.repository !== undefined || s.digest !== undefined, {
    message: 'scope needs project, repository or digest (or write scope: global)',
  });
const scopeSchema = z.union([z.literal('global'), scopeObject], {
  error: 'scope must be global or a mapping with project, repository and/or digest',
});

const exceptionFields = {
  id: text('id'),
  reason: text('reason (why the risk is accepted)'),
  author: text('author').optional(),
  expires: z
    .string({ error: 'expires must be a date written YYYY-MM-DD (quote it if your editor turns it into a date)' })
    .refine(isExpiry, 'expires must be a real date, YYYY-MM-DD, or an ISO 8601 date-time with a time zone')
    .optional(),
};
const exceptionSchema = z.strictObject({ ...exceptionFields, scope: scopeSchema });
// Inside a project override the scope defaults to that project.
const projectExceptionSchema = z.strictObject({ ...exceptionFields, scope: scopeSchema.optional() });

function uniqueIds(rules: ReadonlyArray<{ id: string }>, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  for (const [i, r] of rules.entries()) {
    if (r.id === 'default') {
      ctx.addIssue({ code: 'custom', path: [i, 'id'], message: '"default" is reserved for findings no rule matched' });
    }
    if (seen.has(r.id)) {
      ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `rule id "${r.id}" is used twice; ids must be unique` });
    }
    seen.add(r.id);
  }
}

const rulesSchema = z.array(ruleSchema, { error: 'rules must be a list of rules ("- id: ...")' }).superRefine(uniqueIds);

const projectOverrideSchema = z.strictObject({
  mode: z.enum(['extend', 'replace'], { error: 'mode must be extend or replace' }).default('extend'),
  defaultAction: z.enum(DEFAULT_ACTIONS, { error: `defaultAction must be one of ${DEFAULT_ACTIONS.join(', ')}` }).optional(),
  rules: rulesSchema.default([]),
  exceptions: z.array(projectExceptionSchema, { error: 'exceptions must be a list' }).default([]),
});

export const policyDocumentSchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1 (the policy format version)' }),
  name: text('name').optional(),
  description: text('description').optional(),
  defaultAction: z
    .enum(DEFAULT_ACTIONS, { error: `defaultAction must be one of ${DEFAULT_ACTIONS.join(', ')}` })
    .default('warn'),
  rules: rulesSchema.default([]),
  exceptions: z.array(exceptionSchema, { error: 'exceptions must be a list ("- id: ...")' }).default([]),
  projects: z
    .record(z.string().min(1, 'a project pattern must not be empty'), projectOverrideSchema, {
      error: 'projects must be a mapping of project name (or glob) to overrides',
    })
    .default({}),
});

export type PolicyDocument = z.output<typeof policyDocumentSchema>;
export type PolicyRule = PolicyDocument['rules'][number];
export type ExceptionScope = z.output<typeof scopeSchema>;
export type PolicyException = PolicyDocument['exceptions'][number];
export type ProjectOverride = PolicyDocument['projects'][string];
export type VulnerabilityCondition = z.output<typeof vulnerabilityCondition>;
export type SecretCondition = z.output<typeof secretCondition>;
export type MisconfigurationCondition = z.output<typeof misconfigurationCondition>;
export type PackageCondition = z.output<typeof packageCondition>;
export type BaseImageCondition = z.output<typeof baseImageCondition>;
export type SignatureCondition = z.output<typeof signatureCondition>;
export type LicenceCondition = z.output<typeof licenceCondition>;

/** The one condition a (valid) rule carries. */
export function ruleKind(rule: PolicyRule): RuleKind {
  const kind = RULE_KINDS.find((k) => rule[k] !== undefined);
  if (kind === undefined) throw new PolicyError('POLICY_INVALID', `rule "${rule.id}" has no condition`);
  return kind;
}

// ---- errors -------------------------------------------------------------------------------------

// Every key the format knows, for "did you mean" hints on typos.
const KNOWN_KEYS = [
  'version',
  'name',
  'description',
  'defaultAction',
  'rules',
  'exceptions',
  'projects',
  'mode',
  'id',
  'action',
  ...RULE_KINDS,
  'license',
  'severity',
  'severities',
  'fixAvailable',
  'olderThanDays',
  'ids',
  'names',
  'types',
  'allowed',
  'whenUnknown',
  'whenUnverifiable',
  'denied',
  'scope',
  'project',
  'repository',
  'digest',
  'reason',
  'author',
  'expires',
];

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function suggestKey(key: string): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of KNOWN_KEYS) {
    // A key the format knows elsewhere (`ids` in a rule) is no hint where it is unknown (an exception).
    if (k === key) continue;
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= 2 ? ` (did you mean "${best}"?)` : '';
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((k) => `unknown key "${k}"${suggestKey(k)}; see docs/policy.md for the keys allowed here`)
      .join('; ');
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required';
  if (issue.code === 'invalid_union') {
    const inner = issue.errors.flat();
    if (inner.some((e) => e.code === 'invalid_type' && e.input === undefined && e.path.length === 0)) {
      return `is required; ${issue.message}`;
    }
    // A branch that got the right shape but a wrong detail says the most; else the union's own message.
    const specific = inner.find((e) => e.code !== 'invalid_type' && e.code !== 'invalid_value');
    return specific !== undefined ? describeIssue(specific) : issue.message;
  }
  return issue.message;
}

/** The 1-based line of the deepest node that exists along `path`. */
function lineOf(doc: Document | undefined, counter: LineCounter | undefined, path: ReadonlyArray<PropertyKey>): number | undefined {
  if (doc === undefined || counter === undefined) return undefined;
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0];
    if (offset !== undefined) return counter.linePos(offset).line;
    if (n === 0 && isCollection(doc.contents)) return counter.linePos(doc.contents.range?.[0] ?? 0).line;
  }
  return undefined;
}

/**
 * Validates an already-parsed policy value. `source` names it in errors (a file, or
 * `portcullis.yaml: policy`); `prefix` is prepended to paths when the policy sits inside another
 * document.
 */
export function validatePolicy(
  value: unknown,
  source: string,
  where: { doc?: Document; counter?: LineCounter; prefix?: ReadonlyArray<PropertyKey> } = {},
): PolicyDocument {
  if (value === null || value === undefined) {
    throw new PolicyError('POLICY_INVALID', `${source}: the policy is empty; start it with "version: 1" and a rules list`, {
      subject: source,
    });
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new PolicyError('POLICY_INVALID', `${source}: a policy must be a mapping with "version: 1" and "rules:"`, {
      subject: source,
    });
  }
  const parsed = policyDocumentSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const prefix = where.prefix ?? [];
  const messages = parsed.error.issues.slice(0, 5).map((issue) => {
    const full = [...prefix, ...issue.path];
    const line = lineOf(where.doc, where.counter, full);
    const at = `${source}${line !== undefined ? `:${line}` : ''}`;
    const path = formatPath(full);
    return `${at}: ${path === '' ? '' : `${path}: `}${describeIssue(issue)}`;
  });
  const more = parsed.error.issues.length > 5 ? ` (and ${parsed.error.issues.length - 5} more)` : '';
  throw new PolicyError('POLICY_INVALID', `invalid policy: ${messages.join('; ')}${more}`, { subject: source });
}

/** Parses policy YAML text. `source` (a file name) is named in every error. */
export function parsePolicyText(yamlText: string, source: string): PolicyDocument {
  const counter = new LineCounter();
  const doc = parseDocument(yamlText.replace(/^\uFEFF/, ''), { lineCounter: counter, prettyErrors: false });
  const firstError = doc.errors[0];
  if (firstError) {
    const pos = counter.linePos(firstError.pos[0]);
    throw new PolicyError(
      'POLICY_INVALID',
      `${source}:${pos.line}:${pos.col}: not valid YAML: ${firstError.message.split('\n')[0]}`,
      { subject: source },
    );
  }
  return validatePolicy(doc.toJS(), source, { doc, counter });
}

/** Reads and validates a policy file; unreadable or invalid files are a PolicyError naming the file. */
export function loadPolicyFile(path: string): PolicyDocument {
  return parsePolicyText(readPolicyFile(path, 'POLICY_UNREADABLE', 'policy file'), path);
}

// ---- per-project resolution --------------------------------------------------------------------

/** `*` matches any run of characters (slashes included), `?` one character; case-insensitive. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

export function globMatches(pattern: string, value: string): boolean {
  return globToRegExp(pattern).test(value);
}

/** An exception with its scope made explicit, and where it came from. */
export interface ScopedException extends PolicyException {
  /** `exceptions[2]` or `projects.team-*.exceptions[0]`, for messages. */
  origin: string;
}

/** The policy in force for one project: overrides applied, in document order. */
export interface EffectivePolicy {
  version: 1;
  name?: string;
  description?: string;
  defaultAction: DefaultAction;
  rules: PolicyRule[];
  exceptions: ScopedException[];
  /** The `projects:` keys that matched, in the order they were applied. */
  appliedOverrides: string[];
}

/**
 * Applies every `projects:` entry whose pattern matches `project`, in document order: `replace`
 * swaps the rules list, `extend` replaces rules with the same id and appends new ones. Exceptions
 * from an override are scoped to the project unless they say otherwise.
 */
export function resolvePolicy(policy: PolicyDocument, project?: string): EffectivePolicy {
  let rules = [...policy.rules];
  let defaultAction = policy.defaultAction;
  const exceptions: ScopedException[] = policy.exceptions.map((e, i) => ({ ...e, origin: `exceptions[${i}]` }));
  const appliedOverrides: string[] = [];
  if (project !== undefined) {
    for (const [pattern, override] of Object.entries(policy.projects)) {
      if (!globMatches(pattern, project)) continue;
      appliedOverrides.push(pattern);
      if (override.mode === 'replace') {
        rules = [...override.rules];
      } else {
        for (const rule of override.rules) {
          const at = rules.findIndex((r) => r.id === rule.id);
          if (at >= 0) rules[at] = rule;
          else rules.push(rule);
        }
      }
      if (override.defaultAction !== undefined) defaultAction = override.defaultAction;
      for (const [i, e] of override.exceptions.entries()) {
        exceptions.push({ ...e, scope: e.scope ?? { project }, origin: `projects.${pattern}.exceptions[${i}]` });
      }
    }
  }
  return {
    version: 1,
    ...(policy.name !== undefined ? { name: policy.name } : {}),
    ...(policy.description !== undefined ? { description: policy.description } : {}),
    defaultAction,
    rules,
    exceptions,
    appliedOverrides,
  };
}

/** The effective policy as a plain policy document again (what `policy show --project` prints). */
export function effectiveAsDocument(effective: EffectivePolicy): Record<string, unknown> {
  return {
    version: 1,
    ...(effective.name !== undefined ? { name: effective.name } : {}),
    ...(effective.description !== undefined ? { description: effective.description } : {}),
    defaultAction: effective.defaultAction,
    rules: effective.rules,
    ...(effective.exceptions.length > 0
      ? { exceptions: effective.exceptions.map(({ origin: _origin, ...e }) => e) }
      : {}),
  };
}
