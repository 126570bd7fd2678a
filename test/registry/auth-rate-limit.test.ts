import { describe, expect, it } from 'vitest';
import { LoginRateLimiter } from '../../src/registry/auth/rate-limit.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('LoginRateLimiter', () => {
  it('locks a (client, user) pair after 5 failures for the rest of the window', () => {
    const c = clock();
    const limiter = new LoginRateLimiter({ now: c.now });
    for (let i = 0; i < 5; i++) {
      expect(limiter.check('10.0.0.1', 'alice')).toEqual({ allowed: true });
      limiter.recordFailure('10.0.0.1', 'alice');
      c.advance(10_000);
    }
    // First failure at t0, now t0+50 s: the lock lifts at t0+300 s.
    expect(limiter.check('10.0.0.1', 'alice')).toEqual({ allowed: false, retryAfterSeconds: 250 });
    // Other users from the same address and the same user elsewhere are untouched.
    expect(limiter.check('10.0.0.1', 'bob').allowed).toBe(true);
    expect(limiter.check('10.0.0.2', 'alice').allowed).toBe(true);
    // The window slides: once the oldest failure ages out, one more attempt is allowed.
    c.advance(250_000);
    expect(limiter.check('10.0.0.1', 'alice').allowed).toBe(true);
    limiter.recordFailure('10.0.0.1', 'alice');
    expect(limiter.check('10.0.0.1', 'alice')).toEqual({ allowed: false, retryAfterSeconds: 10 });
  });

  it('forgets the failures of a pair on success', () => {
    const limiter = new LoginRateLimiter({ maxFailures: 3 });
    limiter.recordFailure('ip', 'u');
    limiter.recordFailure('ip', 'u');
    limiter.recordSuccess('ip', 'u');
    limiter.recordFailure('ip', 'u');
    limiter.recordFailure('ip', 'u');
    expect(limiter.check('ip', 'u').allowed).toBe(true);
    expect(limiter.size).toBe(1);
  });

  it('tells onRefused of each attempt it refuses, and of no other', () => {
    const refused: string[] = [];
    const limiter = new LoginRateLimiter({
      maxFailures: 2,
      onRefused: (ip, user) => refused.push(`${ip} ${user}`),
    });
    limiter.recordFailure('ip', 'u');
    expect(limiter.check('ip', 'u').allowed).toBe(true);
    limiter.recordFailure('ip', 'u');
    expect(limiter.check('ip', 'u').allowed).toBe(false);
    expect(limiter.check('ip', 'u').allowed).toBe(false);
    expect(limiter.check('other', 'u').allowed).toBe(true);
    expect(refused).toEqual(['ip u', 'ip u']);
  });

  it('stays within its memory bound, evicting the least recently failed pairs first', () => {
    const limiter = new LoginRateLimiter({ maxEntries: 100, maxFailures: 1 });
    limiter.recordFailure('ip', 'victim');
    for (let i = 0; i < 1000; i++) {
      limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
      expect(limiter.size).toBeLessThanOrEqual(100);
    }
    expect(limiter.check('ip', 'victim').allowed).toBe(true); // evicted long ago
    expect(limiter.check('10.0.3.231', 'user999').allowed).toBe(false); // the newest stays
  });

  it('sweeps expired pairs before evicting live ones', () => {
    const c = clock();
    const limiter = new LoginRateLimiter({ maxEntries: 10, maxFailures: 1, windowMs: 1000, now: c.now });
    for (let i = 0; i < 9; i++) limiter.recordFailure('ip', `old${i}`);
    c.advance(500);
    limiter.recordFailure('ip', 'live');
    c.advance(600); // the old ones have expired, 'live' has not
    limiter.recordFailure('ip', 'new1');
    limiter.recordFailure('ip', 'new2');
    expect(limiter.size).toBe(3);
    expect(limiter.check('ip', 'live').allowed).toBe(false);
  });

  it('refuses nonsense settings', () => {
    expect(() => new LoginRateLimiter({ maxFailures: 0 })).toThrow(RangeError);
    expect(() => new LoginRateLimiter({ windowMs: 1.5 })).toThrow(RangeError);
  });
});
