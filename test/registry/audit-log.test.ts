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
});
