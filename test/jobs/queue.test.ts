import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobRunner } from '../../src/jobs/index.js';
import { SqliteRegistryMetadata, type JobRecord } from '../../src/store/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let meta: SqliteRegistryMetadata;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-jobs-'));
  meta = await SqliteRegistryMetadata.open(dir);
});
afterEach(async () => {
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the durable job queue', () => {
  it('claims by priority then age, only the kinds asked for, and keeps one job per key while it is pending', async () => {
    const q = meta.jobs;
    const bulk1 = await q.enqueue('reevaluate', { n: 1 });
    const bulk2 = await q.enqueue('reevaluate', { n: 2 });
    const push = await q.enqueue('analyse', { digest: 'sha256:a' }, { key: 'analyse:a', priority: 10 });
    const again = await q.enqueue('analyse', { digest: 'sha256:a' }, { key: 'analyse:a', priority: 20 });
    expect(again.id).toBe(push.id);
    expect((await q.get(push.id))?.priority).toBe(20);
    await q.enqueue('other', {});
    expect((await q.claim('w', ['analyse', 'reevaluate'], 60_000))?.id).toBe(push.id);
    expect((await q.claim('w', ['analyse', 'reevaluate'], 60_000))?.id).toBe(bulk1.id);
    expect((await q.claim('w', ['analyse', 'reevaluate'], 60_000))?.id).toBe(bulk2.id);
    expect(await q.claim('w', ['analyse', 'reevaluate'], 60_000)).toBeNull();
    expect(await q.counts()).toEqual({ queued: 1, running: 3, done: 0, failed: 0 });
    // Once finished, the same key is new work again.
    expect(await q.complete(push.id, 'w')).toBe(true);
    expect((await q.enqueue('analyse', {}, { key: 'analyse:a' })).id).not.toBe(push.id);
  });

  it('gives a job whose worker died to another worker when its lease expires, and fences the old one off', async () => {
    const q = meta.jobs;
    const job = await q.enqueue('analyse', { x: 1 }, { maxAttempts: 3 });
    expect((await q.claim('dead', ['analyse'], 100))?.attempts).toBe(1);
    expect(await q.claim('alive', ['analyse'], 100)).toBeNull();
    await sleep(150);
    const again = await q.claim('alive', ['analyse'], 60_000);
    expect(again).toMatchObject({ id: job.id, attempts: 2, leaseOwner: 'alive', state: 'running' });
    expect(await q.heartbeat(job.id, 'dead', 1000)).toBe(false);
    expect(await q.complete(job.id, 'dead')).toBe(false);
    expect(await q.complete(job.id, 'alive')).toBe(true);
    expect((await q.get(job.id))?.state).toBe('done');
  });

  it('fails a job for good when its lease expires on the last attempt (a job that kills its worker cannot loop)', async () => {
    const q = meta.jobs;
    const job = await q.enqueue('analyse', {}, { maxAttempts: 1 });
    await q.claim('w1', ['analyse'], 50);
    await sleep(80);
    expect(await q.claim('w2', ['analyse'], 50)).toBeNull();
    expect(await q.get(job.id)).toMatchObject({ state: 'failed', lastError: expect.stringMatching(/lease expired/) });
  });

  it('retries a failed attempt after its delay and gives up after the last one', async () => {
    const q = meta.jobs;
    const job = await q.enqueue('analyse', {}, { maxAttempts: 2 });
    await q.claim('w', ['analyse'], 60_000);
    expect(await q.fail(job.id, 'w', 'boom 1', 100)).toBe('queued');
    expect(await q.claim('w', ['analyse'], 60_000)).toBeNull();
    await sleep(120);
    expect((await q.claim('w', ['analyse'], 60_000))?.attempts).toBe(2);
    expect(await q.fail(job.id, 'w', 'boom 2', 100)).toBe('failed');
    expect(await q.get(job.id)).toMatchObject({ state: 'failed', lastError: 'boom 2' });
    expect(await q.prune(new Date(Date.now() + 1000).toISOString())).toBe(1);
    expect(await q.get(job.id)).toBeNull();
  });

  it('keeps queued jobs across a restart of the database', async () => {
    await meta.jobs.enqueue('analyse', { digest: 'sha256:b' }, { priority: 10 });
    await meta.close();
    meta = await SqliteRegistryMetadata.open(dir);
    expect((await meta.jobs.claim('w', ['analyse'], 1000))?.payload).toEqual({ digest: 'sha256:b' });
  });
});

describe('the job runner', () => {
  it('runs what is queued, retries a failing handler with backoff, and stops cleanly', async () => {
    const seen: string[] = [];
    let failuresLeft = 2;
    const runner = new JobRunner({
      store: meta.jobs,
      pollMs: 20,
      retryBaseMs: 10,
      handlers: {
        flaky: async (job) => {
          seen.push(`flaky#${job.attempts}`);
          if (failuresLeft-- > 0) throw new Error('not yet');
        },
        ok: async (job) => {
          seen.push(`ok:${(job.payload as { n: number }).n}`);
        },
      },
    });
    const flaky = await meta.jobs.enqueue('flaky', {});
    await meta.jobs.enqueue('ok', { n: 1 });
    runner.start();
    for (let i = 0; i < 200 && (await meta.jobs.counts()).done < 2; i++) await sleep(20);
    await runner.stop();
    expect(seen).toEqual(expect.arrayContaining(['flaky#1', 'flaky#2', 'flaky#3', 'ok:1']));
    expect(await meta.jobs.get(flaky.id)).toMatchObject({ state: 'done', attempts: 3 });
  });

  it('runs an interactive job before queued bulk work, and renews the lease of a long job', async () => {
    const order: string[] = [];
    let release!: () => void;
    const blocker = new Promise<void>((r) => (release = r));
    const runner = new JobRunner({
      store: meta.jobs,
      pollMs: 10,
      leaseMs: 150,
      handlers: {
        bulk: async (job: JobRecord) => {
          order.push(`bulk${(job.payload as { n: number }).n}`);
          if ((job.payload as { n: number }).n === 0) await blocker;
        },
        push: async () => {
          order.push('push');
        },
      },
    });
    await meta.jobs.enqueue('bulk', { n: 0 });
    runner.start();
    for (let i = 0; i < 100 && order.length === 0; i++) await sleep(10);
    for (let n = 1; n <= 5; n++) await meta.jobs.enqueue('bulk', { n });
    await meta.jobs.enqueue('push', {}, { priority: 10 });
    // Longer than the lease: the heartbeat must keep the job this worker's.
    await sleep(400);
    expect(await meta.jobs.claim('thief', ['bulk'], 1000)).toMatchObject({ kind: 'bulk', payload: { n: 1 } });
    release();
    for (let i = 0; i < 200 && !order.includes('bulk5'); i++) await sleep(10);
    await runner.stop();
    expect(order.slice(0, 3)).toEqual(['bulk0', 'push', 'bulk2']);
    expect((await meta.jobs.list({ kind: 'bulk', state: 'done' })).map((j) => (j.payload as { n: number }).n).sort()).toEqual([0, 2, 3, 4, 5]);
  });
});
