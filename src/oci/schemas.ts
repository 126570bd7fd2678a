import { z } from 'zod';
import { OciError } from '../errors.js';
import { jsonPastBounds, MAX_DOCUMENT_DEPTH } from '../json-structure.js';

/** Schemas for the OCI and Docker documents we read. Validated at the edge; trusted inside. */

const digestString = z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, 'not a valid digest');

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
});
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = z.object({
  mediaType: z.string(),
  digest: digestString,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: PlatformSchema.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export const IndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ImageIndex = z.infer<typeof IndexSchema>;

const HistorySchema = z.object({
  created: z.string().optional(),
  created_by: z.string().optional(),
  author: z.string().optional(),
  comment: z.string().optional(),
  empty_layer: z.boolean().optional(),
});

export const ImageConfigSchema = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  variant: z.string().optional(),
  created: z.string().optional(),
  author: z.string().optional(),
  config: z
    .object({
      User: z.string().optional(),
      ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      Volumes: z.record(z.string(), z.unknown()).nullish(),
      WorkingDir: z.string().optional(),
      Labels: z.record(z.string(), z.string()).nullish(),
      StopSignal: z.string().optional(),
      Healthcheck: z.unknown().optional(),
    })
    .passthrough()
    .nullish(),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(digestString) }),
  history: z.array(HistorySchema).optional(),
}).passthrough();
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

/** `manifest.json` written by `docker save`. */
export const DockerArchiveManifestSchema = z.array(
  z.object({
    Config: z.string(),
    RepoTags: z.array(z.string()).nullish(),
    Layers: z.array(z.string()),
  }),
);

/** Parses JSON bytes against a schema, turning both syntax and shape errors into one clear line. */
export function parseJson<T>(schema: z.ZodType<T>, bytes: Uint8Array | string, subject: string): T {
  let value: unknown;
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  // Checked before JSON.parse, which would spend some 230 MB on 4 MiB of nested brackets.
  if (jsonPastBounds(text, { maxDepth: MAX_DOCUMENT_DEPTH })) {
    throw new OciError('MANIFEST_INVALID', `${subject}: JSON nested deeper than ${MAX_DOCUMENT_DEPTH} levels; no manifest or config is`, {
      subject,
    });
  }
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new OciError('MANIFEST_INVALID', `${subject}: not valid JSON (${(err as Error).message})`, {
      subject,
    });
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'document';
    throw new OciError('MANIFEST_INVALID', `${subject}: malformed (${where}: ${issue?.message ?? 'invalid'})`, {
      subject,
    });
  }
  return result.data;
}
