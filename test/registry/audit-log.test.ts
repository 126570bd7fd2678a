import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/registry/access/index.js';
import type { AuditRecord, RegistryMetadata } from '../../src/store/index.js';

/** A metadata store whose audit writes fail while `failing` is set, as a full disk makes them. */
function flakyStore() {
  const written: AuditRecord[] = [];
  const state = { failing: true, attempts: 0 };
  const metadata = {
    appendAudit: async (rows: AuditRecord[]) => {
      state.attempts++;
      if (state.failing) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      written.push(...rows);
    },
  } as unknown as RegistryMetadata;
  return { metadata, written, state };
}

describe('audit log writer while the database fails', () => {
  it('reports a run of failures once, then once a minute, keeps every event, and says when it recovers', async () => {
    const { metadata, written, state } = flakyStore();
    let clock = 1_000_000;
    const errors: { pending: number; dropped: number }[] = [];
    const recoveries: { failedForMs: number; dropped: number }[] = [];
    const log = new AuditLog(metadata, {
      flushMs: 60_000,
      now: () => clock,
      onError: (_err, s) => errors.push(s),
      onRecover: (s) => recoveries.push(s),
    });
    const event = (n: number) => ({ action: 'pull' as const, principal: `user${n}`, outcome: 'ok' });

    log.record(event(1));
    await log.flush();
    expect(errors).toEqual([{ pending: 1, dropped: 0 }]);
    // Retries within the minute are not reported again.
    for (let i = 0; i < 30; i++) {
      clock += 1_000;
      log.record(event(i + 2));
      await log.flush();
    }
    expect(state.attempts).toBe(31);
    expect(errors).toHaveLength(1);
    clock += 30_001;
    await log.flush();
    expect(errors).toEqual([
      { pending: 1, dropped: 0 },
      { pending: 31, dropped: 0 },
    ]);

    state.failing = false;
    clock += 5_000;
    await log.flush();
    expect(recoveries).toEqual([{ failedForMs: 65_001, dropped: 0 }]);
    expect(written.map((r) => r.principal)).toEqual(Array.from({ length: 31 }, (_, i) => `user${i + 1}`));
    // A new run of failures is reported at once again.
    state.failing = true;
    log.record(event(99));
    await log.flush();
    expect(errors).toHaveLength(3);
    state.failing = false;
    await log.close();
    expect(written.at(-1)?.principal).toBe('user99');
  });

  it('counts what each outage dropped, and never drops unwritten events when the queue overflows during a write', async () => {
    const { metadata, state } = flakyStore();
    const recoveries: { failedForMs: number; dropped: number }[] = [];
    const log = new AuditLog(metadata, { flushMs: 60_000, maxBatch: 2, maxPending: 3, now: () => 0, onRecover: (s) => recoveries.push(s) });
    const event = (n: number) => ({ action: 'pull' as const, principal: `u${n}`, outcome: 'ok' });
    for (const run of [0, 1]) {
      state.failing = true;
      log.record(event(run * 10));
      await log.flush(); // the outage begins
      for (let i = 1; i <= 5; i++) log.record(event(run * 10 + i)); // 6 queued, 3 over the cap
      state.failing = false;
      await log.flush();
    }
    // Each outage's own drops, not the process's total (3, then 6).
    expect(recoveries.map((r) => r.dropped)).toEqual([3, 3]);

    // A write in flight while the overflow trims its batch from the front: the events behind the
    // batch were never written and must stay queued.
    const waiting: (() => void)[] = [];
    const slowWritten: string[] = [];
    const slow = {
      appendAudit: async (rows: AuditRecord[]) => {
        await new Promise<void>((resolve) => waiting.push(resolve));
        slowWritten.push(...rows.map((r) => r.principal));
      },
    } as unknown as RegistryMetadata;
    const queued = new AuditLog(slow, { flushMs: 60_000, maxBatch: 2, maxPending: 3 });
    queued.record(event(1));
    queued.record(event(2)); // a full batch: its write starts
    await new Promise((r) => setImmediate(r));
    expect(waiting).toHaveLength(1);
    for (const n of [3, 4, 5]) queued.record(event(n)); // five queued: the cap trims u1 and u2
    const closing = queued.close();
    for (let i = 0; i < 20; i++) {
      waiting.splice(0).forEach((release) => release());
      await new Promise((r) => setImmediate(r));
    }
    await closing;
    expect(slowWritten).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
  });
});
