import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { constants as osConstants } from 'node:os';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import type { StoreTarget } from '../store/gc.js';
import type { BlobStore, RegistryMetadata } from '../store/index.js';
import type { AuditLog } from '../registry/access/index.js';
import type { Config } from './config.js';
import { UsageError } from '../errors.js';
import { loadConfig } from './config.js';
import { parseDuration } from './maintenance-commands.js';
import { isProxyAddress, type ServeConfig } from './serve-config.js';
import { printable } from '../terminal-text.js';

export const DEFAULT_LISTEN = '127.0.0.1:5000';

/**
 * How long a shutdown waits for requests in flight before it cuts their connections: a stalled
 * client (or a slow multi-gigabyte PATCH) must not keep the process alive until the idle timeout or
 * for ever. A cut chunk is cut back in its upload's temp file, so the client resumes from the last
 * complete one, as after a crash.
 */
export const SHUTDOWN_DRAIN_MS = 10_000;

export interface ServeFlags {
  /** Default: the config file's `serve.listen`, else 127.0.0.1:5000. */
  listen?: string;
  data?: string;
  config?: string;
  /** The URL clients reach the registry at (behind a proxy or with TLS); the token realm hangs off it. */
  publicUrl?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Comma-separated addresses or CIDR blocks of trusted proxies. */
  trustProxy?: string;
  /** Run garbage collection this often (a duration such as 24h). */
  gcEvery?: string;
  gcGrace?: string;
  /** `--no-gate` sets false: serve without analysis on push and without the pull gate. */
  gate?: boolean;
  /** Run `db update` inside the server this often (a duration such as 6h). */
  dbUpdateEvery?: string;
  /** Refuse failing images at push time, waiting up to this long (a duration) for the verdict. */
  enforceOnPush?: string;
  /** The policy file the gate enforces (default: the config's `policy:`, else the built-in policy). */
  policy?: string;
  /** How long a shutdown waits for requests in flight before cutting them (a duration; default 10s). */
  drainTimeout?: string;
}

/**
 * A duration from a flag or from the config file's `serve:` section, named in an error the way
 * the user wrote it: "daily" alone did not say which of five settings it was.
 */
function durationSetting(value: string, fromFlag: string | undefined, flag: string, key: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    throw new UsageError('FLAG_INVALID', `${fromFlag !== undefined ? flag : `serve.${key} in the config file`}: ${err.message}`);
  }
}

/** Flags over the config file's `serve:` section, checked together (TLS needs both halves). */
export function resolveServeSettings(flags: ServeFlags, fileSettings: ServeConfig) {
  const listen = flags.listen ?? fileSettings.listen ?? DEFAULT_LISTEN;
  const cert = flags.tlsCert ?? fileSettings.tls?.cert;
  const key = flags.tlsKey ?? fileSettings.tls?.key;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('FLAG_INVALID', 'TLS needs both a certificate and a key (--tls-cert and --tls-key)');
  const trustProxy = flags.trustProxy !== undefined ? flags.trustProxy.split(',').map((a) => a.trim()).filter((a) => a !== '') : (fileSettings.trustProxy ?? []);
  for (const a of trustProxy) {
    if (!isProxyAddress(a)) throw new UsageError('FLAG_INVALID', `--trust-proxy "${a}" is not an IP address, a CIDR block or one of loopback, linklocal, uniquelocal`);
  }
  const every = flags.gcEvery ?? fileSettings.gc?.every;
  const gc =
    every === undefined || every === '0'
      ? undefined
      : {
          everyMs: durationSetting(every, flags.gcEvery, '--gc-every', 'gc.every'),
          graceMs: durationSetting(flags.gcGrace ?? fileSettings.gc?.grace ?? '1h', flags.gcGrace, '--gc-grace', 'gc.grace'),
          keepUntagged: fileSettings.gc?.keepUntagged ?? false,
        };
  if (gc && gc.everyMs < 60_000) throw new UsageError('FLAG_INVALID', `--gc-every ${every} is too often; use at least 1m`);
  const dbEvery = flags.dbUpdateEvery ?? fileSettings.vulndb?.updateEvery;
  const dbUpdate =
    dbEvery === undefined || dbEvery === '0'
      ? undefined
      : { everyMs: durationSetting(dbEvery, flags.dbUpdateEvery, '--db-update-every', 'vulndb.updateEvery'), baseUrl: fileSettings.vulndb?.baseUrl, ecosystems: fileSettings.vulndb?.ecosystems };
  if (dbUpdate && dbUpdate.everyMs < 10 * 60_000) throw new UsageError('FLAG_INVALID', `--db-update-every ${dbEvery} is too often for the OSV bucket; use at least 10m`);
  const gateOn = flags.gate !== false && fileSettings.gate?.enabled !== false;
  const enforce = flags.enforceOnPush ?? fileSettings.gate?.enforceOnPush;
  const enforceMs = enforce === undefined || enforce === '0' ? undefined : durationSetting(enforce, flags.enforceOnPush, '--enforce-on-push', 'gate.enforceOnPush');
  const drain = flags.drainTimeout ?? fileSettings.drainTimeout;
  return {
    listen,
    drainMs: drain === undefined ? SHUTDOWN_DRAIN_MS : durationSetting(drain, flags.drainTimeout, '--drain-timeout', 'drainTimeout'),
    tls: cert !== undefined && key !== undefined ? { cert, key } : undefined,
    trustProxy,
    gc,
    dbUpdate,
    publicUrl: flags.publicUrl ?? fileSettings.publicUrl,
    gate: gateOn ? { pending: fileSettings.gate?.pending ?? 'deny', ...(enforceMs !== undefined ? { enforceOnPushMs: enforceMs } : {}) } : undefined,
  };
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    // `::1:5000` cannot be split safely: the port could be the address's last group.
    const hint = !m && /^[0-9a-fA-F:]*::?[0-9a-fA-F:]*:\d+$/.test(value.trim()) && value.includes('::') ? '; write an IPv6 address in brackets, e.g. [::1]:5000' : '';
    throw new UsageError('FLAG_INVALID', `--listen "${value}" is not HOST:PORT (e.g. 127.0.0.1:5000)${hint}`);
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export interface RunningServer {
  /** `host:port` actually bound (port 0 picks a free one). */
  address: string;
  /** Stops accepting, waits up to `drainMs` (default: --drain-timeout, else SHUTDOWN_DRAIN_MS) for requests in flight, then cuts them and closes the stores. */
  close(options?: { drainMs?: number }): Promise<void>;
}

/**
 * Starts the registry with token authentication (Basic accepted too) and returns once it listens. The heavy modules (Fastify,
 * SQLite) load only here, keeping `scan` start-up short.
 */
export async function startServe(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  const config = loadConfig(flags.config, env);
  const dataDir = flags.data ?? config.data;
  const settings = resolveServeSettings(flags, config.serve);
  const { host, port } = parseListen(settings.listen);
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (settings.tls) {
    const read = async (file: string, what: string) =>
      readFile(file).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError('FLAG_INVALID', `cannot read the TLS ${what} ${file}: ${err.code ?? err.message}`);
      });
    tls = { cert: await read(settings.tls.cert, 'certificate'), key: await read(settings.tls.key, 'key') };
    checkTlsMaterial(tls, settings.tls);
  }
  const { pino } = await import('pino');
  const logger = pino({
    name: 'portcullis',
    level: env.PORTCULLIS_LOG_LEVEL ?? 'info',
    // Credentials never reach the log, whatever a future serializer adds.
    redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
    serializers: { req: logRequest },
  });
  const { buildRegistry, ensureAdminUser } = await import('../registry/index.js');
  const { bearerAuth, loadOrCreateSigningKey, LoginRateLimiter, tokenRoutes } = await import('../registry/auth/index.js');
  const { AccessControl, AuditLog } = await import('../registry/access/index.js');
  const { SqliteRegistryMetadata } = await import('../store/index.js');
  const publicUrl = (settings.publicUrl ?? `${tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  const service = new URL(publicUrl).host;
  checkDataFolder(dataDir);
  const key = await loadOrCreateSigningKey(dataDir);
  // The server owns the metadata (rather than buildRegistry) so it can close it last: the audit
  // log's final batch is written after the last request finished.
  const metadata = await SqliteRegistryMetadata.open(dataDir);
  const admin = await ensureAdminUser(metadata, env).catch(async (err: unknown) => {
    await metadata.close();
    throw err;
  });
  if (admin.generatedPassword) {
    // Shown once on the terminal, not through the logger, so it never lands in log storage.
    process.stderr.write(
      `\nCreated user "admin" with password: ${admin.generatedPassword}\n` +
        'It is not shown again. Set PORTCULLIS_ADMIN_PASSWORD before the first start to choose it.\n\n',
    );
  }
  if (admin.created) logger.info({ user: 'admin' }, 'created the initial admin user');
  if (admin.envPasswordIgnored) {
    logger.warn(
      { user: 'admin' },
      'PORTCULLIS_ADMIN_PASSWORD is not the admin password and was ignored: it applies only on the first start with an empty data folder; change the password with `portcullis user passwd admin`',
    );
  }
  const audit = new AuditLog(metadata, {
    onError: (err, state) =>
      logger.error({ err, ...state }, 'audit log write failed; events are kept and retried every second (reported again each minute while it fails)'),
    onRecover: (state) => logger.warn(state, 'audit log writes again'),
  });
  const { FsBlobStore, blobRoot } = await import('../store/index.js');
  const blobs = new FsBlobStore(blobRoot(dataDir));
  const gate = settings.gate ? await startGate(flags, config, { dataDir, metadata, blobs, publicUrl, pending: settings.gate.pending, enforceOnPushMs: settings.gate.enforceOnPushMs, logger, audit }) : undefined;
  const access = await AccessControl.create(metadata, {
    audit,
    onError: (err, what) => logger.error({ err }, `access control: ${what} failed`),
  });
  // One limiter for /token and for Basic on /v2: otherwise Basic would be a way around it.
  const rateLimiter = new LoginRateLimiter({ onRefused: (ip, user) => access.auditLockedOut(user, ip || null) });
  // Docker token authentication (what docker, podman and skopeo expect), with Basic (users and
  // robots) still accepted on /v2 for simple clients. The API uses the same.
  const auth = access.wrap(
    bearerAuth({
      key,
      service,
      issuer: service,
      realm: `${publicUrl}/token`,
      rateLimiter,
      basicFallback: (u, p, ip) => access.verifyCredentials(u, p, 'basic', ip),
      authorizeBasic: (principal, repo, actions) => access.decide(principal, repo, actions),
      permitsBasic: (principal, repo, actions) => access.permits(principal, repo, actions),
    }),
  );
  let app: Awaited<ReturnType<typeof buildRegistry>>;
  try {
    app = await buildRegistry({
      dataDir,
      logger,
      metadata,
      blobs,
      ...(gate ? { extensions: gate.gate.extensions() } : {}),
      ...(tls ? { tls } : {}),
      trustProxy: settings.trustProxy,
      audit: (event) => audit.record(event),
      // Docker token authentication (what docker, podman and skopeo expect), with Basic (users
      // and robots) still accepted on /v2 for simple clients.
      auth,
    });
    // The REST API on the registry's own auth hook: the same users, roles, robots and tokens.
    // Without the gate it still serves projects, repositories, events and the audit log.
    const { apiRoutes } = await import('../api/index.js');
    await apiRoutes(app, { auth, metadata, audit, ...(gate ? { gate: gate.gate, policy: gate.policy } : {}) });
    await app.register(async (scope) => {
      await tokenRoutes(scope, {
        key,
        service,
        issuer: service,
        rateLimiter,
        verifyCredentials: (u, p, ip) => access.verifyCredentials(u, p, 'token', ip),
        grantedActions: (principal, repo, requested, ip) => access.grantedActions(principal, repo, requested, ip),
      });
    });
  } catch (err) {
    await gate?.stop();
    await access.close();
    await metadata.close();
    throw err;
  }
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    await gate?.stop();
    await access.close();
    await metadata.close();
    throw listenError(err, host, port);
  }
  gate?.start();
  const stopGc = settings.gc ? scheduleGc(app.registry, settings.gc, logger) : async () => {};
  const stopDbUpdate = settings.dbUpdate ? scheduleDbUpdate(dataDir, settings.dbUpdate, logger, env) : async () => {};
  const stopUploadPurge = scheduleUploadPurge(app.registry, logger);
  const bound = app.server.address();
  const address = bound && typeof bound === 'object' ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : `${host}:${port}`;
  logger.info({ dataDir, listen: address, tls: tls !== undefined, publicUrl, trustProxy: settings.trustProxy, gcEveryMs: settings.gc?.everyMs ?? null }, 'registry listening');
  return {
    address,
    async close(options = {}) {
      const drainMs = options.drainMs ?? settings.drainMs;
      logger.info({ drainMs }, 'shutting down: finishing in-flight requests');
      let cut = false;
      const deadline = setTimeout(() => {
        cut = true;
        logger.warn({ drainMs }, 'shutting down: requests still in flight after the drain period are cut; interrupted uploads resume from their last complete chunk');
        app.server.closeAllConnections();
      }, drainMs);
      deadline.unref();
      try {
        // The listener closes at once; background work stops at its next step meanwhile.
        await Promise.all([stopGc(), stopDbUpdate(), stopUploadPurge(), app.close()]);
      } finally {
        clearTimeout(deadline);
      }
      await gate?.stop();
      await access.close();
      await metadata.close();
      logger.info({ requestsCut: cut }, 'stopped');
    },
  };
}

/**
 * Checks the certificate and key before the server is built: OpenSSL's own words ("error:05800074:x509
 * certificate routines::key values mismatch", "DECODER routines::unsupported") named neither file
 * nor what to do, and an expired certificate started a server no verifying client could use.
 */
export function checkTlsMaterial(tls: { cert: Buffer; key: Buffer }, files: { cert: string; key: string }, now = new Date()): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(tls.cert);
  } catch {
    throw new UsageError('FLAG_INVALID', `the TLS certificate ${files.cert} is not a PEM certificate (it should begin with -----BEGIN CERTIFICATE-----)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(tls.key);
  } catch {
    // OpenSSL says only "interrupted or cancelled" when it would need a passphrase.
    const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(tls.key.toString('latin1'));
    throw new UsageError(
      'FLAG_INVALID',
      encrypted
        ? `the TLS key ${files.key} is encrypted; give the key without a passphrase (openssl pkey -in ${files.key} -out KEY)`
        : `the TLS key ${files.key} is not a PEM private key (it should begin with -----BEGIN ... PRIVATE KEY-----)`,
    );
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new UsageError('FLAG_INVALID', `the TLS key ${files.key} does not belong to the certificate ${files.cert}; give the key the certificate was issued for`);
  }
  const notAfter = new Date(certificate.validTo);
  if (notAfter.getTime() < now.getTime()) {
    throw new UsageError('FLAG_INVALID', `the TLS certificate ${files.cert} expired on ${notAfter.toISOString()}; renew it`);
  }
}

/**
 * Makes `DATA/registry` and checks that this process may write there, before anything else opens
 * it: a data folder that is a file ended serve with "Cannot read the token signing key", one on a
 * read-only mount with "Cannot save the token signing key" or a bare "ENOENT: ... mkdir".
 */
export function checkDataFolder(dataDir: string): void {
  const registryDir = join(dataDir, 'registry');
  const reasons: Record<string, string> = {
    ENOTDIR: 'it (or a folder above it) is a file, not a folder',
    EEXIST: 'it (or a folder above it) is a file, not a folder',
    EROFS: 'it is on a read-only file system',
    EACCES: 'this user may not write there',
    EPERM: 'this user may not write there',
    ENOSPC: 'its disk is full',
  };
  let failure: NodeJS.ErrnoException | undefined;
  try {
    mkdirSync(registryDir, { recursive: true });
    accessSync(registryDir, fsConstants.W_OK);
  } catch (err) {
    failure = err as NodeJS.ErrnoException;
  }
  if (!failure) return;
  let code = failure.code ?? '';
  if (!(code in reasons)) {
    // A read-only mount answers a mkdir below it with ENOENT: ask the nearest folder that exists.
    for (let dir = dataDir; ; dir = dirname(dir)) {
      if (existsSync(dir)) {
        try {
          if (!statSync(dir).isDirectory()) code = 'ENOTDIR';
          else accessSync(dir, fsConstants.W_OK);
        } catch (err) {
          code = (err as NodeJS.ErrnoException).code ?? code;
        }
        break;
      }
      if (dirname(dir) === dir) break;
    }
  }
  throw new UsageError('DATA_UNUSABLE', `cannot use the data folder ${dataDir}: ${reasons[code] ?? failure.message}; choose another with --data or PORTCULLIS_DATA`, { cause: failure });
}

/** Query parameters whose value may be a credential, by name (`access_token`, `password`, `client_secret`, `X-Amz-Signature`...). */
const SECRET_QUERY_NAME = /token|passw|secret|key|signature|credential|auth/i;

/** A request URL for the log, with the value of every query parameter that may hold a credential replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // A malformed escape: judge the raw name.
      }
      return eq >= 0 && SECRET_QUERY_NAME.test(decoded) ? `${name}=[redacted]` : pair;
    })
    .join('&');
  return `${url.slice(0, q + 1)}${query}`;
}

/**
 * Fastify's request fields for the log, with the URL redacted: a client that put a token in the
 * query string (`/v2/?access_token=...`, refused anyway) had it written to the log in full.
 * The Host header (and a trusted proxy's X-Forwarded-For) may carry bytes above ASCII, which Node
 * reads as Latin-1: a 0x9b byte became a C1 control sequence on the terminal of an operator
 * running `serve` in the foreground, so those two are escaped. Node refuses such bytes in the URL.
 */
export function logRequest(req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  const shown = (text: string | undefined) => (text === undefined ? undefined : printable(text));
  return { method: req.method, url: req.url === undefined ? undefined : redactUrl(req.url), host: shown(req.host), remoteAddress: shown(req.ip), remotePort: req.socket?.remotePort };
}

/** Why the address cannot be had, in words, with the way out; other errors unchanged. */
function listenError(err: unknown, host: string, port: number): unknown {
  const reasons: Record<string, string> = {
    EADDRINUSE: 'the port is already in use (another registry, or portcullis serve already running?)',
    EADDRNOTAVAIL: 'no network interface of this machine has that address',
    EACCES: 'ports below 1024 need privileges this process does not have',
    ENOTFOUND: 'the host name does not resolve to an address',
    EAI_AGAIN: 'the host name could not be resolved (DNS did not answer)',
  };
  const reason = reasons[(err as NodeJS.ErrnoException).code ?? ''];
  if (!reason) return err;
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new UsageError('LISTEN_FAILED', `cannot listen on ${where}: ${reason}; choose another address with --listen HOST:PORT or serve.listen in the configuration file`, { cause: err });
}

/**
 * Runs garbage collection every `everyMs` on the server's own stores (the same mark-and-sweep as
 * `portcullis gc`, safe next to pushes). A run never overlaps the previous one; the returned
 * function stops the schedule and a run in progress at its next step (a sweep of a large store
 * takes minutes, which a shutdown must not wait for), and waits for that.
 */
export function scheduleGc(
  stores: StoreTarget,
  options: { everyMs: number; graceMs: number; keepUntagged: boolean },
  logger: Logger,
): () => Promise<void> {
  return runEvery(
    options.everyMs,
    async (signal) => {
      const { gc } = await import('../store/gc.js');
      const started = Date.now();
      const r = await gc(stores, { gracePeriodMs: options.graceMs, deleteUntagged: !options.keepUntagged, signal });
      logger.info(
        { manifests: r.manifestsDeleted.length, blobs: r.blobsDeleted.length, bytesFreed: r.bytesFreed, uploads: r.uploadsRemoved, ms: Date.now() - started },
        r.stopped ? 'scheduled garbage collection stopped by the shutdown; the next run goes on from there' : 'scheduled garbage collection finished',
      );
    },
    (err) => logger.error({ err }, 'scheduled garbage collection failed'),
  );
}

/**
 * Forgets upload sessions idle for a day, and their temp files, every hour (gc does it too, but
 * gc is not scheduled by default): a client that opens sessions and never finishes them must not
 * fill the disk. A day is what a resumable upload may sit between two chunks.
 */
export function scheduleUploadPurge(stores: StoreTarget, logger: Logger, options: { everyMs?: number; staleMs?: number } = {}): () => Promise<void> {
  return runEvery(
    options.everyMs ?? 60 * 60_000,
    async () => {
      const { DEFAULT_STALE_UPLOAD_MS, purgeStaleUploads } = await import('../store/gc.js');
      const r = await purgeStaleUploads(stores, { staleBefore: Date.now() - (options.staleMs ?? DEFAULT_STALE_UPLOAD_MS) });
      if (r.uploadsRemoved > 0 || r.tempFilesRemoved > 0) logger.info(r, 'abandoned uploads removed');
    },
    (err) => logger.error({ err }, 'removing abandoned uploads failed'),
  );
}

/**
 * Runs `task` every `everyMs`, never two at once (a run still going when the next is due is not
 * doubled); the returned function stops the schedule, aborts the task's signal (a task that
 * heeds it stops at its next step) and waits for a run in progress.
 */
function runEvery(everyMs: number, task: (signal: AbortSignal) => Promise<void>, onError: (err: unknown) => void): () => Promise<void> {
  let running: Promise<void> | undefined;
  const stopping = new AbortController();
  const timer = setInterval(() => {
    running ??= task(stopping.signal)
      .catch(onError)
      .finally(() => {
        running = undefined;
      });
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    stopping.abort();
    await running;
  };
}

/**
 * The curated registry's gate: the policy in force (re-read when its file changes), analysis of
 * every pushed image as a durable job, and the pull check. Returns start/stop for the job runner.
 */
async function startGate(
  flags: ServeFlags,
  config: Config,
  deps: {
    dataDir: string;
    metadata: RegistryMetadata;
    blobs: BlobStore;
    publicUrl: string;
    pending: 'deny' | 'allow';
    enforceOnPushMs: number | undefined;
    logger: Logger;
    audit: AuditLog;
  },
) {
  const { EventPublisher, Gate, PolicySource, WEBHOOK_JOB } = await import('../gate/index.js');
  const { JobRunner } = await import('../jobs/index.js');
  const { loadPolicyInForce } = await import('./policy-command.js');
  const { projectOf } = await import('../registry/access/index.js');
  const policyFlags = { ...(flags.policy !== undefined ? { policy: flags.policy } : {}), ...(flags.config !== undefined ? { config: flags.config } : {}) };
  // The file `policy:` in the config names now: an edit of the config can point it elsewhere, and
  // from then on that file is the one whose edits must be seen.
  let configuredPolicyFile = typeof config.policy === 'string' ? config.policy : undefined;
  const watched = () => [flags.policy, config.file, configuredPolicyFile].filter((f): f is string => f !== undefined);
  const policy = new PolicySource(
    async () => {
      if (flags.policy === undefined && config.file !== undefined) {
        try {
          const now = loadConfig(flags.config);
          configuredPolicyFile = typeof now.policy === 'string' ? now.policy : undefined;
        } catch {
          // The load below fails the same way and says why; the files watched stay as they were.
        }
      }
      const loaded = await loadPolicyInForce(policyFlags);
      return { policy: loaded.policy, source: loaded.source };
    },
    watched,
    1000,
    (reload) => {
      if (reload.ok) deps.logger.info({ policy: reload.policy.source, hash: reload.policy.hash, changed: reload.changed }, 'gate: policy re-read after a change to its file');
      else {
        deps.logger.error(
          { policy: reload.kept.source, hash: reload.kept.hash, reason: reload.error.message },
          `gate: the policy file changed but cannot be loaded, so the policy loaded before stays in force until it is fixed: ${reload.error.message}`,
        );
      }
    },
  );
  // Checked now so a broken policy stops the start instead of refusing every pull later.
  const initial = await policy.get();
  deps.logger.info({ policy: initial.source }, 'gate: enforcing policy');
  // The gate wakes the runner when it queues work; the runner needs the gate's handlers first.
  const wake = { notify: () => {} };
  const events = new EventPublisher(deps.metadata, webhookTargets(config.serve.webhooks ?? [], process.env), () => wake.notify());
  const gate = new Gate({
    metadata: deps.metadata,
    blobs: deps.blobs,
    dataDir: deps.dataDir,
    policy,
    projectOf,
    publicUrl: deps.publicUrl,
    pending: deps.pending,
    ...(deps.enforceOnPushMs !== undefined ? { enforceOnPush: { budgetMs: deps.enforceOnPushMs } } : {}),
    notify: () => wake.notify(),
    onEvent: (event) => {
      deps.logger.info({ event }, `gate: ${event.type}`);
      events.publish(event).catch((err: unknown) => deps.logger.error({ err, type: event.type }, 'event could not be stored'));
    },
  });
  const runner = new JobRunner({
    store: deps.metadata.jobs,
    handlers: { ...gate.handlers(), [WEBHOOK_JOB]: events.handler() },
    onError: (err, job) => deps.logger.error({ err, job: { id: job.id, kind: job.kind, attempts: job.attempts } }, 'job failed'),
    onDone: (job, ms) => deps.logger.info({ job: { id: job.id, kind: job.kind }, ms }, 'job done'),
    onReleased: (job) => deps.logger.info({ job: { id: job.id, kind: job.kind } }, 'job interrupted by the shutdown; queued again, it runs at the next start'),
  });
  wake.notify = () => runner.notify();
  return {
    gate,
    policy,
    start: () => {
      runner.start();
      gate.startMonitor(500, (err) => deps.logger.error({ err }, 'gate: watching the vulnerability database failed'));
      gate.recover().catch((err: unknown) => deps.logger.error({ err }, 'gate: recovery scan failed'));
    },
    stop: async () => {
      await runner.stop();
      await gate.close();
    },
  };
}

/** Webhook targets from the config; a secret can come from an environment variable so it stays out of the file. */
function webhookTargets(hooks: NonNullable<ServeConfig['webhooks']>, env: NodeJS.ProcessEnv) {
  return hooks.map((h) => {
    const secret = h.secretEnv !== undefined ? env[h.secretEnv] : h.secret;
    if (h.secretEnv !== undefined && secret === undefined) throw new UsageError('CONFIG_INVALID', `webhook ${new URL(h.url).host}: environment variable ${h.secretEnv} is not set`);
    return { url: h.url, format: h.format, ...(secret !== undefined ? { secret } : {}), ...(h.events ? { events: h.events } : {}) };
  });
}

/**
 * Runs `db update` on a schedule inside the server: the ecosystems the stored images need (or the
 * configured ones) from the OSV bucket or a mirror. The import replaces the database atomically, so
 * a failed download keeps the previous data, and the gate notices the new file by itself.
 */
export function scheduleDbUpdate(
  dataDir: string,
  options: { everyMs: number; baseUrl?: string | undefined; ecosystems?: string[] | undefined },
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): () => Promise<void> {
  return runEvery(
    options.everyMs,
    async () => {
      const { DEFAULT_OSV_BASE_URL, ecosystemsToUpdate, updateOsv } = await import('../vulndb/index.js');
      const ecosystems = ecosystemsToUpdate(dataDir, options.ecosystems);
      const baseUrl = options.baseUrl ?? env.PORTCULLIS_OSV_BASE_URL ?? DEFAULT_OSV_BASE_URL;
      const started = Date.now();
      const summary = await updateOsv(dataDir, { ecosystems, baseUrl });
      logger.info({ ecosystems, baseUrl, records: summary.records, unchanged: summary.unchanged, ms: Date.now() - started }, 'scheduled vulnerability database update finished');
    },
    (err) => logger.error({ err }, 'scheduled vulnerability database update failed; the previous database stays in use'),
  );
}

/**
 * Runs until SIGTERM or SIGINT, then closes gracefully: in-flight requests get SHUTDOWN_DRAIN_MS
 * to finish, then are cut. A second signal during that wait exits at once (128 + its number), as
 * an operator pressing Ctrl-C twice expects; the metadata is crash-safe and a cut upload resumes.
 */
export async function runServe(flags: ServeFlags): Promise<void> {
  const server = await startServe(flags);
  await new Promise<void>((resolve) => {
    const force = (signal: NodeJS.Signals) => {
      process.stderr.write(`portcullis: ${signal} again: exiting now without waiting for requests in flight\n`);
      process.exit(128 + (osConstants.signals[signal] ?? 0));
    };
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
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
    .option('--listen <host:port>', `address to listen on (default serve.listen in the config, else ${DEFAULT_LISTEN})`)
    .option('--public-url <url>', 'URL clients use to reach the registry (default http(s)://LISTEN)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); needs --tls-key')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--trust-proxy <list>', 'comma-separated proxy addresses/CIDR blocks whose X-Forwarded-* headers are believed (default none)')
    .option('--gc-every <duration>', 'collect garbage on this schedule, e.g. 24h (default off)')
    .option('--gc-grace <duration>', 'grace period for scheduled collections (default 1h)')
    .option('--policy <file>', 'policy the gate enforces (default: policy: in the config, else the built-in policy)')
    .option('--db-update-every <duration>', 'run `db update` inside the server on this schedule, e.g. 6h (default off)')
    .option('--enforce-on-push <duration>', 'refuse failing images at push time, waiting up to this long for the verdict (e.g. 30s)')
    .option('--drain-timeout <duration>', 'on SIGTERM/SIGINT, wait this long for requests in flight before cutting them (default 10s; a second signal exits at once)')
    .option('--no-gate', 'serve without analysis on push and without the pull gate (a plain registry)')
    .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)')
    .action(async (flags: ServeFlags) => {
      await runServe(flags);
    });
}
