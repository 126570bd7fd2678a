import { describe, expect, it } from 'vitest';
import { BudgetAbandonedError, BudgetBusyError, BudgetShares, ByteBudget } from '../../src/registry/byte-budget.js';

/** A task that runs until released, recording when it started. */
function held(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return {
    task: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
      return name;
    },
    release: () => release(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ByteBudget', () => {
  it('runs claims that fit at once and makes the next wait until room is returned', async () => {
    const budget = new ByteBudget(100, 10);
    const log: string[] = [];
    const a = held(log, 'a');
    const b = held(log, 'b');
    const c = held(log, 'c');
    const ra = budget.run(60, a.task);
    const rb = budget.run(40, b.task);
    const rc = budget.run(10, c.task);
    await tick();
    expect(log).toEqual(['start a', 'start b']);
    expect(budget.bytesInUse).toBe(100);
    expect(budget.waitingCount).toBe(1);
    b.release();
    await rb;
    await tick();
    expect(log).toContain('start c');
    a.release();
    c.release();
    expect(await Promise.all([ra, rc])).toEqual(['a', 'c']);
    expect(budget.bytesInUse).toBe(0);
  });

  it('lets a small claim past a large one that does not fit yet', async () => {
    const budget = new ByteBudget(100, 10);
    const log: string[] = [];
    const a = held(log, 'a');
    const big = held(log, 'big');
    const small = held(log, 'small');
    const ra = budget.run(50, a.task);
    const rbig = budget.run(80, big.task);
    const rsmall = budget.run(10, small.task);
    await tick();
    // A slow large push must not stall every small one behind it.
    expect(log).toEqual(['start a', 'start small']);
    small.release();
    await rsmall;
    a.release();
    await ra;
    await tick();
    expect(log).toContain('start big');
    big.release();
    await rbig;
  });

  it('stops letting smaller claims past once a large one has waited its share', async () => {
    // overtakeMs 0: the large waiter is due at once, so the small one queues behind it.
    const budget = new ByteBudget(100, 10, 0);
    const log: string[] = [];
    const a = held(log, 'a');
    const big = held(log, 'big');
    const small = held(log, 'small');
    const ra = budget.run(50, a.task);
    const rbig = budget.run(80, big.task);
    const rsmall = budget.run(10, small.task);
    await tick();
    expect(log).toEqual(['start a']);
    a.release();
    await ra;
    await tick();
    expect(log).toEqual(['start a', 'end a', 'start big', 'start small']);
    big.release();
    small.release();
    await Promise.all([rbig, rsmall]);
  });

  it('runs a claim larger than the whole budget alone', async () => {
    const budget = new ByteBudget(100, 10);
    const log: string[] = [];
    const huge = held(log, 'huge');
    const next = held(log, 'next');
    const rh = budget.run(10_000, huge.task);
    const rn = budget.run(1, next.task);
    await tick();
    expect(log).toEqual(['start huge']);
    huge.release();
    await rh;
    await tick();
    expect(log).toContain('start next');
    next.release();
    await rn;
  });

  it('refuses at once when the line is full, and drops waiters whose client has gone', async () => {
    const budget = new ByteBudget(10, 2);
    const log: string[] = [];
    const a = held(log, 'a');
    const ra = budget.run(10, a.task);
    let goneW1 = false;
    const w1 = budget.run(10, async () => 'w1', () => !goneW1);
    const w2 = budget.run(10, async () => 'w2');
    await expect(budget.run(10, async () => 'w3')).rejects.toBeInstanceOf(BudgetBusyError);
    // With a waiter gone, the full line makes room for a new one by dropping it.
    goneW1 = true;
    const w3 = budget.run(10, async () => 'w3');
    await expect(w1).rejects.toBeInstanceOf(BudgetAbandonedError);
    a.release();
    expect(await Promise.all([ra, w2, w3])).toEqual(['a', 'w2', 'w3']);
    expect(budget.bytesInUse).toBe(0);
    expect(budget.waitingCount).toBe(0);
  });

  it('returns the claim when a task fails', async () => {
    const budget = new ByteBudget(10, 2);
    await expect(budget.run(10, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(budget.bytesInUse).toBe(0);
    expect(await budget.run(10, async () => 'after')).toBe('after');
  });
});

describe('BudgetShares', () => {
  it('lets a holder with nothing claimed take one claim, then up to its share, and counts per holder', () => {
    const shares = new BudgetShares(100);
    expect(shares.take('p', 150)).toBe(true);
    expect(shares.take('p', 1)).toBe(false);
    expect(shares.held('p')).toBe(150);
    shares.give('p', 150);
    expect(shares.take('p', 60)).toBe(true);
    expect(shares.take('p', 40)).toBe(true);
    expect(shares.take('p', 1)).toBe(false);
    expect(shares.take('q', 100)).toBe(true);
    shares.give('p', 60);
    expect(shares.held('p')).toBe(40);
    expect(shares.take('p', 60)).toBe(true);
    shares.give('p', 100);
    expect(shares.held('p')).toBe(0);
  });
});
