import { createRequire } from 'node:module';
import { z } from 'zod';
import { GATE_EVENT_TYPES } from '../gate/event-types.js';

/**
 * The `serve:` section of portcullis.yaml. Every key has a command-line flag of the same meaning
 * (flags win); the defaults keep the registry private to this machine: loopback, plain HTTP, no
 * proxy trusted, garbage collection only when asked for.
 */

/**
 * node:net brings four more of Node's internal modules, which every command loading the config
 * schema paid at start; only a trusted proxy address needs it, so it is loaded then.
 */
const requireBuiltin = createRequire(import.meta.url);
function isIP(text: string): number {
  return (requireBuiltin('node:net') as typeof import('node:net')).isIP(text);
}

// proxy-addr (what Fastify uses) also knows these names for the usual private ranges.
const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An address, a CIDR block (`10.0.0.0/8`, `fd00::/8`) or one of proxy-addr's range names. */
export function isProxyAddress(text: string): boolean {
  if (PROXY_KEYWORDS.has(text)) return true;
  const [addr, bits, ...rest] = text.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

export const ServeConfigSchema = z
  .object({
    /** `HOST:PORT`; default 127.0.0.1:5000. */
    listen: z.string().min(1).optional(),
    /** How long a shutdown waits for requests in flight before it cuts them (e.g. 30s; default 10s). */
    drainTimeout: z.string().min(1).optional(),
    /** The address clients use (a proxy's or a TLS name); the token realm is built from it. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Serve HTTPS with this PEM certificate (chain) and key; paths relative to the config file. */
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
    /**
     * Proxies whose `X-Forwarded-For`/`-Proto`/`-Host` are believed (addresses, CIDR blocks,
     * `loopback`...). Nobody by default: a client could otherwise forge its address and dodge the
     * per-address login rate limit and the audit log.
     */
    trustProxy: z
      .array(z.string().refine(isProxyAddress, { message: 'not an IP address, a CIDR block or one of loopback, linklocal, uniquelocal' }))
      .optional(),
    /** The pull gate: `pending` says what happens to an image with no verdict yet (refused by default). */
    gate: z
      .object({
        enabled: z.boolean().default(true),
        pending: z.enum(['deny', 'allow']).default('deny'),
        /** Refuse failing images at push time: the PUT waits up to this long for the verdict (e.g. 30s). */
        enforceOnPush: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /**
     * Where events go (verdict_changed, new_advisory_affects, pull_denied, pushed, analysed):
     * POSTed as JSON signed with HMAC-SHA256 (X-Portcullis-Signature-256), or as a Slack message.
     */
    webhooks: z
      .array(
        z
          .object({
            url: z.url({ protocol: /^https?$/ }),
            secret: z.string().min(16, 'a webhook secret needs at least 16 characters').optional(),
            secretEnv: z.string().min(1).optional(),
            events: z.array(z.enum(GATE_EVENT_TYPES)).optional(),
            format: z.enum(['json', 'slack']).default('json'),
          })
          .strict(),
      )
      .optional(),
    /** Refresh the vulnerability database inside the server (same as `portcullis db update`). */
    vulndb: z
      .object({
        updateEvery: z.string().min(1),
        baseUrl: z.url({ protocol: /^https?$/ }).optional(),
        ecosystems: z.array(z.string().min(1)).optional(),
      })
      .strict()
      .optional(),
    /** Collect garbage on a schedule inside the server (same safety as `portcullis gc`). */
    gc: z
      .object({
        every: z.string().min(1),
        grace: z.string().min(1).default('1h'),
        keepUntagged: z.boolean().default(false),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ServeConfig = z.infer<typeof ServeConfigSchema>;
