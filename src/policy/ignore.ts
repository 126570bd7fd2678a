/**
 * `.portcullisignore`: findings the user has decided to accept, each with a written reason.
 *
 * Two formats are accepted, told apart by content (see `detectFormat`):
 *
 * 1. YAML, with a top-level `ignore:` list. Unknown keys are errors, so a typo such as `expire:`
 *    cannot silently turn a temporary exception into a permanent one.
 *
 *    ```yaml
 *    ignore:
 *      - id: CVE-2023-1234            # advisory id or any alias (CVE, GHSA, DSA, ...)
 *        reason: not reachable, the binary never parses untrusted TLS
 *        expires: 2025-06-30          # optional, YYYY-MM-DD (UTC)
 *        packages:                    # optional; absent = every package
 *          - pkg:deb/debian/openssl   # purl prefix ...
 *          - libxml2                  # ... or package name
 *    ```
 *
 * 2. Lines, as Trivy's `.trivyignore`: one id per line, optional `exp:YYYY-MM-DD` and `pkg:...`
 *    (purl prefix scope) tokens, and the reason as a `#` comment on the same line or, failing
 *    that, in the comment lines directly above it:
 *
 *    ```text
 *    CVE-2023-1234  exp:2025-06-30  # not reachable
 *    # upstream disputes this one
 *    GHSA-xxxx-yyyy-zzzz pkg:npm/lodash
 *    ```
 *
 * Matching: the id is compared case-insensitively with the finding's id and its aliases. A
 * `packages` entry starting with `pkg:` is a purl prefix that must end at a purl component boundary
 * (`pkg:npm/lodash` matches `pkg:npm/lodash@4.17.21` but not `pkg:npm/lodash-es@...`); any other
 * entry is a package name, compared with the package's name, `namespace/name`, source package name
 * and the name the advisory used.
 *
 * Expiry follows Trivy: a rule with `expires: 2025-06-30` stops applying at 2025-06-30T00:00:00Z.
 * Expired rules are reported rather than silently dropped, so stale exceptions get cleaned up.
 */
import { readFileSync } from 'node:fs';

import { LineCounter, isMap, isSeq, parseDocument } from 'yaml';
import { z } from 'zod';

import { PortcullisError } from '../errors.js';
import type { Finding } from '../sbom/finding.js';

/** Errors about policy inputs: ignore files, VEX documents, severity lists. */
export class PolicyError extends PortcullisError {}

export interface IgnoreRule {
  /** Advisory id or alias, as written. */
  id: string;
  reason: string;
  /** `YYYY-MM-DD`; the rule stops applying at 00:00 UTC that day. */
  expires?: string;
  /** purl prefixes (`pkg:...`) or package names; absent means every package. */
  packages?: string[];
  /** The file (or other label) the rule came from, for messages. */
  source: string;
  /** 1-based line of the rule in its source, when known. */
  line?: number;
}

export type IgnoreFormat = 'yaml' | 'lines';

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** True for a real calendar date in `YYYY-MM-DD` form (rejects 2024-02-30, which Date would roll over). */
export function isValidDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

const nonEmpty = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .trim()
    .min(1, `${what} must not be empty`);

const yamlRuleSchema = z.strictObject({
  id: nonEmpty('id'),
  reason: nonEmpty('reason (why it is safe to ignore)'),
  // YAML 1.2 keeps an unquoted 2025-06-30 as a string, so no Date coercion is needed.
  expires: z
    .string({ error: 'expires must be a date written YYYY-MM-DD' })
    .refine(isValidDate, 'expires must be a real date written YYYY-MM-DD')
    .optional(),
  packages: z
    .array(nonEmpty('packages entry'), { error: 'packages must be a list of purl prefixes or names' })
    .optional(),
});

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (allowed: id, reason, expires, packages)`;
      }
      if (issue.code === 'invalid_type' && issue.path.length === 1 && issue.input === undefined) {
        return `${String(issue.path[0])} is required`;
      }
      return issue.message;
    })
    .join('; ');
}

/**
 * YAML when the first significant line is a mapping key or a document marker; anything else is
 * the line format. Ids never contain `: `, so a Trivy-style line cannot look like a YAML key.
 */
export function detectFormat(text: string): IgnoreFormat {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    return line === '---' || /^[A-Za-z_][\w-]*\s*:(\s|$)/.test(line) ? 'yaml' : 'lines';
  }
  return 'lines';
}

function parseYaml(text: string, source: string): IgnoreRule[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const firstError = doc.errors[0];
  if (firstError) {
    // With prettyErrors off the error carries only offsets; the LineCounter turns them into lines.
    const pos = lineCounter.linePos(firstError.pos[0]);
    const where = `${source}:${pos.line}:${pos.col}`;
    throw new PolicyError(
      'POLICY_IGNORE_INVALID',
      `${where}: not valid YAML: ${firstError.message.split('\n')[0]}`,
      {
        subject: source,
      },
    );
  }
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;
  const invalid = (message: string, line?: number) =>
    new PolicyError('POLICY_IGNORE_INVALID', `${source}${line !== undefined ? `:${line}` : ''}: ${message}`, {
      subject: source,
    });

  const root = doc.contents;
  if (root === null) return [];
  if (!isMap(root))
    throw invalid('expected a top-level "ignore:" key holding a list of entries', lineOf(root.range?.[0]));
  for (const pair of root.items) {
    const key = (pair.key as { value?: unknown } | null)?.value;
    if (key !== 'ignore') {
      const keyRange = (pair.key as { range?: [number, number, number] } | null)?.range;
      throw invalid(
        `unknown top-level key "${String(key)}" (only "ignore:" is allowed)`,
        lineOf(keyRange?.[0]),
      );
    }
  }
  const list = root.get('ignore', true);
  if (list === undefined || list === null || (list as { value?: unknown }).value === null) return [];
  if (!isSeq(list))
    throw invalid(
      '"ignore:" must be a list of entries ("- id: ...")',
      lineOf((list as { range?: [number] }).range?.[0]),
    );

  const rules: IgnoreRule[] = [];
  for (const [index, item] of list.items.entries()) {
    const line = lineOf((item as { range?: [number] } | null)?.range?.[0]);
    const value: unknown = item === null ? null : (item as { toJSON(): unknown }).toJSON();
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalid(`ignore entry ${index + 1} must be a mapping with id and reason`, line);
    }
    const parsed = yamlRuleSchema.safeParse(value);
    if (!parsed.success) throw invalid(`ignore entry ${index + 1}: ${describeIssues(parsed.error)}`, line);
    const r = parsed.data;
    rules.push({
      id: r.id,
      reason: r.reason,
      ...(r.expires !== undefined ? { expires: r.expires } : {}),
      ...(r.packages !== undefined ? { packages: r.packages } : {}),
      source,
      ...(line !== undefined ? { line } : {}),
    });
  }
  return rules;
}

// An id is one token of letters, digits and `-_.:` (e.g. `CVE-2023-1234`, `GHSA-abcd-...`, `DLA-1-1`).
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

function parseLines(text: string, source: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  const invalid = (line: number, message: string) =>
    new PolicyError('POLICY_IGNORE_INVALID', `${source}:${line}: ${message}`, { subject: source });
  // Comment lines directly above an entry, used as its reason when it has no inline comment, so
  // existing `.trivyignore` files that explain entries in a comment block keep working.
  let pendingComment: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '') {
      pendingComment = [];
      continue;
    }
    if (line.startsWith('#')) {
      const c = line.replace(/^#+/, '').trim();
      if (c !== '') pendingComment.push(c);
      continue;
    }
    // The comment starts at a `#` preceded by whitespace; a `#` inside a purl token is a subpath.
    const hash = /\s#/.exec(line);
    const body = hash ? line.slice(0, hash.index).trim() : line;
    const comment = hash ? line.slice(hash.index).trim().replace(/^#+/, '').trim() : '';
    const [id, ...tokens] = body.split(/\s+/);
    if (id === undefined || !ID_RE.test(id)) throw invalid(lineNo, `"${id ?? ''}" is not an advisory id`);
    let expires: string | undefined;
    const packages: string[] = [];
    for (const token of tokens) {
      if (token.startsWith('exp:')) {
        const date = token.slice(4);
        if (!isValidDate(date)) throw invalid(lineNo, `"${token}" must be exp:YYYY-MM-DD with a real date`);
        expires = date;
      } else if (token.startsWith('pkg:')) {
        packages.push(token);
      } else {
        throw invalid(
          lineNo,
          `unexpected "${token}" after ${id} (expected exp:YYYY-MM-DD, a pkg: purl prefix, or "# reason")`,
        );
      }
    }
    const reason = comment !== '' ? comment : pendingComment.join(' ');
    pendingComment = [];
    if (reason === '')
      throw invalid(lineNo, `${id} has no reason; write it as "${id}  # why it is safe to ignore"`);
    rules.push({
      id,
      reason,
      ...(expires !== undefined ? { expires } : {}),
      ...(packages.length > 0 ? { packages } : {}),
      source,
      line: lineNo,
    });
  }
  return rules;
}

/** Parses ignore-file text in either format; `source` names it in errors and suppression reports. */
export function parseIgnoreText(text: string, source: string): IgnoreRule[] {
  const clean = text.replace(/^\uFEFF/, '');
  return detectFormat(clean) === 'yaml' ? parseYaml(clean, source) : parseLines(clean, source);
}

/** Reads and parses an ignore file; an unreadable or malformed file is a PolicyError naming it. */
export function loadIgnoreFile(path: string): IgnoreRule[] {
  return parseIgnoreText(readPolicyFile(path, 'POLICY_IGNORE_UNREADABLE', 'ignore file'), path);
}

/** Reads a policy input (ignore file, VEX document) with an error that says what and why. */
export function readPolicyFile(path: string, code: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    const why = errno === 'ENOENT' ? 'it does not exist' : errno === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new PolicyError(code, `cannot read ${what} ${path}: ${why}`, { subject: path, cause: err });
  }
}

/** True once `now` has reached 00:00 UTC on the rule's expiry date. */
export function isIgnoreExpired(rule: IgnoreRule, now: Date): boolean {
  if (rule.expires === undefined) return false;
  return now.getTime() >= Date.parse(`${rule.expires}T00:00:00Z`);
}

function sameId(a: string, b: string): boolean {
  return a.toUpperCase() === b.toUpperCase();
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Purl prefix match at a component boundary. Both sides are percent-decoded because users write
 * `pkg:npm/@scope/x` while generated purls carry `%40scope`.
 */
export function purlHasPrefix(purl: string, prefix: string): boolean {
  const p = safeDecode(purl);
  const q = safeDecode(prefix);
  if (p.toLowerCase() === q.toLowerCase()) return true;
  if (!p.toLowerCase().startsWith(q.toLowerCase())) return false;
  if (/[/@?&#]$/.test(q)) return true;
  return /[/@?#]/.test(p.charAt(q.length));
}

function packageMatches(entry: string, finding: Finding): boolean {
  if (entry.startsWith('pkg:')) return purlHasPrefix(finding.package.purl, entry);
  const pkg = finding.package;
  const names = [
    pkg.name,
    pkg.namespace !== undefined ? `${pkg.namespace}/${pkg.name}` : undefined,
    pkg.sourceName,
    finding.matchedName,
  ];
  return names.some((n) => n !== undefined && n === entry);
}

/** Whether a rule names this finding (by id or alias) and, when scoped, its package. Ignores expiry. */
export function ignoreRuleMatches(rule: IgnoreRule, finding: Finding): boolean {
  const idMatch = sameId(rule.id, finding.id) || finding.aliases.some((a) => sameId(rule.id, a));
  if (!idMatch) return false;
  if (rule.packages === undefined || rule.packages.length === 0) return true;
  return rule.packages.some((entry) => packageMatches(entry, finding));
}
