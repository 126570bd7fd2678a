import { z } from 'zod';

/**
 * The OSV record shape (https://ossf.github.io/osv-schema/) as far as Portcullis relies on it.
 *
 * Tolerant where the matcher does not look (unknown keys are dropped, free-form `*_specific`
 * objects pass through as `unknown`), strict where a wrong value would change a match: range
 * types must be known, and every event must carry exactly one of introduced/fixed/last_affected/
 * limit as a string. A record that fails is skipped by the importer, never half-stored.
 */

const nonEmpty = z.string().min(1);

export const osvSeveritySchema = z.object({
  // CVSS_V2, CVSS_V3, CVSS_V4, Ubuntu, and whatever the spec adds next: kept as a plain string.
  type: nonEmpty,
  score: nonEmpty,
});

export const osvEventSchema = z
  .object({
    introduced: z.string().optional(),
    fixed: z.string().optional(),
    last_affected: z.string().optional(),
    limit: z.string().optional(),
  })
  .refine(
    (e) => [e.introduced, e.fixed, e.last_affected, e.limit].filter((v) => v !== undefined).length === 1,
    { message: 'an event must have exactly one of introduced, fixed, last_affected, limit' },
  );

export const OSV_RANGE_TYPES = ['SEMVER', 'ECOSYSTEM', 'GIT'] as const;

export const osvRangeSchema = z.object({
  type: z.enum(OSV_RANGE_TYPES),
  repo: z.string().optional(),
  events: z.array(osvEventSchema).min(1),
  database_specific: z.unknown().optional(),
});

export const osvPackageSchema = z.object({
  ecosystem: nonEmpty,
  name: nonEmpty,
  purl: z.string().optional(),
});

export const osvAffectedSchema = z.object({
  package: osvPackageSchema.optional(),
  severity: z.array(osvSeveritySchema).optional(),
  ranges: z.array(osvRangeSchema).optional(),
  versions: z.array(z.string()).optional(),
  ecosystem_specific: z.unknown().optional(),
  database_specific: z.unknown().optional(),
});

export const osvReferenceSchema = z.object({
  type: z.string().optional(),
  url: nonEmpty,
});

export const osvRecordSchema = z.object({
  schema_version: z.string().optional(),
  id: nonEmpty,
  // Timestamps are kept as strings: real data carries values such as Go's
  // "0001-01-01T00:00:00Z", and ordering is done on the parsed time, not here.
  modified: nonEmpty,
  published: z.string().optional(),
  withdrawn: z.string().optional(),
  aliases: z.array(z.string()).optional(),
  upstream: z.array(z.string()).optional(),
  related: z.array(z.string()).optional(),
  summary: z.string().optional(),
  details: z.string().optional(),
  severity: z.array(osvSeveritySchema).optional(),
  affected: z.array(osvAffectedSchema).optional(),
  references: z.array(osvReferenceSchema).optional(),
  database_specific: z.unknown().optional(),
});

export type OsvRecord = z.infer<typeof osvRecordSchema>;
export type OsvAffected = z.infer<typeof osvAffectedSchema>;
export type OsvRange = z.infer<typeof osvRangeSchema>;
export type OsvEvent = z.infer<typeof osvEventSchema>;

export type ParseResult = { ok: true; record: OsvRecord } | { ok: false; reason: string };

/** Validates one decoded JSON value; the reason names the record (when it has an id) and the first problem. */
export function parseOsvRecord(value: unknown): ParseResult {
  const result = osvRecordSchema.safeParse(value);
  if (result.success) return { ok: true, record: result.data };
  const id =
    typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string'
      ? (value as { id: string }).id
      : '(no id)';
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'record';
  return { ok: false, reason: `${id}: ${where}: ${issue?.message ?? 'invalid'}` };
}
