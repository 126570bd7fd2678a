/**
 * User rules and allowlists from `secrets.yaml`:
 *
 *   rules:
 *     - { id: acme-key, title: ACME API key, severity: high, regex: 'acme_[a-z0-9]{32}', keywords: [acme_] }
 *   allow:
 *     paths: ['opt/app/fixtures/**']
 *     values: ['^AKIA[A-Z2-7]{12}TEST$']
 *     rules: [generic-secret]
 *
 * Unknown keys are errors (a typo must not silently disable an allowlist), and every error names
 * the file and the entry.
 */
import { readFile } from 'node:fs/promises';

import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

import { UsageError } from '../errors.js';
import { SEVERITY_ORDER, type Severity } from '../sbom/finding.js';
import {
  BUILTIN_ALLOW_PATHS,
  BUILTIN_ALLOW_VALUES,
  BUILTIN_ALLOW_VALUE_PATTERNS,
  PathMatcher,
  globToRegExp,
} from './allowlist.js';
import type { RuleSet } from './engine.js';
import { BUILTIN_RULES, type SecretRule } from './rules.js';

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const RuleSchema = z.strictObject({
  id: z.string().regex(ID, 'must be lower-case letters, digits, ".", "_" or "-" (at most 64)'),
  title: z.string().min(1),
  severity: z.enum(SEVERITY_ORDER as [Severity, ...Severity[]]),
  regex: z.string().min(1),
  keywords: z
    .array(z.string().min(1))
    .min(1, 'needs at least one keyword (it is the prefilter that keeps scans fast)'),
  /** Optional minimum Shannon entropy of the secret, bits per character. */
  entropy: z.number().min(0).max(8).optional(),
  /** Case-insensitive regex. */
  ignoreCase: z.boolean().optional(),
});

const ConfigSchema = z.strictObject({
  rules: z.array(RuleSchema).optional(),
  allow: z
    .strictObject({
      paths: z.array(z.string().min(1)).optional(),
      values: z.array(z.string().min(1)).optional(),
      rules: z.array(z.string().min(1)).optional(),
    })
    .optional(),
});

/** A validated, compiled secrets configuration. */
export interface SecretConfig {
  /** The file it came from, for messages. */
  readonly source: string;
  readonly rules: readonly SecretRule[];
  readonly allowPaths: readonly string[];
  readonly allowValues: readonly RegExp[];
  readonly disabledRules: readonly string[];
}

function fail(source: string, message: string): never {
  return failWith(source, message);
}

function failWith(source: string, message: string, cause?: unknown): never {
  throw new UsageError('SECRETS_CONFIG_INVALID', `${source}: ${message}`, { subject: source, cause });
}

function compile(source: string, where: string, pattern: string, flags: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(pattern, flags);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
    return failWith(source, `${where}: invalid regex ${JSON.stringify(pattern)}: ${why}`, err);
  }
  // An empty match would report nothing useful and loop; refuse it up front.
  if (re.test('')) fail(source, `${where}: regex ${JSON.stringify(pattern)} matches the empty string`);
  return re;
}

function zodPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

/** Validate and compile the text of a secrets.yaml. `source` names the file in errors. */
export function parseSecretConfig(text: string, source: string): SecretConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text) as unknown;
  } catch (err) {
    return failWith(source, `not valid YAML: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const parsed = ConfigSchema.safeParse(doc ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue === undefined ? '' : zodPath(issue.path);
    fail(source, `${at === '' ? '' : `${at}: `}${issue?.message ?? 'invalid'}`);
  }
  const cfg = parsed.data;
  const builtinIds = new Set(BUILTIN_RULES.map((r) => r.id));
  const seen = new Set<string>();
  const rules: SecretRule[] = (cfg.rules ?? []).map((r, i) => {
    const where = `rules[${i}] (${r.id})`;
    if (builtinIds.has(r.id))
      fail(
        source,
        `${where}: id is a built-in rule; pick another id (disable the built-in with allow.rules)`,
      );
    if (seen.has(r.id)) fail(source, `${where}: duplicate rule id`);
    seen.add(r.id);
    const regex = compile(source, where, r.regex, r.ignoreCase === true ? 'gi' : 'g');
    return {
      id: r.id,
      title: r.title,
      severity: r.severity,
      keywords: r.keywords.map((k) => k.toLowerCase()),
      regex,
      entropy: r.entropy,
    };
  });
  const allowPaths = cfg.allow?.paths ?? [];
  allowPaths.forEach((g, i) => {
    try {
      globToRegExp(g);
    } catch (err) {
      failWith(source, `allow.paths[${i}]: invalid glob ${JSON.stringify(g)}`, err);
    }
  });
  const allowValues = (cfg.allow?.values ?? []).map((v, i) => compile(source, `allow.values[${i}]`, v, ''));
  const knownIds = new Set([...builtinIds, ...seen]);
  const disabledRules = cfg.allow?.rules ?? [];
  disabledRules.forEach((id, i) => {
    if (!knownIds.has(id)) fail(source, `allow.rules[${i}]: no rule has id "${id}"`);
  });
  return { source, rules, allowPaths, allowValues, disabledRules };
}

/** Read and validate a secrets.yaml. */
export async function loadSecretConfig(path: string): Promise<SecretConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return failWith(path, code === 'ENOENT' ? 'file not found' : `cannot read: ${code ?? String(err)}`, err);
  }
  return parseSecretConfig(text, path);
}

/**
 * Built-in rules (minus disabled ones) followed by user rules, with built-in and user allowlists
 * merged. User rules come after the built-ins, so when both match the same text the built-in
 * (more specific, validated) rule is reported; the generic catch-all loses to both.
 */
export function buildRuleSet(config?: SecretConfig): RuleSet {
  const disabled = new Set(config?.disabledRules ?? []);
  const rules = [...BUILTIN_RULES, ...(config?.rules ?? [])].filter((r) => !disabled.has(r.id));
  return {
    rules,
    allow: {
      paths: new PathMatcher([...BUILTIN_ALLOW_PATHS, ...(config?.allowPaths ?? [])]),
      values: new Set(BUILTIN_ALLOW_VALUES),
      valuePatterns: [...BUILTIN_ALLOW_VALUE_PATTERNS, ...(config?.allowValues ?? [])],
    },
  };
}
