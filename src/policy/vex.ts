/**
 * OpenVEX (https://openvex.dev, spec v0.2.0) documents: statements by a supplier or user that a
 * vulnerability does or does not affect a product.
 *
 * What is read: the document's `@context` (must be an openvex.dev namespace), `@id`, `author`,
 * `timestamp`, and each statement's `vulnerability` (an object with `name` and/or `@id` and
 * optional `aliases`, or a plain string as in pre-0.2 documents), `products` (each identified by
 * `@id` or `identifiers.purl`, with optional `subcomponents`), `status`, `justification`,
 * `impact_statement`, `action_statement` and `timestamp` / `last_updated` (inheriting the
 * document's `timestamp` when absent, as the spec's inheritance rules say).
 *
 * Which statement applies to a finding (see `vexDecision`):
 * - the vulnerability's name, `@id` (or the last path segment of an `@id` URL) or an alias equals
 *   the finding's id or one of its aliases;
 * - and a product matches: a product purl matching the finding's package purl (qualifiers only
 *   compared when the statement gives some; version only when it gives one), or a subcomponent
 *   doing so under a product that is not some other image, or a product that is the scanned image
 *   (its reference, any `...@<manifest digest>` reference, or `pkg:oci/...@<manifest digest>`),
 *   which covers all its packages unless it lists subcomponents, then only those.
 * Of the statements that apply, the latest (by timestamp, then by position) decides; only
 * `not_affected` and `fixed` suppress.
 */

import { PackageURL } from 'packageurl-js';
import { z } from 'zod';

import { parseRegistryReference, type RegistryReference } from '../oci/registry-reference.js';
import type { Finding } from '../sbom/finding.js';
import { PolicyError, readPolicyFile } from './ignore.js';

export const VEX_STATUSES = ['not_affected', 'affected', 'fixed', 'under_investigation'] as const;
export type VexStatus = (typeof VEX_STATUSES)[number];

export const VEX_JUSTIFICATIONS = [
  'component_not_present',
  'vulnerable_code_not_present',
  'vulnerable_code_not_in_execute_path',
  'vulnerable_code_cannot_be_controlled_by_adversary',
  'inline_mitigations_already_exist',
] as const;
export type VexJustification = (typeof VEX_JUSTIFICATIONS)[number];

export interface VexProduct {
  /** The product's `@id` or, lacking one, its `identifiers.purl`. */
  id: string;
  /** Subcomponent identifiers (`@id` or `identifiers.purl`). */
  subcomponents: string[];
}

export interface VexStatement {
  /** The vulnerability's main name, then every other name it is known by. */
  vulnerability: { name: string; aliases: string[] };
  products: VexProduct[];
  status: VexStatus;
  justification?: VexJustification;
  impactStatement?: string;
  actionStatement?: string;
  /** ISO 8601 time the statement was known true (its own, or the document's). */
  timestamp: string;
  /** The file (or label) the document came from. */
  source: string;
  /** The document's `@id`. */
  documentId: string;
  /** 1-based position of the statement in its document, for messages. */
  index: number;
}

export interface ImageIdentity {
  reference: string;
  manifestDigest: string;
}

const text = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .trim()
    .min(1, `${what} must not be empty`);
const timestamp = (what: string) =>
  z
    .string({ error: `${what} must be an ISO 8601 date-time string` })
    .refine((s) => !Number.isNaN(Date.parse(s)), {
      message: `${what} must be an ISO 8601 date-time`,
    });

// Objects are loose: OpenVEX allows fields this reader does not use (hashes, supplier, tooling...).
const componentSchema = z
  .object({
    '@id': text('@id').optional(),
    identifiers: z.record(z.string(), z.string()).optional(),
  })
  .refine((c) => c['@id'] !== undefined || c.identifiers?.purl !== undefined, {
    message: 'a component needs an "@id" or "identifiers.purl"',
  });

const productSchema = z
  .object({
    '@id': text('@id').optional(),
    identifiers: z.record(z.string(), z.string()).optional(),
    subcomponents: z.array(componentSchema).optional(),
  })
  .refine((c) => c['@id'] !== undefined || c.identifiers?.purl !== undefined, {
    message: 'a product needs an "@id" or "identifiers.purl"',
  });

const vulnerabilitySchema = z.union(
  [
    text('vulnerability'),
    z
      .object({
        '@id': text('vulnerability.@id').optional(),
        name: text('vulnerability.name').optional(),
        aliases: z.array(text('vulnerability alias')).optional(),
      })
      .refine((v) => v.name !== undefined || v['@id'] !== undefined, {
        message: 'vulnerability needs a "name" (or "@id")',
      }),
  ],
  { error: 'vulnerability must be a name string or an object with "name"' },
);

const statementSchema = z
  .object({
    vulnerability: vulnerabilitySchema,
    products: z
      .array(productSchema, { error: 'products must be a list' })
      .min(1, 'products must name at least one product'),
    status: z.enum(VEX_STATUSES, { error: `status must be one of ${VEX_STATUSES.join(', ')}` }),
    justification: z
      .enum(VEX_JUSTIFICATIONS, { error: `justification must be one of ${VEX_JUSTIFICATIONS.join(', ')}` })
      .optional(),
    impact_statement: z.string().optional(),
    action_statement: z.string().optional(),
    timestamp: timestamp('statement timestamp').optional(),
    last_updated: timestamp('statement last_updated').optional(),
  })
  .refine(
    (s) => s.status !== 'not_affected' || s.justification !== undefined || s.impact_statement !== undefined,
    {
      // The spec requires one of them; without either, a "not affected" claim carries no reason to show.
      message: 'a not_affected statement needs a "justification" or an "impact_statement"',
    },
  );

const documentSchema = z.object({
  '@context': z
    .string({ error: '"@context" is required' })
    .refine(
      (c) => c.startsWith('https://openvex.dev/ns'),
      '"@context" must be an https://openvex.dev/ns URL',
    ),
  '@id': text('"@id"'),
  author: text('"author"'),
  timestamp: timestamp('"timestamp"'),
  statements: z.array(z.unknown(), { error: '"statements" must be a list' }),
});

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'invalid_type' && issue.input === undefined) return `${path} is required`;
      return path !== '' && !issue.message.includes(path) ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

function componentId(c: { '@id'?: string; identifiers?: Record<string, string> }): string {
  return (c['@id'] ?? c.identifiers?.purl) as string;
}

function checkPurl(id: string, where: string, fail: (m: string) => never): void {
  if (!id.startsWith('pkg:')) return;
  try {
    PackageURL.fromString(id);
  } catch (err) {
    fail(`${where}: "${id}" is not a valid purl (${(err as Error).message})`);
  }
}

/** Parses one OpenVEX JSON document; `source` names it in errors and suppression reports. */
export function parseVex(json: string, source: string): VexStatement[] {
  const fail = (message: string): never => {
    throw new PolicyError('POLICY_VEX_INVALID', `${source}: ${message}`, { subject: source });
  };
  let raw: unknown;
  try {
    raw = JSON.parse(json.replace(/^\uFEFF/, ''));
  } catch (err) {
    return fail(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return fail('an OpenVEX document must be a JSON object');
  const doc = documentSchema.safeParse(raw);
  if (!doc.success) return fail(`not an OpenVEX document: ${describeIssues(doc.error)}`);

  return doc.data.statements.map((entry, i): VexStatement => {
    const where = `statement ${i + 1}`;
    const parsed = statementSchema.safeParse(entry);
    if (!parsed.success) return fail(`${where}: ${describeIssues(parsed.error)}`);
    const s = parsed.data;

    const v = s.vulnerability;
    const vulnerability =
      typeof v === 'string'
        ? { name: v, aliases: [] }
        : {
            name: (v.name ?? v['@id']) as string,
            aliases: [
              ...(v.name !== undefined && v['@id'] !== undefined ? [v['@id']] : []),
              ...(v.aliases ?? []),
            ],
          };

    const products = s.products.map((p): VexProduct => {
      const id = componentId(p);
      checkPurl(id, where, fail);
      const subcomponents = (p.subcomponents ?? []).map((c) => {
        const cid = componentId(c);
        checkPurl(cid, where, fail);
        return cid;
      });
      return { id, subcomponents };
    });

    return {
      vulnerability,
      products,
      status: s.status,
      ...(s.justification !== undefined ? { justification: s.justification } : {}),
      ...(s.impact_statement !== undefined ? { impactStatement: s.impact_statement } : {}),
      ...(s.action_statement !== undefined ? { actionStatement: s.action_statement } : {}),
      timestamp: s.last_updated ?? s.timestamp ?? doc.data.timestamp,
      source,
      documentId: doc.data['@id'],
      index: i + 1,
    };
  });
}

/** Reads and parses an OpenVEX file; an unreadable or malformed file is a PolicyError naming it. */
export function loadVex(path: string): VexStatement[] {
  return parseVex(readPolicyFile(path, 'POLICY_VEX_UNREADABLE', 'VEX document'), path);
}

// ---- matching ---------------------------------------------------------------------------------

function parsePurl(s: string): PackageURL | undefined {
  try {
    return PackageURL.fromString(s);
  } catch {
    return undefined;
  }
}

/**
 * Does the statement's purl name this package? Type, namespace and name must agree (after
 * packageurl-js's per-type normalisation); version, qualifiers and subpath only when the statement
 * gives them, so `pkg:deb/debian/openssl` covers every build of openssl.
 */
export function purlMatches(statementPurl: string, packagePurl: string): boolean {
  const want = parsePurl(statementPurl);
  const have = parsePurl(packagePurl);
  if (!want || !have) return false;
  if (want.type !== have.type || (want.namespace ?? '') !== (have.namespace ?? '') || want.name !== have.name)
    return false;
  if (want.version !== undefined && want.version !== have.version) return false;
  if (want.subpath !== undefined && want.subpath !== have.subpath) return false;
  for (const [key, value] of Object.entries(want.qualifiers ?? {})) {
    if (have.qualifiers?.[key] !== value) return false;
  }
  return true;
}

function parseRef(s: string): RegistryReference | undefined {
  try {
    return parseRegistryReference(s);
  } catch {
    return undefined;
  }
}

type ProductKind = 'this-image' | 'other-image' | 'other';

/** Classifies a product id against the scanned image. */
function classifyProduct(id: string, image: ImageIdentity | undefined): ProductKind {
  if (id.startsWith('pkg:')) {
    const p = parsePurl(id);
    if (p?.type !== 'oci') return 'other';
    return image !== undefined && p.version === image.manifestDigest ? 'this-image' : 'other-image';
  }
  if (image !== undefined && id === image.reference) return 'this-image';
  const ref = parseRef(id);
  // Non-purl ids that are not image references (URLs, free-form IRIs) are other products.
  if (ref === undefined) return 'other';
  if (image === undefined) return 'other-image';
  if (ref.digest !== undefined) return ref.digest === image.manifestDigest ? 'this-image' : 'other-image';
  const mine = parseRef(image.reference);
  // A tag reference names this image when it is the same repository and tag we scanned.
  return mine !== undefined &&
    mine.registry === ref.registry &&
    mine.repository === ref.repository &&
    mine.tag === ref.tag
    ? 'this-image'
    : 'other-image';
}

function productApplies(product: VexProduct, finding: Finding, image: ImageIdentity | undefined): boolean {
  const purl = finding.package.purl;
  const kind = classifyProduct(product.id, image);
  if (kind === 'other-image') return false;
  if (kind === 'this-image') {
    return product.subcomponents.length === 0 || product.subcomponents.some((c) => purlMatches(c, purl));
  }
  return purlMatches(product.id, purl) || product.subcomponents.some((c) => purlMatches(c, purl));
}

function vulnNames(statement: VexStatement): string[] {
  const names = [statement.vulnerability.name, ...statement.vulnerability.aliases];
  // `@id` is often an advisory URL such as https://nvd.nist.gov/vuln/detail/CVE-2019-17571.
  for (const n of [...names]) {
    if (/^https?:\/\//i.test(n)) {
      const last = n
        .replace(/[/#?]+$/, '')
        .split(/[/#=]/)
        .pop();
      if (last) names.push(last);
    }
  }
  return names.map((n) => n.toUpperCase());
}

/** Whether the statement is about this finding's vulnerability and one of its products covers the package. */
export function vexStatementApplies(
  statement: VexStatement,
  finding: Finding,
  image?: ImageIdentity,
): boolean {
  const ids = new Set([finding.id, ...finding.aliases].map((s) => s.toUpperCase()));
  if (!vulnNames(statement).some((n) => ids.has(n))) return false;
  return statement.products.some((p) => productApplies(p, finding, image));
}

/**
 * The statement that decides this finding: the latest applicable one by timestamp; on equal
 * timestamps the one given later wins, so a later file can correct an earlier one.
 */
export function vexDecision(
  finding: Finding,
  statements: readonly VexStatement[],
  image?: ImageIdentity,
): VexStatement | undefined {
  let best: VexStatement | undefined;
  let bestTime = -Infinity;
  for (const s of statements) {
    if (!vexStatementApplies(s, finding, image)) continue;
    const t = Date.parse(s.timestamp);
    if (best === undefined || t >= bestTime) {
      best = s;
      bestTime = t;
    }
  }
  return best;
}

/** Whether a statement's status hides the finding: the product is not affected, or has been fixed. */
export function vexSuppresses(statement: VexStatement): boolean {
  return statement.status === 'not_affected' || statement.status === 'fixed';
}

/** Human reason for a suppressing statement, e.g. `VEX not_affected (vulnerable_code_not_present): ...`. */
export function describeVexStatement(statement: VexStatement): string {
  const detail = statement.status === 'affected' ? statement.actionStatement : statement.impactStatement;
  return [
    `VEX ${statement.status}`,
    statement.justification !== undefined ? ` (${statement.justification})` : '',
    detail !== undefined && detail.trim() !== '' ? `: ${detail.trim()}` : '',
  ].join('');
}
