/**
 * SPDX 2.3 JSON output and its validation.
 *
 * Validation: no npm package and no Debian (bookworm) package ships the official SPDX 2.3 JSON
 * schema file, and a copy fetched from elsewhere is not kept in this repository. `validateSpdx`
 * therefore checks documents against `spdxDocumentSchema` below: a zod description, written for
 * this project, of the SPDX 2.3 JSON document fields Portcullis emits. It is strict (unknown
 * fields are errors, as in the official schema) and adds the checks the JSON schema cannot make:
 * unique SPDXIDs, relationships between elements that exist, license expressions that parse,
 * and LicenseRefs that are defined in the document.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

import * as CdxSpdx from '@cyclonedx/cyclonedx-library/SPDX';
import { z } from 'zod';

import { comparePackages } from './json.js';
import type { Package } from './model.js';
import { imagePurl, packageDisplayName } from './purl.js';
import type { ScanResult } from './result.js';
import { byCodeUnits } from '../text-order.js';

// ---------------------------------------------------------------------------------------------
// License expressions

/** What spdx-expression-parse returns: a single license, or two joined by AND / OR. */
type LicenseNode =
  | { license: string; plus?: boolean; exception?: string }
  | { left: LicenseNode; conjunction: 'and' | 'or'; right: LicenseNode };

// spdx-expression-parse is CommonJS without bundled types; load it through require and give it
// the shape above.
const parseSpdxExpression = createRequire(import.meta.url)('spdx-expression-parse') as (
  source: string,
) => LicenseNode;

function render(node: LicenseNode, parent?: 'and' | 'or'): string {
  if ('license' in node) {
    let out = node.license + (node.plus ? '+' : '');
    if (node.exception !== undefined) out += ` WITH ${node.exception}`;
    return out;
  }
  const text = `${render(node.left, node.conjunction)} ${node.conjunction.toUpperCase()} ${render(node.right, node.conjunction)}`;
  // AND binds tighter than OR; an OR inside an AND needs parentheses.
  return parent === 'and' && node.conjunction === 'or' ? `(${text})` : text;
}

function tryParse(text: string): LicenseNode | undefined {
  try {
    return parseSpdxExpression(text);
  } catch {
    return undefined;
  }
}

/**
 * The canonical SPDX form of one declared license string (`mit` -> `MIT`,
 * `MIT or Apache-2.0` -> `MIT OR Apache-2.0`), or undefined when it is not a valid SPDX license
 * expression (a free-text name such as `GPL-2+` or `BSD-like`).
 */
export function toSpdxExpression(license: string): string | undefined {
  const text = license.trim();
  if (text === '') return undefined;
  let node = tryParse(text);
  if (!node) {
    // Identifiers are case-insensitive in SPDX expressions; retry with the list's spelling.
    const fixed = text.replace(/[A-Za-z0-9.+-]+/g, (word) => {
      if (/^(and|or|with)$/i.test(word)) return word.toUpperCase();
      const plus = word.endsWith('+') ? '+' : '';
      const id = CdxSpdx.fixupSpdxId(plus ? word.slice(0, -1) : word);
      return id === undefined ? word : id + plus;
    });
    if (fixed !== text) node = tryParse(fixed);
  }
  return node ? render(node) : undefined;
}

/** True for an expression made of more than one license, or using `+` or WITH. */
export function isCompoundExpression(expression: string): boolean {
  const node = tryParse(expression);
  return node !== undefined && !('license' in node && !node.plus && node.exception === undefined);
}

/** A LicenseRef id for a free-text license name: only letters, digits, `.` and `-`. */
export function licenseRefFor(name: string): string {
  const cleaned = name
    .trim()
    .replace(/[^A-Za-z0-9.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `LicenseRef-${cleaned === '' ? 'unnamed' : cleaned.slice(0, 64)}-${hash}`;
}

// ---------------------------------------------------------------------------------------------
// Identifiers

/** A UUID-shaped value derived from the parts (the same scan always gets the same one). */
export function stableUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  // Shape of a version 5 (name-based) UUID.
  const variant = ((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

const SPDX_ID_RE = /^SPDXRef-[A-Za-z0-9.-]+$/;

function idPart(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '');
  return cleaned === '' ? 'x' : cleaned.slice(0, 80);
}

/** SPDX 2.3 timestamps: UTC, whole seconds, `Z` suffix. */
export function spdxTimestamp(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new RangeError(`not a valid timestamp: ${JSON.stringify(iso)}`);
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------
// Document

export interface SpdxOptions {
  /**
   * URI prefix for documentNamespace; a unique name is appended. Defaults to the
   * `https://spdx.org/spdxdocs/` prefix the SPDX specification suggests for tools without a
   * namespace of their own.
   */
  namespaceBase?: string;
}

const DEFAULT_NAMESPACE_BASE = 'https://spdx.org/spdxdocs/portcullis/';

interface SpdxExternalRef {
  referenceCategory: 'PACKAGE-MANAGER';
  referenceType: 'purl';
  referenceLocator: string;
}

interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: 'NOASSERTION';
  filesAnalyzed: false;
  checksums?: { algorithm: 'SHA256'; checksumValue: string }[];
  sourceInfo?: string;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: 'NOASSERTION';
  comment?: string;
  externalRefs?: SpdxExternalRef[];
  primaryPackagePurpose?: 'CONTAINER' | 'LIBRARY';
}

interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: 'DESCRIBES' | 'CONTAINS';
  relatedSpdxElement: string;
}

export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[]; comment?: string };
  packages: SpdxPackage[];
  hasExtractedLicensingInfos?: { licenseId: string; name: string; extractedText: string; comment: string }[];
  relationships: SpdxRelationship[];
}

function purlRef(purl: string): SpdxExternalRef[] {
  return [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl }];
}

function sha256Checksum(digest: string): SpdxPackage['checksums'] {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  return m?.[1] ? [{ algorithm: 'SHA256', checksumValue: m[1] }] : undefined;
}

function packageComment(pkg: Package): string {
  const parts = [`layer ${pkg.layer.index} (${pkg.layer.digest})`, `found by ${pkg.foundBy}`];
  if (pkg.paths.length > 0) parts.push(`paths: ${pkg.paths.join(', ')}`);
  if (pkg.ownedBy) parts.push(`installed by ${pkg.ownedBy.type} package ${pkg.ownedBy.name}`);
  if (pkg.dev) parts.push('development dependency');
  return parts.join('; ');
}

function sourceInfo(pkg: Package): string | undefined {
  if (pkg.sourceName === undefined) return undefined;
  if (pkg.sourceName === pkg.name && (pkg.sourceVersion === undefined || pkg.sourceVersion === pkg.version)) {
    return undefined;
  }
  const version = pkg.sourceVersion ?? pkg.version;
  return `built from source package ${pkg.sourceName} ${version}`;
}

/** Builds the SPDX 2.3 JSON document (as a plain object) describing the scanned image. */
export function toSpdx(result: ScanResult, options: SpdxOptions = {}): SpdxDocument {
  const { image } = result;
  const created = spdxTimestamp(result.scannedAt);
  const uuid = stableUuid(
    'spdx',
    image.reference,
    image.manifestDigest,
    result.scannedAt,
    result.generator.version,
  );
  const base = options.namespaceBase ?? DEFAULT_NAMESPACE_BASE;
  const documentNamespace = `${base}${base.endsWith('/') ? '' : '/'}${idPart(image.reference)}-${uuid}`;

  const usedIds = new Set<string>(['SPDXRef-DOCUMENT']);
  const uniqueId = (wanted: string): string => {
    let id = wanted;
    for (let n = 2; usedIds.has(id); n++) id = `${wanted}-${n}`;
    usedIds.add(id);
    return id;
  };

  const extracted = new Map<
    string,
    { licenseId: string; name: string; extractedText: string; comment: string }
  >();
  const declaredLicense = (licenses: string[]): string => {
    const terms: string[] = [];
    for (const license of new Set(licenses.map((l) => l.trim()).filter((l) => l !== ''))) {
      let expression = toSpdxExpression(license);
      if (expression === undefined) {
        expression = licenseRefFor(license);
        extracted.set(expression, {
          licenseId: expression,
          name: license,
          extractedText: license,
          comment: 'License name as declared by the package; it is not an SPDX license expression.',
        });
      }
      terms.push(expression);
    }
    if (terms.length === 0) return 'NOASSERTION';
    if (terms.length === 1) return terms[0] as string;
    // Several declared licenses all apply: join with AND, keeping each term's own grouping.
    return terms.map((t) => (/ OR /.test(t) ? `(${t})` : t)).join(' AND ');
  };

  const imageId = uniqueId('SPDXRef-Image');
  const imagePackage: SpdxPackage = {
    SPDXID: imageId,
    name: image.reference,
    // A root filesystem folder (dir:) has no digest: no version and no purl, rather than empty ones.
    ...(image.manifestDigest ? { versionInfo: image.manifestDigest } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    ...(image.manifestDigest ? { externalRefs: purlRef(imagePurl(image)) } : {}),
    primaryPackagePurpose: 'CONTAINER',
  };
  const checksums = sha256Checksum(image.manifestDigest);
  if (checksums) imagePackage.checksums = checksums;

  const packages: SpdxPackage[] = [imagePackage];
  const relationships: SpdxRelationship[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
  ];

  if (result.os) {
    const osId = uniqueId('SPDXRef-OperatingSystem');
    const osPackage: SpdxPackage = {
      SPDXID: osId,
      name: result.os.family,
      versionInfo: result.os.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      // No primaryPackagePurpose: SPDX 2.3's text spells the value OPERATING-SYSTEM, but
      // published versions of the 2.3 JSON schema accept only OPERATING_SYSTEM, others only
      // OPERATING-SYSTEM. Leaving the optional field out keeps the document valid under all.
      comment: `Operating system of the image${result.os.name === undefined ? '' : `: ${result.os.name}`}`,
    };
    packages.push(osPackage);
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: osId });
  }

  // In the JSON format's order, so that ids made unique by a suffix get the same suffix everywhere.
  for (const pkg of [...result.packages].sort(comparePackages)) {
    const id = uniqueId(
      `SPDXRef-Package-${pkg.type}-${idPart(pkg.name)}-${stableUuid(pkg.purl).slice(0, 8)}`,
    );
    const spdxPackage: SpdxPackage = {
      SPDXID: id,
      name: packageDisplayName(pkg),
      versionInfo: pkg.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: declaredLicense(pkg.licenses),
      copyrightText: 'NOASSERTION',
      comment: packageComment(pkg),
      externalRefs: purlRef(pkg.purl),
      primaryPackagePurpose: 'LIBRARY',
    };
    const source = sourceInfo(pkg);
    if (source !== undefined) spdxPackage.sourceInfo = source;
    packages.push(spdxPackage);
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }

  const doc: SpdxDocument = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: image.reference,
    documentNamespace,
    creationInfo: { created, creators: [`Tool: portcullis-${result.generator.version}`] },
    packages,
    relationships,
  };
  if (result.warnings.length > 0) {
    doc.creationInfo.comment = `Scan warnings: ${result.warnings.join(' | ')}`;
  }
  if (extracted.size > 0) {
    doc.hasExtractedLicensingInfos = [...extracted.values()].sort((a, b) =>
      byCodeUnits(a.licenseId, b.licenseId),
    );
  }
  return doc;
}

// ---------------------------------------------------------------------------------------------
// Validation

const SPDX_DATE_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)Z$/;

/** A license field: NOASSERTION, NONE, or an expression spdx-expression-parse accepts as written. */
const licenseField = z
  .string()
  .refine((v) => v === 'NOASSERTION' || v === 'NONE' || tryParse(v) !== undefined, {
    message: 'not a valid SPDX license expression, NOASSERTION or NONE',
  });

const spdxId = z
  .string()
  .regex(SPDX_ID_RE, 'SPDXID may only hold letters, digits, "." and "-" after "SPDXRef-"');

const externalRefSchema = z.strictObject({
  // The hyphenated spellings: the first 2.3 schema accepts only these (later ones also `_`).
  referenceCategory: z.enum(['SECURITY', 'PACKAGE-MANAGER', 'PERSISTENT-ID', 'OTHER']),
  referenceType: z.string().min(1),
  referenceLocator: z.string().regex(/^\S+$/, 'referenceLocator may not contain spaces'),
  comment: z.string().optional(),
});

const packageSchema = z.strictObject({
  SPDXID: spdxId,
  name: z.string().min(1),
  versionInfo: z.string().optional(),
  downloadLocation: z.string().min(1),
  filesAnalyzed: z.boolean().optional(),
  checksums: z
    .array(
      z.strictObject({
        algorithm: z.enum(['SHA1', 'SHA224', 'SHA256', 'SHA384', 'SHA512', 'MD5']),
        checksumValue: z.string().regex(/^[0-9a-fA-F]+$/),
      }),
    )
    .optional(),
  sourceInfo: z.string().optional(),
  licenseConcluded: licenseField.optional(),
  licenseDeclared: licenseField.optional(),
  copyrightText: z.string().optional(),
  comment: z.string().optional(),
  externalRefs: z.array(externalRefSchema).optional(),
  // OPERATING-SYSTEM is left out on purpose: the published 2.3 schemas disagree on its spelling.
  primaryPackagePurpose: z
    .enum([
      'APPLICATION',
      'FRAMEWORK',
      'LIBRARY',
      'CONTAINER',
      'DEVICE',
      'FIRMWARE',
      'SOURCE',
      'ARCHIVE',
      'FILE',
      'INSTALL',
      'OTHER',
    ])
    .optional(),
});

const relationshipSchema = z.strictObject({
  spdxElementId: z.string().min(1),
  relationshipType: z.enum([
    'DESCRIBES',
    'DESCRIBED_BY',
    'CONTAINS',
    'CONTAINED_BY',
    'DEPENDS_ON',
    'DEPENDENCY_OF',
    'DEV_DEPENDENCY_OF',
    'OTHER',
  ]),
  relatedSpdxElement: z.string().min(1),
  comment: z.string().optional(),
});

/**
 * The SPDX 2.3 JSON document as Portcullis writes it: the required document fields, packages
 * without files, extracted licensing infos and relationships. Fields SPDX allows but Portcullis
 * never writes (files, snippets, annotations, ...) are rejected rather than silently accepted.
 */
export const spdxDocumentSchema = z
  .strictObject({
    $schema: z.string().optional(),
    spdxVersion: z.literal('SPDX-2.3'),
    dataLicense: z.literal('CC0-1.0'),
    SPDXID: z.literal('SPDXRef-DOCUMENT'),
    name: z.string().min(1),
    documentNamespace: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9+.-]*:[^#\s]+$/, 'documentNamespace must be an absolute URI without "#"'),
    creationInfo: z.strictObject({
      created: z.string().regex(SPDX_DATE_RE, 'created must be YYYY-MM-DDThh:mm:ssZ'),
      creators: z
        .array(
          z
            .string()
            .regex(
              /^(Tool|Organization|Person): \S/,
              'creator must start with Tool:, Organization: or Person:',
            ),
        )
        .min(1),
      licenseListVersion: z.string().optional(),
      comment: z.string().optional(),
    }),
    comment: z.string().optional(),
    packages: z.array(packageSchema),
    hasExtractedLicensingInfos: z
      .array(
        z.strictObject({
          licenseId: z.string().regex(/^LicenseRef-[A-Za-z0-9.-]+$/),
          extractedText: z.string().min(1),
          name: z.string().optional(),
          comment: z.string().optional(),
          seeAlsos: z.array(z.string()).optional(),
        }),
      )
      .optional(),
    relationships: z.array(relationshipSchema),
  })
  .superRefine((doc, ctx) => {
    const ids = new Set<string>([doc.SPDXID]);
    doc.packages.forEach((pkg, i) => {
      if (ids.has(pkg.SPDXID)) {
        ctx.addIssue({
          code: 'custom',
          path: ['packages', i, 'SPDXID'],
          message: `duplicate SPDXID ${pkg.SPDXID}`,
        });
      }
      ids.add(pkg.SPDXID);
    });
    doc.relationships.forEach((rel, i) => {
      for (const key of ['spdxElementId', 'relatedSpdxElement'] as const) {
        const ref = rel[key];
        if (!ids.has(ref) && ref !== 'NONE' && ref !== 'NOASSERTION' && !ref.startsWith('DocumentRef-')) {
          ctx.addIssue({
            code: 'custom',
            path: ['relationships', i, key],
            message: `no element ${ref} in the document`,
          });
        }
      }
    });
    if (
      !doc.relationships.some((r) => r.spdxElementId === doc.SPDXID && r.relationshipType === 'DESCRIBES')
    ) {
      ctx.addIssue({ code: 'custom', path: ['relationships'], message: 'the document DESCRIBES nothing' });
    }
    const defined = new Set((doc.hasExtractedLicensingInfos ?? []).map((l) => l.licenseId));
    doc.packages.forEach((pkg, i) => {
      for (const key of ['licenseConcluded', 'licenseDeclared'] as const) {
        for (const ref of pkg[key]?.match(/(?<![\w:-])LicenseRef-[A-Za-z0-9.-]+/g) ?? []) {
          if (!defined.has(ref)) {
            ctx.addIssue({
              code: 'custom',
              path: ['packages', i, key],
              message: `${ref} is not defined in hasExtractedLicensingInfos`,
            });
          }
        }
      }
    });
  });

export interface SpdxValidationIssue {
  path: string;
  message: string;
}

/**
 * Checks an SPDX 2.3 JSON document (as text) against `spdxDocumentSchema`.
 * Returns null when it is valid, else the list of problems found.
 */
export function validateSpdx(json: string): null | SpdxValidationIssue[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    return [{ path: '', message: `not JSON: ${(err as Error).message}` }];
  }
  const parsed = spdxDocumentSchema.safeParse(data);
  if (parsed.success) return null;
  return parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}
