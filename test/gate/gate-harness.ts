import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { artifactRoutes } from '../../src/api/index.js';
import { EventPublisher, Gate, PolicySource, WEBHOOK_JOB, type GateEvent, type WebhookTarget } from '../../src/gate/index.js';
import { JobRunner } from '../../src/jobs/index.js';
import { parsePolicyText } from '../../src/policy/index.js';
import { projectOf } from '../../src/registry/access/index.js';
import { basicAuth, buildRegistry, ensureAdminUser, hashPassword, type RegistryAuditEvent } from '../../src/registry/index.js';
import { FsBlobStore, SqliteRegistryMetadata, blobRoot } from '../../src/store/index.js';
import { importOsv } from '../../src/vulndb/index.js';
import { tarOf, type TestEntry } from '../helpers/image-builder.js';
import { PushClient, sha256 } from '../registry/push-client.js';
import { readFileSync } from 'node:fs';

export interface GatedRegistry {
  app: FastifyInstance;
  base: string;
  dataDir: string;
  policyFile: string;
  gate: Gate;
  runner: JobRunner;
  events: GateEvent[];
  /** What the registry gave its audit hook. */
  audit: RegistryAuditEvent[];
  admin: PushClient;
  dev: PushClient;
  importRecords(records: unknown[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The registry with the gate as `portcullis serve` wires it (extensions, job runner, policy file
 * re-read on change), Basic auth with an admin and a non-admin user, in a temp data folder.
 */
export async function startGatedRegistry(
  policyYaml: string,
  options: {
    startRunner?: boolean;
    pending?: 'deny' | 'allow';
    webhooks?: WebhookTarget[];
    enforceOnPushMs?: number;
    /** Start on this data folder (a restart) instead of a new one. */
    dataDir?: string;
    /** Leave the data folder behind on stop, for a restart. */
    keepData?: boolean;
    /** The database monitor's interval; false: no monitor (the test calls checkDatabase). */
    monitorMs?: number | false;
  } = {},
): Promise<GatedRegistry> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'portcullis-gate-')));
  const policyFile = join(dataDir, 'policy.yaml');
  writeFileSync(policyFile, policyYaml);
  const metadata = await SqliteRegistryMetadata.open(dataDir);
  const blobs = new FsBlobStore(blobRoot(dataDir));
  await ensureAdminUser(metadata, { PORTCULLIS_ADMIN_PASSWORD: 'admin-pw' });
  await metadata.putUser({ name: 'dev', passwordHash: await hashPassword('dev-pw'), admin: false });
  const policy = new PolicySource(
    async () => ({ policy: parsePolicyText(readFileSync(policyFile, 'utf8'), policyFile), source: policyFile }),
    () => [policyFile],
    100,
  );
  const events: GateEvent[] = [];
  const wake = { notify: () => {} };
  const publisher = new EventPublisher(metadata, options.webhooks ?? [], () => wake.notify());
  const gate = new Gate({
    metadata,
    blobs,
    dataDir,
    policy,
    projectOf,
    publicUrl: 'http://registry.test',
    pending: options.pending ?? 'deny',
    ...(options.enforceOnPushMs !== undefined ? { enforceOnPush: { budgetMs: options.enforceOnPushMs } } : {}),
    onEvent: (e) => {
      events.push(e);
      void publisher.publish(e);
    },
    notify: () => wake.notify(),
  });
  const runner = new JobRunner({ store: metadata.jobs, handlers: { ...gate.handlers(), [WEBHOOK_JOB]: publisher.handler(2000) }, pollMs: 50, leaseMs: 5000, retryBaseMs: 100 });
  wake.notify = () => runner.notify();
  const auth = basicAuth(metadata);
  const audit: RegistryAuditEvent[] = [];
  const app = await buildRegistry({ dataDir, metadata, blobs, auth, extensions: gate.extensions(), audit: (e) => audit.push(e) });
  await app.register(async (scope) => artifactRoutes(scope, { auth, metadata, gate }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  if (options.startRunner !== false) runner.start();
  if (options.monitorMs !== false) gate.startMonitor(options.monitorMs ?? 100);
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    app,
    base,
    dataDir,
    policyFile,
    gate,
    runner,
    events,
    audit,
    admin: PushClient.basic(base, 'admin', 'admin-pw'),
    dev: PushClient.basic(base, 'dev', 'dev-pw'),
    importRecords: (records) => importRecordsInto(dataDir, records),
    async stop() {
      await runner.stop();
      await app.close();
      await gate.close();
      await metadata.close();
      if (!options.keepData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** `db import` of these OSV records into a data folder (as another process would, server running or not). */
export async function importRecordsInto(dataDir: string, records: unknown[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-osv-'));
  mkdirSync(dir, { recursive: true });
  records.forEach((r, i) => writeFileSync(join(dir, `r${i}.json`), JSON.stringify(r)));
  await importOsv(dataDir, [dir]);
  await rm(dir, { recursive: true, force: true });
}

export interface PushedImage {
  digest: string;
  manifest: Buffer;
}

/** Pushes a one-or-more-layer OCI image built from tar entries; `rawLayers` replaces a layer's bytes. */
export async function pushTestImage(
  client: PushClient,
  repo: string,
  tag: string,
  layers: TestEntry[][],
  opts: { config?: Record<string, unknown>; rawLayer?: Buffer } = {},
): Promise<PushedImage> {
  const image = await buildTestImage(layers, opts);
  for (const b of image.blobs) await client.pushBlob(repo, b);
  const r = await client.putManifest(repo, tag, image.manifest);
  if (r.status !== 201) throw new Error(`push ${repo}:${tag}: ${r.status} ${r.body.toString()}`);
  return { digest: image.digest, manifest: image.manifest };
}

/** A one-or-more-layer OCI image built from tar entries: its blobs (layers, then config) and manifest. */
export async function buildTestImage(
  layers: TestEntry[][],
  opts: { config?: Record<string, unknown>; rawLayer?: Buffer } = {},
): Promise<PushedImage & { blobs: Buffer[] }> {
  const blobs: Buffer[] = [];
  const diffIds: string[] = [];
  for (const entries of layers) {
    const tar = await tarOf(entries);
    diffIds.push(sha256(tar));
    blobs.push(gzipSync(tar));
  }
  if (opts.rawLayer) {
    blobs.push(opts.rawLayer);
    diffIds.push(sha256(opts.rawLayer));
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: opts.config ?? { User: '1000' }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: blobs.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(b), size: b.length })),
    }),
  );
  return { digest: sha256(manifest), manifest, blobs: [...blobs, config] };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
