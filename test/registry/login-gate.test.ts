import { describe, expect, it } from 'vitest';
import { LoginGate } from '../../src/registry/access/login-gate.js';
import { LoginBusyError } from '../../src/registry/auth/rate-limit.js';

/** A check that finishes when the test says so, recording how many ran at the same time. */
function controllable(state: { running: number; peak: number; order: string[] }, name: string) {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const check = async () => {
    state.running++;
    state.peak = Math.max(state.peak, state.running);
    state.order.push(name);
    await done;
    state.running--;
    return name;
  };
  return { check, finish };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('LoginGate', () => {
  it('runs at most maxConcurrent checks at once, the rest in the order they came', async () => {
    const gate = new LoginGate({ maxConcurrent: 2 });
    const state = { running: 0, peak: 0, order: [] as string[] };
    const checks = ['a', 'b', 'c', 'd', 'e'].map((n) => controllable(state, n));
    const results = checks.map((c, i) => gate.run(`10.0.0.${i}`, 'alice', c.check));
    await tick();
    expect(state.order).toEqual(['a', 'b']);
    expect(gate.load).toEqual({ running: 2, waiting: 3 });
    for (const c of checks) {
      c.finish();
      await tick();
    }
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(state.order).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(state.peak).toBe(2);
    expect(gate.load).toEqual({ running: 0, waiting: 0 });
  });

  it('refuses a source past maxPerSource checks under way, and takes it again once one ends', async () => {
    const gate = new LoginGate({ maxConcurrent: 1, maxPerSource: 2 });
    const state = { running: 0, peak: 0, order: [] as string[] };
    const [one, two] = [controllable(state, '1'), controllable(state, '2')];
    const first = gate.run('ip', 'alice', one.check);
    const second = gate.run('ip', 'alice', two.check);
    await expect(gate.run('ip', 'alice', async () => 'x')).rejects.toBeInstanceOf(LoginBusyError);
    // Another user from the same address is not affected.
    const bob = gate.run('ip', 'bob', async () => 'bob');
    one.finish();
    two.finish();
    expect(await Promise.all([first, second, bob])).toEqual(['1', '2', 'bob']);
    expect(await gate.run('ip', 'alice', async () => 'again')).toBe('again');
  });

  it('refuses an address past maxPerAddress checks over all names, so it cannot fill the queue for others', async () => {
    const gate = new LoginGate({ maxConcurrent: 1, maxQueued: 12, maxPerAddress: 10 });
    const state = { running: 0, peak: 0, order: [] as string[] };
    // One address tries twenty made-up names, one guess each: the first ten are taken, the rest
    // refused by the address's bound before they can take the queue's last places.
    const flood = Array.from({ length: 20 }, (_, i) => controllable(state, `n${i}`));
    const outcomes = flood.map((c, i) =>
      gate.run('10.0.0.66', `made-up-${i}`, c.check).then(
        () => 'checked',
        (e: Error) => e.message,
      ),
    );
    const alice = gate.run('192.0.2.1', 'alice', async () => 'alice');
    for (const c of flood) c.finish();
    expect(await alice).toBe('alice');
    const results = await Promise.all(outcomes);
    expect(results.filter((r) => r === 'checked')).toHaveLength(10);
    expect(results.filter((r) => /from this address/.test(r))).toHaveLength(10);
    expect(await gate.run('10.0.0.66', 'made-up-20', async () => 'later')).toBe('later');
  });

  it('refuses when the queue is full, and frees the slot of a check that throws', async () => {
    const gate = new LoginGate({ maxConcurrent: 1, maxQueued: 1 });
    const state = { running: 0, peak: 0, order: [] as string[] };
    const blocker = controllable(state, 'blocker');
    const running = gate.run('a', 'u', blocker.check);
    const queued = gate.run('b', 'u', async () => {
      throw new Error('store broke');
    });
    await expect(gate.run('c', 'u', async () => 'c')).rejects.toThrow(/too many logins are being checked at once/);
    blocker.finish();
    await running;
    await expect(queued).rejects.toThrow('store broke');
    expect(gate.load).toEqual({ running: 0, waiting: 0 });
    expect(await gate.run('c', 'u', async () => 'c')).toBe('c');
  });
});
