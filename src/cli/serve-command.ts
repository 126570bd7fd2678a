import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { RegistryAuth } from '../registry/auth-hook.js';
import type { Principal } from '../registry/auth/types.js';
import { loadConfig } from './config.js';

export interface ServeFlags {
  listen: string;
  data?: string;
  config?: string;
  /** The URL clients reach the registry at (behind a proxy or with TLS); the token realm hangs off it. */
  publicUrl?: string;
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError('FLAG_INVALID', `--listen "${value}" is not HOST:PORT (e.g. 127.0.0.1:5000)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export interface RunningServer {
  /** `host:port` actually bound (port 0 picks a free one). */
  address: string;
  close(): Promise<void>;
}

/**
 * Starts the registry with token authentication (Basic accepted too) and returns once it listens. The heavy modules (Fastify,
 * SQLite) load only here, keeping `scan` start-up short.
 */
export async function startServe(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  const config = loadConfig(flags.config, env);
  const dataDir = flags.data ?? config.data;
  const { host, port } = parseListen(flags.listen);
  const { pino } = await import('pino');
  const logger = pino({
    name: 'portcullis',
    level: env.PORTCULLIS_LOG_LEVEL ?? 'info',
    // Credentials never reach the log, whatever a future serializer adds.
    redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
  });
  const { buildRegistry, basicAuth, ensureAdminUser, verifyPassword } = await import('../registry/index.js');
  const { bearerAuth, loadOrCreateSigningKey, LoginRateLimiter, tokenRoutes } = await import('../registry/auth/index.js');
  const publicUrl = (flags.publicUrl ?? `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  const service = new URL(publicUrl).host;
  const key = await loadOrCreateSigningKey(dataDir);
  const rateLimiter = new LoginRateLimiter();
  let verifyCredentials: (user: string, password: string) => Promise<Principal | null> = async () => null;
  let authorizeBasic: RegistryAuth['authorize'] = () => false;
  const app = await buildRegistry({
    dataDir,
    logger,
    auth: async ({ metadata }) => {
      const admin = await ensureAdminUser(metadata, env);
      if (admin.generatedPassword) {
        // Shown once on the terminal, not through the logger, so it never lands in log storage.
        process.stderr.write(
          `\nCreated user "admin" with password: ${admin.generatedPassword}\n` +
            'It is not shown again. Set PORTCULLIS_ADMIN_PASSWORD before the first start to choose it.\n\n',
        );
      }
      if (admin.created) logger.info({ user: 'admin' }, 'created the initial admin user');
      const basic = basicAuth(metadata);
      authorizeBasic = (principal, repo, actions) => basic.authorize(principal, repo, actions);
      verifyCredentials = async (user, password) => {
        const record = await metadata.getUser(user);
        if (!record || !(await verifyPassword(password, record.passwordHash))) return null;
        return { name: record.name, kind: 'user', admin: record.admin };
      };
      // Docker token authentication (what docker, podman and skopeo expect), with Basic still
      // accepted on /v2 for simple clients.
      return bearerAuth({
        key,
        service,
        issuer: service,
        realm: `${publicUrl}/token`,
        rateLimiter,
        basicFallback: (u, p) => verifyCredentials(u, p),
        authorizeBasic: (principal, repo, actions) => authorizeBasic(principal, repo, actions),
      });
    },
  });
  await app.register(tokenRoutes, {
    key,
    service,
    issuer: service,
    rateLimiter,
    verifyCredentials: (u, p) => verifyCredentials(u, p),
    grantedActions: (principal, repo, requested) => requested.filter((a) => authorizeBasic(principal, repo, [a])),
  });
  await app.listen({ host, port });
  const bound = app.server.address();
  const address = bound && typeof bound === 'object' ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : `${host}:${port}`;
  logger.info({ dataDir, listen: address }, 'registry listening');
  return {
    address,
    async close() {
      logger.info('shutting down: finishing in-flight requests');
      await app.close();
    },
  };
}

/** Runs until SIGTERM or SIGINT, then closes gracefully (in-flight requests finish). */
export async function runServe(flags: ServeFlags): Promise<void> {
  const server = await startServe(flags);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      server.close().then(resolve, (err: unknown) => {
        process.stderr.write(`portcullis: error while closing: ${String(err)}\n`);
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

export function addServeCommand(program: Command): Command {
  return program
    .command('serve')
    .description('run the OCI registry (Distribution API v1.1) with token authentication')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:5000')
    .option('--public-url <url>', 'URL clients use to reach the registry (default http://LISTEN)')
    .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)')
    .action(async (flags: ServeFlags) => {
      await runServe(flags);
    });
}
