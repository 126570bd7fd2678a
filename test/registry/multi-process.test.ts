import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { freePort } from '../helpers/docker-registry.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { PushClient, imageOf, pushImage, randomLayer, verifyImage } from './push-client.js';

/**
 * Several processes on one data folder (a second server, `portcullis gc`, the user CLI): SQLite
 * serialises their writes, so each must wait for the others' locks, never fail with "database is
 * locked" or trip over a migration another process is running.
 */
const BIN = join(REPO_ROOT, 'bin', 'portcullis.js');
const BUILT = existsSync(join(REPO_ROOT, 'dist', 'bundle', 'cli.cjs')) || existsSync(join(REPO_ROOT, 'dist', 'cli', 'index.js'));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'portcullis-multi-'));
  dirs.push(d);
  return d;
}
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** `portcullis serve` on `data`; resolves once /v2/ answers. */
async function startServer(data: string): Promise<{ client: PushClient; log: () => string }> {
  const port = await freePort();
  const password = 'lock-test-password';
  const server = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--no-gate'], {
    env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: password, PORTCULLIS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(server);
  let log = '';
  server.stdout.on('data', (d: Buffer) => (log += d.toString()));
  server.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const client = PushClient.basic(`http://127.0.0.1:${port}`, 'admin', password);
  for (const deadline = Date.now() + 20_000; (await client.call('GET', '/v2/').then((r) => r.status, () => 0)) !== 200; ) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { client, log: () => log };
}

/** Another process takes the metadata database's write lock and keeps it `ms`; resolves when it holds it, with the time and its end. */
async function holdWriteLock(data: string, ms: number): Promise<{ locked: number; released: Promise<unknown> }> {
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const db = require('better-sqlite3')(process.argv[1]);
       db.exec('begin immediate');
       process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('commit'); db.close(); }, ${ms});`,
      join(data, 'registry', 'meta.sqlite'),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(holder);
  const released = new Promise((resolve) => holder.once('exit', resolve));
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  return { locked: Date.now(), released };
}

describe('several processes on one data folder', () => {
  it.skipIf(!BUILT)(`processes that open a new data folder at once all migrate it, and none fails${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`, { timeout: 20_000 }, async () => {
    // `user list` opens (and so migrates) the metadata and writes nothing: the race is all there is.
    for (let round = 0; round < 2; round++) {
      const data = await freshDir();
      const runs = await Promise.all([1, 2, 3, 4].map(() => run([BIN, 'user', 'list', '--data', data])));
      for (const r of runs) expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
      const meta = await SqliteRegistryMetadata.open(data);
      expect(await meta.listUsers()).toEqual([]);
      await meta.close();
    }
  });

  it('a write transaction that reads first waits for another process writing, instead of failing with "database is locked"', { timeout: 10_000 }, async () => {
    const data = await freshDir();
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      // Another process takes the write lock, holds it briefly and commits a change.
      const holder = spawn(
        process.execPath,
        [
          '-e',
          `const db = require('better-sqlite3')(process.argv[1]);
           db.pragma('busy_timeout = 5000');
           db.exec("begin immediate; insert into gc_activity (digest, touched_at) values ('sha256:other', '2026-01-01T00:00:00.000Z')");
           process.stdout.write('locked\\n');
           setTimeout(() => { db.exec('commit'); db.close(); }, 300);`,
          join(data, 'registry', 'meta.sqlite'),
        ],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((resolve) => holder.on('exit', resolve));
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      // putVerdicts reads the previous status before it writes: begun DEFERRED, its snapshot was
      // stale once the other process committed, and SQLite refused it without waiting.
      const previous = await meta.artifacts.putVerdicts([{ repository: 'p/r', digest: 'sha256:aa', status: 'pass', verdict: '{}', evaluatedAt: new Date().toISOString() }]);
      expect(previous).toEqual([null]);
      await exited;
      expect((await meta.artifacts.getVerdict('p/r', 'sha256:aa'))?.status).toBe('pass');
      expect(await meta.touchedSince('2000-01-01T00:00:00.000Z')).toContain('sha256:other');
    } finally {
      await meta.close();
    }
  });

  it.skipIf(!BUILT)(
    `while another process holds the write lock, the server keeps answering reads; a write waits for the lock without stopping them${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`,
    { timeout: 30_000 },
    async () => {
      const data = await freshDir();
      const { client, log } = await startServer(data);
      const image = imageOf([randomLayer(4096)], 'lock');
      await pushImage(client, 'lib/held', 'v1', image);

      // Another process (a `portcullis gc`, a script) takes the write lock and keeps it 2 s.
      const HOLD_MS = 2000;
      const { locked } = await holdWriteLock(data, HOLD_MS);
      // Opening an upload writes a row: it must wait for the lock, and then succeed.
      const write = client.call('POST', '/v2/lib/held/blobs/uploads/').then((r) => ({ status: r.status, ms: Date.now() - locked }));
      await new Promise((r) => setTimeout(r, 200));
      // Requests that only read, sent while the write waits. SQLite's busy timeout waited inside
      // the synchronous call, so these took until the lock was released (about 1.8 s).
      const reads: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        expect((await client.call('GET', '/v2/')).status).toBe(200);
        expect(await verifyImage(client, 'lib/held', 'v1', image)).toEqual([]);
        reads.push(Date.now() - started);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(Date.now() - locked).toBeLessThan(HOLD_MS);
      // Under SQLite's busy timeout each read waited for the lock (about 1.8 s); 1 s leaves room for
      // a loaded CI machine without letting that through.
      expect(Math.max(...reads), `read latencies ${reads.join(', ')} ms`).toBeLessThan(1000);
      const done = await write;
      expect(done.status).toBe(202);
      expect(done.ms).toBeGreaterThanOrEqual(HOLD_MS - 100);
      expect(log()).not.toContain('database is locked');
    },
  );

  it.skipIf(!BUILT)(
    `a write that cannot have the lock within 5 s is answered 503 with Retry-After, in words, and logged in one line${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`,
    { timeout: 30_000 },
    async () => {
      const data = await freshDir();
      const { client, log } = await startServer(data);
      // The first push to a project creates it; that is done before the lock is taken.
      expect((await client.call('POST', '/v2/lib/held/blobs/uploads/')).status).toBe(202);
      // Well past the 5 s wait, so that a slow machine cannot see the lock released in time.
      const { released } = await holdWriteLock(data, 9000);
      const refused = await client.call('POST', '/v2/lib/held/blobs/uploads/');
      // It was a 500 "internal error; see the server log", with a stack trace in that log.
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(JSON.parse(refused.body.toString()).errors[0].message).toMatch(/metadata database is busy: another process .* held its write lock for longer than 5 s; try again/);
      // The log line comes through a pipe, maybe after the answer.
      for (const deadline = Date.now() + 5000; !log().includes('request refused with 503') && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(log()).toContain('request refused with 503: another process held the metadata database');
      expect(log()).not.toContain('registry request failed');
      await released;
      expect((await client.call('POST', '/v2/lib/held/blobs/uploads/')).status).toBe(202);
    },
  );
});

