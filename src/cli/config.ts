import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { ServeConfigSchema } from './serve-config.js';

/**
 * portcullis.yaml: every setting has a default here, and every one can be overridden by an
 * environment variable (PORTCULLIS_*) and then by a command-line flag.
 */
export const ConfigSchema = z
  .object({
    data: z.string().default('./data'),
    cacheDir: z.string().optional(),
    limits: z
      .object({
        maxTotalBytes: z.number().int().positive().optional(),
        maxEntries: z.number().int().positive().optional(),
        maxFileBytes: z.number().int().positive().optional(),
      })
      .strict()
      .default({}),
    /** `portcullis serve` settings (src/cli/serve-config.ts). */
    serve: ServeConfigSchema.default({}),
    /**
     * The policy for `portcullis policy` (and, later, the registry gate): a file path, relative to
     * this file's folder, or the policy document itself (docs/policy.md). Validated when used.
     */
    policy: z
      .union([z.string().min(1), z.record(z.string(), z.unknown())], {
        error: 'policy must be a file path or a policy document (a mapping with version and rules)',
      })
      .optional(),
  })
  .strict();
export type Config = z.infer<typeof ConfigSchema> & {
  /** The configuration file that was read, when there was one. */
  file?: string;
  /** PORTCULLIS_REGISTRY_TIMEOUT (seconds), in ms: the remote-image client's timeout. */
  registryTimeoutMs?: number;
};

export function loadConfig(explicitPath: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const path = explicitPath ?? env.PORTCULLIS_CONFIG ?? (existsSync('portcullis.yaml') ? 'portcullis.yaml' : undefined);
  let raw: unknown = {};
  if (path) {
    if (!existsSync(path)) throw new UsageError('CONFIG_MISSING', `config file ${path} does not exist`);
    try {
      raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
    } catch (err) {
      // A .json file is read by the same parser (JSON is YAML), but is named as what it claims to be.
      throw new UsageError('CONFIG_INVALID', `${path}: not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError('CONFIG_INVALID', `${path}: ${issue?.path.join('.') || 'document'}: ${issue?.message}`);
  }
  const config: Config = parsed.data;
  if (path) config.file = path;
  if (typeof config.policy === 'string' && path) config.policy = resolve(dirname(path), config.policy);
  // A config file's own paths mean the same wherever the command is started from: `data:` and
  // `cacheDir:` as `policy:` and `serve.tls`. The default ./data, set by nobody, stays the working folder's.
  if (path) {
    const here = resolve(path, '..');
    if ((raw as { data?: unknown }).data !== undefined) config.data = resolve(here, config.data);
    if (config.cacheDir !== undefined) config.cacheDir = resolve(here, config.cacheDir);
    if (config.serve.tls) {
      config.serve.tls = { cert: resolve(here, config.serve.tls.cert), key: resolve(here, config.serve.tls.key) };
    }
  }
  if (env.PORTCULLIS_DATA) config.data = env.PORTCULLIS_DATA;
  if (env.PORTCULLIS_CACHE_DIR) config.cacheDir = env.PORTCULLIS_CACHE_DIR;
  if (env.PORTCULLIS_REGISTRY_TIMEOUT) config.registryTimeoutMs = registryTimeoutMs(env.PORTCULLIS_REGISTRY_TIMEOUT);
  config.data = resolve(config.data);
  return config;
}

/** Seconds (fractions allowed, at most a day) as milliseconds; anything else is a usage error. */
function registryTimeoutMs(text: string): number {
  const seconds = /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (!(seconds > 0 && seconds <= 86_400)) {
    throw new UsageError(
      'CONFIG_INVALID',
      `PORTCULLIS_REGISTRY_TIMEOUT must be a number of seconds above 0 and at most 86400, not "${text.slice(0, 40)}"`,
    );
  }
  return Math.max(1, Math.round(seconds * 1000));
}
