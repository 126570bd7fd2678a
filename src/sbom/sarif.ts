/**
 * SARIF 2.1.0 output (`--format sarif`), shaped for GitHub code scanning and other SARIF viewers.
 *
 * One run. `tool.driver` is Portcullis, with one reporting rule per advisory id: the rule carries
 * the advisory's summary, a help text listing the affected packages and the version to upgrade
 * to, its first reference as `helpUri`, and the `security-severity` property GitHub uses to rank
 * security alerts. Each finding becomes one result of that rule:
 *
 * - `level`: critical and high → `error`, medium → `warning`, low, none and unknown → `note`;
 * - `locations[0]`: the file inside the image that revealed the package (its first path, made
 *   relative: `var/lib/dpkg/status`), line 1, with the image reference as the location message;
 *   the image reference itself when the package has no path;
 * - `partialFingerprints['portcullis/v1']`: a SHA-256 of id, purl and path, so re-uploads of the
 *   same finding are recognised as the same alert.
 *
 * Suppressed findings are not written: a SARIF consumer would count them as open alerts.
 *
 * Secrets and misconfigurations, when the result has them, follow the vulnerabilities:
 *
 * - one rule per secret rule id, named `secret/<ruleId>`, whose help says to remove and rotate
 *   the secret; one result per secret, located at its file (relative URI, `startLine` = its line)
 *   or, for a secret in the image config or history, at the pseudo-file `image-config` with a
 *   location message naming the field. Only the redacted value is ever written;
 * - one rule per misconfiguration id, whose help is the check's remedy and its CIS / Pod Security
 *   Standards reference; one result per failed check, located at its target (a Dockerfile or
 *   manifest path, or a path inside the image) and line, or at `image-config` for config fields
 *   and history steps.
 *
 * `validateSarif` checks a document against `sarifLogSchema`, a zod schema of the SARIF subset
 * this writer emits (objects are strict, as in the official schema, which forbids unknown
 * properties almost everywhere) plus the rules GitHub code scanning enforces on upload. No npm
 * package small enough to depend on ships the official OASIS JSON schema, so it is not used here.
 */
import { createHash } from 'node:crypto';

import { z } from 'zod';

import type { Finding, Misconfiguration, SecretFinding, Severity } from './finding.js';
import { severityRank } from './finding.js';
import { compareFindings, compareMisconfigurations, compareSecrets } from './json.js';
import { packageDisplayName } from './purl.js';
import type { ScanResult } from './result.js';
import { byCodeUnits as cmp } from '../text-order.js';

/** The `$schema` written into every SARIF log. */
export const SARIF_SCHEMA_URI = 'https://json.schemastore.org/sarif-2.1.0.json';

/** `$schema` values `validateSarif` accepts: the SchemaStore copy and the OASIS originals. */
export const SARIF_SCHEMA_URIS: readonly string[] = [
  SARIF_SCHEMA_URI,
  'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json',
  'https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/schemas/sarif-schema-2.1.0.json',
  'https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json',
  'https://raw.githubusercontent.com/oasis-tcs/sarif-spec/main/sarif-2.1/schema/sarif-schema-2.1.0.json',
];

/** The key under which each result's fingerprint is written in `partialFingerprints`. */
export const SARIF_FINGERPRINT_KEY = 'portcullis/v1';

export type SarifLevel = 'none' | 'note' | 'warning' | 'error';

/** The SARIF `level` of a finding of the given severity. */
export function sarifLevel(severity: Severity): SarifLevel {
  switch (severity) {
    case 'critical':
    case 'high':
      return 'error';
    case 'medium':
      return 'warning';
    default:
      return 'note';
  }
}

/**
 * Score written as `security-severity` when a finding has no CVSS score: a value inside the band
 * GitHub maps to the same severity (critical ≥ 9.0, high 7.0–8.9, medium 4.0–6.9, low 0.1–3.9).
 * `unknown` has none: the property is left out and GitHub falls back to the result's level.
 */
export const DEFAULT_SECURITY_SEVERITY: Readonly<Record<Severity, number | undefined>> = {
  critical: 9.5,
  high: 8.0,
  medium: 5.5,
  low: 2.0,
  none: 0.0,
  unknown: undefined,
};

export interface SarifOptions {
  /** Written as `tool.driver.informationUri` (the project's home page), when given. */
  informationUri?: string;
}

/**
 * A path inside the image as a relative URI reference: no leading slash, each segment
 * percent-encoded (so a `:` in the first segment cannot be read as a scheme).
 */
export function imagePathUri(path: string): string {
  return path
    .replace(/^\/+/, '')
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/%(?:40|2B|2C|3D|24|26|3B|21|27|28|29|2A)/g, (m) =>
        decodeURIComponent(m),
      ),
    )
    .join('/');
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

function fingerprint(f: Finding): string {
  return createHash('sha256')
    .update([f.id, f.package.purl, f.package.paths[0] ?? ''].join('\u0000'))
    .digest('hex');
}

function fixedText(f: Finding): string {
  return f.fixedVersions.length > 0 ? f.fixedVersions.join(', ') : 'no fix available';
}

function remedy(f: Finding): string {
  const name = packageDisplayName(f.package);
  const fixed = f.fixedVersions[0];
  return fixed === undefined
    ? `No fixed version of ${name} is known yet; remove the package or watch for an update.`
    : `Upgrade ${name} to ${fixed} or later.`;
}

function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function mdCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\s+/g, ' ');
}

/** The `security-severity` text for a group of findings with one id: the highest score, else the mapped default. */
function securitySeverity(findings: readonly Finding[], worst: Severity): string | undefined {
  const scores = findings.map((f) => f.score).filter((s): s is number => s !== undefined);
  const score = scores.length > 0 ? Math.max(...scores) : DEFAULT_SECURITY_SEVERITY[worst];
  return score === undefined ? undefined : Math.min(10, Math.max(0, score)).toFixed(1);
}

function buildRule(id: string, findings: readonly Finding[]): object {
  const worst = findings.reduce<Severity>(
    (w, f) => (severityRank(f.severity) > severityRank(w) ? f.severity : w),
    'unknown',
  );
  const summary = findings.find((f) => f.summary)?.summary;
  const aliases = [...new Set(findings.flatMap((f) => f.aliases))].sort(cmp);
  const references = [...new Set(findings.flatMap((f) => f.references))];
  const helpUri = references.find(isHttpUrl);
  const score = securitySeverity(findings, worst);

  const full = [sentence(summary ?? id), aliases.length > 0 ? `Also known as ${aliases.join(', ')}.` : '']
    .filter(Boolean)
    .join(' ');

  const textLines = [
    `${id}${summary ? `: ${summary}` : ''}`,
    `Severity: ${worst}${score !== undefined ? ` (security-severity ${score})` : ''}`,
    '',
    ...findings.map(
      (f) =>
        `${packageDisplayName(f.package)} ${f.package.version} (${f.package.paths[0] ?? f.package.purl}): ` +
        `${f.fixedVersions.length > 0 ? `fixed in ${fixedText(f)}` : 'no fix available'}. ${remedy(f)}`,
    ),
  ];
  if (aliases.length > 0) textLines.push('', `Also known as: ${aliases.join(', ')}`);
  if (references.length > 0) textLines.push('', 'References:', ...references.map((r) => `- ${r}`));

  const md = [
    `**${id}**${summary ? ` ${summary}` : ''}`,
    '',
    `Severity: **${worst}**${score !== undefined ? ` (security-severity ${score})` : ''}`,
    '',
    '| Package | Installed version | Fixed version | Path |',
    '| --- | --- | --- | --- |',
    ...findings.map(
      (f) =>
        `| ${mdCell(packageDisplayName(f.package))} | ${mdCell(f.package.version)} | ${mdCell(fixedText(f))} | ` +
        `${mdCell(f.package.paths[0] ?? '-')} |`,
    ),
    '',
    `Remedy: ${[...new Set(findings.map(remedy))].join(' ')}`,
  ];
  if (aliases.length > 0) md.push('', `Also known as: ${aliases.join(', ')}`);
  if (references.length > 0) md.push('', '**References**', '', ...references.map((r) => `- <${r}>`));

  const properties: Record<string, unknown> = {};
  if (score !== undefined) properties['security-severity'] = score;
  properties.tags = ['vulnerability', 'security', worst];

  return {
    id,
    shortDescription: { text: summary ?? id },
    fullDescription: { text: full },
    ...(helpUri !== undefined ? { helpUri } : {}),
    help: { text: textLines.join('\n'), markdown: md.join('\n') },
    defaultConfiguration: { level: sarifLevel(worst) },
    properties,
  };
}

/** The artifact URI of findings in the image configuration or history, which are not files. */
export const IMAGE_CONFIG_URI = 'image-config';

/** The help text of every secret rule. */
export const SECRET_HELP =
  'Remove the secret from the image and rotate it; a secret deleted in a later layer still ships inside the image.';

/** How many places a secret rule's help lists before summarising the rest as `and N more`. */
const SECRET_HELP_LOCATIONS = 20;

function worstSeverity(items: readonly { severity: Severity }[]): Severity {
  return items.reduce<Severity>(
    (w, f) => (severityRank(f.severity) > severityRank(w) ? f.severity : w),
    'unknown',
  );
}

function defaultScore(severity: Severity): string | undefined {
  const score = DEFAULT_SECURITY_SEVERITY[severity];
  return score === undefined ? undefined : score.toFixed(1);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function secretRuleId(s: SecretFinding): string {
  return `secret/${s.ruleId}`;
}

/** Where a secret is, in words: `/app/.env line 3 (layer 1)`, `config field Env[2]`. */
function secretWhereText(s: SecretFinding): string {
  if (s.location === 'file') {
    const parts = [s.target];
    if (s.line !== undefined) parts.push(`line ${s.line}`);
    if (s.layer) parts.push(`(layer ${s.layer.index})`);
    return parts.join(' ');
  }
  return s.location === 'config' ? `image config field ${s.target}` : `image history step ${s.target}`;
}

function buildSecretRule(id: string, secrets: readonly SecretFinding[]): object {
  const worst = worstSeverity(secrets);
  const title = secrets[0]?.title ?? id;
  const score = defaultScore(worst);
  const ruleId = secrets[0]?.ruleId ?? id;
  const where = secrets
    .slice(0, SECRET_HELP_LOCATIONS)
    .map(
      (s) => `${secretWhereText(s)}: ${s.redacted}${s.deleted === true ? ' (deleted in a later layer)' : ''}`,
    );
  if (secrets.length > SECRET_HELP_LOCATIONS)
    where.push(`and ${secrets.length - SECRET_HELP_LOCATIONS} more`);
  const properties: Record<string, unknown> = {};
  if (score !== undefined) properties['security-severity'] = score;
  properties.tags = ['secret', 'security', worst];
  return {
    id,
    shortDescription: { text: title },
    fullDescription: { text: `${sentence(title)} Found by the secret rule ${ruleId}.` },
    help: {
      text: [SECRET_HELP, '', 'Found at:', ...where.map((w) => `- ${w}`)].join('\n'),
      markdown: [SECRET_HELP, '', '**Found at**', '', ...where.map((w) => `- ${mdCell(w)}`)].join('\n'),
    },
    defaultConfiguration: { level: sarifLevel(worst) },
    properties,
  };
}

function misconfigRefs(m: Misconfiguration): string[] {
  const refs: string[] = [];
  if (m.cis !== undefined) refs.push(`CIS Docker Benchmark v1.6 section ${m.cis}`);
  if (m.pss !== undefined) refs.push(`Pod Security Standards (${m.pss})`);
  return refs;
}

function buildMisconfigRule(id: string, items: readonly Misconfiguration[]): object {
  const worst = worstSeverity(items);
  const first = items[0];
  const title = first?.title ?? id;
  const score = defaultScore(worst);
  const remedies = [...new Set(items.map((m) => sentence(m.remedy)))];
  const refs = first ? misconfigRefs(first) : [];
  const properties: Record<string, unknown> = {};
  if (score !== undefined) properties['security-severity'] = score;
  properties.tags = ['misconfiguration', 'security', worst];
  if (first?.cis !== undefined) properties.cis = first.cis;
  if (first?.pss !== undefined) properties.pss = first.pss;
  const full = [sentence(title), refs.length > 0 ? `See ${refs.join('; ')}.` : ''].filter(Boolean).join(' ');
  return {
    id,
    shortDescription: { text: title },
    fullDescription: { text: full },
    help: {
      text: [...remedies, ...(refs.length > 0 ? ['', `Reference: ${refs.join('; ')}`] : [])].join('\n'),
      markdown: [
        `**${id}** ${title}`,
        '',
        `Remedy: ${remedies.join(' ')}`,
        ...(refs.length > 0 ? ['', `Reference: ${refs.join('; ')}`] : []),
      ].join('\n'),
    },
    defaultConfiguration: { level: sarifLevel(worst) },
    properties,
  };
}

/** Misconfiguration targets that name the image config (`config.User`) or a history step. */
function isConfigTarget(target: string): boolean {
  return /^config(?:\.|$)/.test(target) || /^history\[\d+\]/.test(target);
}

function fileUri(path: string, fallback: string): string {
  return imagePathUri(path) || imagePathUri(fallback) || IMAGE_CONFIG_URI;
}

function secretFingerprint(s: SecretFinding): string {
  return createHash('sha256')
    .update(
      [secretRuleId(s), s.location, s.target, s.line ?? '', s.layer?.digest ?? '', s.redacted].join('\u0000'),
    )
    .digest('hex');
}

/**
 * Fingerprints of misconfigurations: id, target and line, so a message that mentions a count
 * (`3 setuid files`) does not open a new alert when the count changes. Checks failing twice at
 * the same place are told apart by their message.
 */
function misconfigFingerprints(items: readonly Misconfiguration[]): string[] {
  const hash = (parts: readonly (string | number)[]): string =>
    createHash('sha256').update(parts.join('\u0000')).digest('hex');
  const counts = new Map<string, number>();
  const keys = items.map((m) => hash([m.id, m.target, m.line ?? '']));
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return items.map((m, i) => {
    const key = keys[i] ?? '';
    return (counts.get(key) ?? 0) > 1 ? hash([m.id, m.target, m.line ?? '', m.message]) : key;
  });
}

function resultMessage(f: Finding): string {
  const fixed = f.fixedVersions.length > 0 ? `fixed in ${f.fixedVersions.join(', ')}` : 'no fix available';
  return `Package ${packageDisplayName(f.package)} version ${f.package.version} is vulnerable to ${f.id} (${fixed})`;
}

/** The SARIF 2.1.0 log for a scan's findings, as a plain object (rules by id, results in package order). */
export function toSarif(result: ScanResult, options: SarifOptions = {}): object {
  const findings = [...(result.vulnerabilities ?? [])].sort(compareFindings);
  const byId = new Map<string, Finding[]>();
  for (const f of findings) {
    const list = byId.get(f.id);
    if (list) list.push(f);
    else byId.set(f.id, [f]);
  }
  const secrets = [...(result.secrets ?? [])].sort(compareSecrets);
  const secretsById = groupBy(secrets, secretRuleId);
  const misconfigs = [...(result.misconfigurations ?? [])].sort(compareMisconfigurations);
  const misconfigsById = groupBy(misconfigs, (m) => m.id);

  // Vulnerability rules, then secret rules, then misconfiguration rules, each sorted by id. A
  // misconfiguration id that collides with an earlier rule id would make an invalid log; such a
  // group is renamed with a `misconfig/` prefix.
  const ruleIds = [...byId.keys()].sort(cmp);
  const rules: object[] = ruleIds.map((id) => buildRule(id, byId.get(id) ?? []));
  for (const id of [...secretsById.keys()].sort(cmp)) {
    ruleIds.push(id);
    rules.push(buildSecretRule(id, secretsById.get(id) ?? []));
  }
  const misconfigRuleId = new Map<string, string>();
  for (const id of [...misconfigsById.keys()].sort(cmp)) {
    const sarifId = ruleIds.includes(id) ? `misconfig/${id}` : id;
    misconfigRuleId.set(id, sarifId);
    ruleIds.push(sarifId);
    rules.push(buildMisconfigRule(sarifId, misconfigsById.get(id) ?? []));
  }
  const ruleIndex = new Map(ruleIds.map((id, i) => [id, i]));
  const { version } = result.generator;
  const { image } = result;

  const results = findings.map((f) => {
    const path = f.package.paths[0];
    return {
      ruleId: f.id,
      ruleIndex: ruleIndex.get(f.id) ?? 0,
      level: sarifLevel(f.severity),
      message: { text: resultMessage(f) },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: imagePathUri(path ?? image.reference) },
            region: { startLine: 1 },
          },
          message: { text: image.reference },
        },
      ],
      partialFingerprints: { [SARIF_FINGERPRINT_KEY]: fingerprint(f) },
      properties: {
        severity: f.severity,
        purl: f.package.purl,
        installedVersion: f.installedVersion,
        fixedVersions: [...f.fixedVersions],
        layerDigest: f.package.layer.digest,
      },
    };
  });

  const secretResults = secrets.map((s) => {
    const ruleId = secretRuleId(s);
    const inFile = s.location === 'file';
    const deleted = s.deleted === true;
    return {
      ruleId,
      ruleIndex: ruleIndex.get(ruleId) ?? 0,
      level: sarifLevel(s.severity),
      message: {
        text:
          `${s.title} (${s.ruleId}) found in ${secretWhereText(s)}: ${s.redacted}` +
          (deleted ? ' (the file was deleted in a later layer, but it still ships inside the image)' : ''),
      },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: inFile ? fileUri(s.target, image.reference) : IMAGE_CONFIG_URI },
            region: { startLine: inFile ? (s.line ?? 1) : 1 },
          },
          message: {
            text: inFile
              ? image.reference
              : `${s.location === 'config' ? 'Image config field' : 'Image history step'} ${s.target} of ${image.reference}`,
          },
        },
      ],
      partialFingerprints: { [SARIF_FINGERPRINT_KEY]: secretFingerprint(s) },
      properties: {
        severity: s.severity,
        location: s.location,
        target: s.target,
        redacted: s.redacted,
        ...(s.layer ? { layerDigest: s.layer.digest } : {}),
        ...(deleted ? { deleted: true } : {}),
      },
    };
  });

  const misconfigPrints = misconfigFingerprints(misconfigs);
  const misconfigResults = misconfigs.map((m, i) => {
    const ruleId = misconfigRuleId.get(m.id) ?? m.id;
    const inConfig = isConfigTarget(m.target);
    return {
      ruleId,
      ruleIndex: ruleIndex.get(ruleId) ?? 0,
      level: sarifLevel(m.severity),
      message: { text: `${m.title}: ${m.message}` },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: inConfig ? IMAGE_CONFIG_URI : fileUri(m.target, image.reference) },
            region: { startLine: m.line ?? 1 },
          },
          message: { text: inConfig ? `Image config ${m.target} of ${image.reference}` : image.reference },
        },
      ],
      partialFingerprints: { [SARIF_FINGERPRINT_KEY]: misconfigPrints[i] ?? '' },
      properties: {
        severity: m.severity,
        target: m.target,
        ...(m.cis !== undefined ? { cis: m.cis } : {}),
        ...(m.pss !== undefined ? { pss: m.pss } : {}),
      },
    };
  });

  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: result.generator.name,
            version,
            ...(/^\d+\.\d+\.\d+(?:[-+].*)?$/.test(version) ? { semanticVersion: version } : {}),
            ...(options.informationUri !== undefined ? { informationUri: options.informationUri } : {}),
            rules,
          },
        },
        results: [...results, ...secretResults, ...misconfigResults],
        properties: {
          imageReference: image.reference,
          manifestDigest: image.manifestDigest,
          scannedAt: result.scannedAt,
        },
      },
    ],
  };
}

/**
 * One SARIF log for several scans of one image (`--all-platforms`): a run per scan, each with its
 * own `automationDetails.id` (`portcullis/CATEGORY/`), since GitHub code scanning refuses a file
 * whose runs share a tool and a category. A CI step uploads the one file it named.
 */
export function combineSarifLogs(logs: { category: string; sarif: string }[]): string {
  const runs = logs.flatMap(({ category, sarif }) =>
    (JSON.parse(sarif) as { runs: object[] }).runs.map((r) => ({
      ...r,
      automationDetails: { id: `portcullis/${category}/` },
    })),
  );
  return `${JSON.stringify({ $schema: SARIF_SCHEMA_URI, version: '2.1.0', runs }, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** An absolute URI: a scheme, then no whitespace. */
const absoluteUri = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/, 'must be an absolute URI')
  .refine(isValidUriChars, 'must contain only URI characters and valid %-escapes');

/** RFC 3986 characters and well-formed percent escapes only. */
function isValidUriChars(text: string): boolean {
  return /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/.test(text);
}

/** A URI reference (absolute, or relative to the repository root); a relative one may not start with a `scheme:`-like segment by mistake. */
const uriReference = z
  .string()
  .min(1)
  .refine(isValidUriChars, 'must contain only URI characters and valid %-escapes')
  .refine(
    (v) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(v) || !/^[^/?#]*:/.test(v),
    'a relative URI may not have ":" in its first segment',
  );

const message = z.strictObject({ text: z.string().min(1), markdown: z.string().optional() });

const multiformatMessage = z.strictObject({ text: z.string().min(1), markdown: z.string().optional() });

const level = z.enum(['none', 'note', 'warning', 'error']);

/** GitHub reads `security-severity` as a decimal between 0.0 and 10.0, written as a string. */
const securitySeverityValue = z
  .string()
  .regex(/^\d+(?:\.\d+)?$/, 'security-severity must be a decimal number written as a string')
  .refine((v) => Number(v) >= 0 && Number(v) <= 10, 'security-severity must be between 0.0 and 10.0');

const ruleProperties = z.looseObject({
  'security-severity': securitySeverityValue.optional(),
  tags: z
    .array(z.string().min(1))
    .max(20, 'GitHub accepts at most 20 tags per rule')
    .refine((t) => new Set(t).size === t.length, 'tags must be unique')
    .optional(),
  precision: z.enum(['very-high', 'high', 'medium', 'low']).optional(),
});

const reportingDescriptor = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1).optional(),
  shortDescription: multiformatMessage.optional(),
  fullDescription: multiformatMessage.optional(),
  helpUri: absoluteUri.optional(),
  help: multiformatMessage.optional(),
  defaultConfiguration: z
    .strictObject({ level: level.optional(), enabled: z.boolean().optional() })
    .optional(),
  properties: ruleProperties.optional(),
});

const region = z
  .strictObject({
    startLine: z.number().int().min(1),
    startColumn: z.number().int().min(1).optional(),
    endLine: z.number().int().min(1).optional(),
    endColumn: z.number().int().min(1).optional(),
  })
  .refine((r) => r.endLine === undefined || r.endLine >= r.startLine, 'endLine must not precede startLine');

const location = z.strictObject({
  physicalLocation: z.strictObject({
    artifactLocation: z.strictObject({
      uri: uriReference,
      uriBaseId: z.string().min(1).optional(),
    }),
    region: region.optional(),
  }),
  message: message.optional(),
});

const sarifResult = z.strictObject({
  ruleId: z.string().min(1),
  ruleIndex: z.number().int().min(0).optional(),
  level: level.optional(),
  kind: z.enum(['notApplicable', 'pass', 'fail', 'review', 'open', 'informational']).optional(),
  message,
  locations: z
    .array(location)
    .min(1, 'GitHub code scanning needs at least one location')
    .max(1000, 'GitHub accepts at most 1000 locations per result'),
  partialFingerprints: z.record(z.string().min(1), z.string().min(1)).optional(),
  properties: z.looseObject({}).optional(),
});

const run = z
  .strictObject({
    tool: z.strictObject({
      driver: z.strictObject({
        name: z.string().min(1),
        version: z.string().min(1).optional(),
        semanticVersion: z.string().min(1).optional(),
        informationUri: absoluteUri.optional(),
        rules: z
          .array(reportingDescriptor)
          .max(25000, 'GitHub accepts at most 25,000 rules per run')
          .optional(),
      }),
    }),
    results: z.array(sarifResult).max(25000, 'GitHub accepts at most 25,000 results per run'),
    automationDetails: z.strictObject({ id: z.string().min(1) }).optional(),
    properties: z.looseObject({}).optional(),
  })
  .superRefine((r, ctx) => {
    const rules = r.tool.driver.rules ?? [];
    const ids = new Map<string, number>();
    rules.forEach((rule, i) => {
      if (ids.has(rule.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tool', 'driver', 'rules', i, 'id'],
          message: `duplicate rule id ${rule.id}`,
        });
      } else ids.set(rule.id, i);
    });
    r.results.forEach((res, i) => {
      const index = ids.get(res.ruleId);
      if (index === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['results', i, 'ruleId'],
          message: `ruleId ${res.ruleId} is not among tool.driver.rules`,
        });
      } else if (res.ruleIndex !== undefined && res.ruleIndex !== index) {
        ctx.addIssue({
          code: 'custom',
          path: ['results', i, 'ruleIndex'],
          message: `ruleIndex ${res.ruleIndex} does not point at rule ${res.ruleId} (index ${index})`,
        });
      }
    });
  });

/**
 * The SARIF 2.1.0 subset Portcullis writes, with GitHub code scanning's upload rules: version
 * `2.1.0`, a known `$schema`, 1–20 runs, every result's `ruleId` declared in `tool.driver.rules`,
 * at least one location with an `artifactLocation.uri`, valid levels and `security-severity`.
 */
export const sarifLogSchema = z.strictObject({
  $schema: z
    .string()
    .refine(
      (v) => SARIF_SCHEMA_URIS.includes(v),
      'must name a SARIF 2.1.0 JSON schema (see SARIF_SCHEMA_URIS)',
    ),
  version: z.literal('2.1.0'),
  runs: z
    .array(run)
    .min(1, 'a log needs at least one run')
    .max(20, 'GitHub accepts at most 20 runs per file'),
});

export interface SarifValidationIssue {
  /** Dotted path to the offending value (`runs.0.results.3.ruleId`); empty for the document. */
  path: string;
  message: string;
}

/** Checks SARIF JSON text against `sarifLogSchema`: null when valid, else the problems found. */
export function validateSarif(json: string): null | SarifValidationIssue[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    return [{ path: '', message: `not JSON: ${(err as Error).message}` }];
  }
  const parsed = sarifLogSchema.safeParse(data);
  if (parsed.success) return null;
  return parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}
