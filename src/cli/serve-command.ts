import type { Command } from 'commander';
import { UsageError } from '../errors.js';
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
  const { buildRegistry, ensureAdminUser } = await import('../registry/index.js');
  const { bearerAuth, loadOrCreateSigningKey, LoginRateLimiter, tokenRoutes } = await import('../registry/auth/index.js');
  const { AccessControl, AuditLog } = await import('../registry/access/index.js');
  const { SqliteRegistryMetadata } = await import('../store/index.js');
  const publicUrl = (flags.publicUrl ?? `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  const service = new URL(publicUrl).host;
  const key = await loadOrCreateSigningKey(dataDir);
  // One limiter for /token and for Basic on /v2: otherwise Basic would be a way around it.
  const rateLimiter = new LoginRateLimiter();
  // The server owns the metadata (rather than buildRegistry) so it can close it last: the audit
  // log's final batch is written after the last request finished.
  const metadata = await SqliteRegistryMetadata.open(dataDir);
  const admin = await ensureAdminUser(metadata, env);
  if (admin.generatedPassword) {
    // Shown once on the terminal, not through the logger, so it never lands in log storage.
    process.stderr.write(
      `\nCreated user "admin" with password: ${admin.generatedPassword}\n` +
        'It is not shown again. Set PORTCULLIS_ADMIN_PASSWORD before the first start to choose it.\n\n',
    );
  }
  if (admin.created) logger.info({ user: 'admin' }, 'created the initial admin user');
  const audit = new AuditLog(metadata, { onError: (err) => logger.error({ err }, 'audit log write failed') });
  const access = await AccessControl.create(metadata, {
    audit,
    onError: (err, what) => logger.error({ err }, `access control: ${what} failed`),
  });
  let app: Awaited<ReturnType<typeof buildRegistry>>;
  try {
    app = await buildRegistry({
      dataDir,
      logger,
      metadata,
      audit: (event) => audit.record(event),
      // Docker token authentication (what docker, podman and skopeo expect), with Basic (users
      // and robots) still accepted on /v2 for simple clients.
      auth: access.wrap(
        bearerAuth({
          key,
          service,
          issuer: service,
          realm: `${publicUrl}/token`,
          rateLimiter,
          basicFallback: (u, p) => access.verifyCredentials(u, p, 'basic'),
          authorizeBasic: (principal, repo, actions) => access.decide(principal, repo, actions),
        }),
      ),
    });
    await app.register(async (scope) => {
      // Carries the client address to the credential check and grant decision for the audit log.
      scope.addHook('onRequest', (req, _reply, done) => access.requests.run({ ip: req.ip }, done));
      await tokenRoutes(scope, {
        key,
        service,
        issuer: service,
        rateLimiter,
        verifyCredentials: (u, p) => access.verifyCredentials(u, p, 'token'),
        grantedActions: (principal, repo, requested) => access.grantedActions(principal, repo, requested),
      });
    });
  } catch (err) {
    await access.close();
    await metadata.close();
    throw err;
  }
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    await access.close();
    await metadata.close();
    throw err;
  }
  const bound = app.server.address();
  const address = bound && typeof bound === 'object' ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : `${host}:${port}`;
  logger.info({ dataDir, listen: address }, 'registry listening');
  return {
    address,
    async close() {
      logger.info('shutting down: finishing in-flight requests');
      await app.close();
      await access.close();
      await metadata.close();
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
