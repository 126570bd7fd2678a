import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsck } from '../../src/store/fsck.js';
import { gc } from '../../src/store/gc.js';
import { freePort } from '../helpers/docker-registry.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { PushClient, imageOf, pushImage, sha256, verifyImage } from './push-client.js';

const BIN = join(REPO_ROOT, 'bin', 'portcullis.js');
const BUILT = existsSync(join(REPO_ROOT, 'dist', 'bundle', 'cli.js')) || existsSync(join(REPO_ROOT, 'dist', 'cli', 'index.js'));
const PASSWORD = 'crash-test-pw';
const MiB = 1024 * 1024;

interface Server {
  child: ChildProcess;
  client: PushClient;
  port: number;
  log(): string;
}

let dataDir: string;
let port: number;
let server: Server | undefined;

/** `portcullis serve` as a child process on the shared data folder; resolves once /v2/ answers. */
async function startServer(): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, '--no-gate'], {
    env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const client = PushClient.basic(`http://127.0.0.1:${port}`, 'admin', PASSWORD);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${log}`);
    const ok = await client.call('GET', '/v2/').then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { child, client, port, log: () => log };
    if (Date.now() > deadline) throw new Error(`serve did not answer within 20 s: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function kill(s: Server, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill(signal);
  // A graceful stop waits for open connections; do not let a lingering one hang the test.
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Sends `sent` bytes of a body that announces `declared`, then waits: the body never completes. */
function stallingRequest(method: string, path: string, headers: Record<string, string>, declared: number, sent: Buffer): void {
  const req = httpRequest({
    hostname: '127.0.0.1',
    port,
    path,
    method,
    headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`, 'content-length': String(declared), ...headers },
  });
  req.on('error', () => undefined);
  req.write(sent);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'portcullis-crash-'));
  port = await freePort();
});
afterAll(async () => {
  if (server) await kill(server);
  await rm(dataDir, { recursive: true, force: true });
});

describe.skipIf(!BUILT)(`crash safety of portcullis serve (SIGKILL)${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`, () => {
  const blob = randomBytes(64 * MiB);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const CHUNK = 8 * MiB;
  let uploadPath = '';

  it('killed in the middle of a 64 MiB chunked upload: no partial blob, the upload resumes', { timeout: 60_000 }, async () => {
    server = await startServer();
    const c = server.client;
    const start = await c.call('POST', '/v2/big/layer/blobs/uploads/');
    expect(start.status).toBe(202);
    uploadPath = new URL(start.headers.get('location')!, c.base).pathname;
    for (let i = 0; i < 3; i++) {
      const r = await c.call('PATCH', uploadPath, blob.subarray(i * CHUNK, (i + 1) * CHUNK), {
        'content-type': 'application/octet-stream',
        'content-range': `${i * CHUNK}-${(i + 1) * CHUNK - 1}`,
      });
      expect(r.status).toBe(202);
    }
    // Chunk 4 arrives half-way, then the server dies.
    stallingRequest('PATCH', uploadPath, { 'content-type': 'application/octet-stream', 'content-range': `${3 * CHUNK}-${4 * CHUNK - 1}` }, CHUNK, blob.subarray(3 * CHUNK, 3 * CHUNK + 4 * MiB));
    await new Promise((r) => setTimeout(r, 300));
    await kill(server);

    server = await startServer();
    const c2 = server.client;
    expect((await c2.call('HEAD', `/v2/big/layer/blobs/${digest}`)).status).toBe(404);
    expect((await fsck(dataDir)).problems).toEqual([]);
    const status = await c2.call('GET', uploadPath);
    expect(status.status).toBe(204);
    const offset = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')![1]) + 1;
    // Only whole, acknowledged chunks count; the half chunk is not reported.
    expect(offset).toBe(3 * CHUNK);
    for (let at = offset; at < blob.length; at += CHUNK) {
      const r = await c2.call('PATCH', uploadPath, blob.subarray(at, at + CHUNK), {
        'content-type': 'application/octet-stream',
        'content-range': `${at}-${at + CHUNK - 1}`,
      });
      expect(r.status).toBe(202);
    }
    const done = await c2.call('PUT', `${uploadPath}?digest=${digest}`);
    expect(done.status, done.body.toString()).toBe(201);
    const head = await c2.call('HEAD', `/v2/big/layer/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(blob.length));
    expect(sha256((await c2.call('GET', `/v2/big/layer/blobs/${digest}`)).body)).toBe(digest);
  });

  it('killed during a manifest PUT: the manifest is absent, not half there; pushing again works', { timeout: 60_000 }, async () => {
    const c = server!.client;
    const img = imageOf([randomBytes(300_000), randomBytes(1000)], 'crash');
    for (const layer of img.layers) await c.pushBlob('crash/app', layer);
    await c.pushBlob('crash/app', img.config);
    stallingRequest('PUT', '/v2/crash/app/manifests/v1', { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, img.manifest.length, img.manifest.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 300));
    await kill(server!);

    server = await startServer();
    const c2 = server.client;
    expect((await c2.call('HEAD', '/v2/crash/app/manifests/v1')).status).toBe(404);
    expect((await c2.call('HEAD', `/v2/crash/app/manifests/${img.digest}`)).status).toBe(404);
    expect((await fsck(dataDir, { verifyContent: true })).problems).toEqual([]);
    await pushImage(c2, 'crash/app', 'v1', img);
    expect(await verifyImage(c2, 'crash/app', 'v1', img)).toEqual([]);
  });

  it('gc from another process next to the running server, then fsck: nothing referenced is lost', { timeout: 60_000 }, async () => {
    const c = server!.client;
    const orphan = await c.pushBlob('crash/app', randomBytes(5000));
    // Another process (this test) collects while the server runs; grace 0 so the orphan goes.
    await new Promise((r) => setTimeout(r, 20));
    const r = await gc(dataDir, { gracePeriodMs: 0 });
    expect(r.blobsDeleted).toContain(orphan);
    expect((await c.call('HEAD', `/v2/crash/app/blobs/${orphan}`)).status).toBe(404);
    // The big layer is linked but no manifest references it: with grace 0 it goes too, cleanly.
    expect(r.blobsDeleted).toContain(digest);
    expect((await c.call('HEAD', `/v2/big/layer/blobs/${digest}`)).status).toBe(404);
    expect((await fsck(dataDir, { verifyContent: true })).problems).toEqual([]);
    const img = imageOf([randomBytes(1000)], 'after gc');
    await pushImage(c, 'crash/app', 'v2', img);
    expect(await verifyImage(c, 'crash/app', 'v2', img)).toEqual([]);
    await kill(server!, 'SIGTERM');
    server = undefined;
    expect((await fsck(dataDir, { verifyContent: true })).problems).toEqual([]);
  });
});
