import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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
  })
  .strict();
export type Config = z.infer<typeof ConfigSchema>;

export function loadConfig(explicitPath: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const path = explicitPath ?? env.PORTCULLIS_CONFIG ?? (existsSync('portcullis.yaml') ? 'portcullis.yaml' : undefined);
  let raw: unknown = {};
  if (path) {
    if (!existsSync(path)) throw new UsageError('CONFIG_MISSING', `config file ${path} does not exist`);
    try {
      raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
    } catch (err) {
      throw new UsageError('CONFIG_INVALID', `${path}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError('CONFIG_INVALID', `${path}: ${issue?.path.join('.') || 'document'}: ${issue?.message}`);
  }
  const config = parsed.data;
  // A config file's own paths mean the same wherever the command is started from.
  if (path && config.serve.tls) {
    const here = resolve(path, '..');
    config.serve.tls = { cert: resolve(here, config.serve.tls.cert), key: resolve(here, config.serve.tls.key) };
  }
  if (env.PORTCULLIS_DATA) config.data = env.PORTCULLIS_DATA;
  if (env.PORTCULLIS_CACHE_DIR) config.cacheDir = env.PORTCULLIS_CACHE_DIR;
  config.data = resolve(config.data);
  return config;
}
