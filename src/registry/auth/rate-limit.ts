export interface LoginRateLimiterOptions {
  /** Failures allowed inside the window before further attempts are refused; default 5. */
  maxFailures?: number;
  /** The sliding window, in milliseconds; default 5 minutes. */
  windowMs?: number;
  /** How many (client, username) pairs to remember; the least recently used go first. Default 10,000. */
  maxEntries?: number;
  /** The clock, for tests. */
  now?: () => number;
  /** Told of each attempt refused because its pair is locked out (for the audit log). */
  onRefused?: (clientIp: string, username: string) => void;
}

export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

// Usernames are attacker-chosen; bounding the key keeps a flood of huge names from eating memory.
const MAX_KEY_USERNAME_LENGTH = 256;

/**
 * Failed-login limiting per (client IP, username): after `maxFailures` failures inside a sliding
 * window, further attempts for that pair are refused until the oldest failure leaves the window. A
 * success clears the pair. Checking happens before the password is verified, so a locked-out
 * attacker learns nothing from further guesses, not even through timing.
 *
 * Memory is bounded: a Map in recency order serves as an LRU; when it overflows, expired pairs are
 * swept and then the least recently touched pairs evicted. No timers run, so nothing
 * needs stopping. Eviction means an attacker spraying more than `maxEntries` pairs can make the
 * limiter forget some of them; the limit is a brake on guessing, not the only defence.
 */
export class LoginRateLimiter {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxEntries: number;
  private readonly now: () => number;
  private readonly onRefused?: (clientIp: string, username: string) => void;
  /** Failure times per key, oldest first, never more than maxFailures of them. */
  private readonly failures = new Map<string, number[]>();

  constructor(options: LoginRateLimiterOptions = {}) {
    this.maxFailures = positiveInteger(options.maxFailures ?? 5, 'maxFailures');
    this.windowMs = positiveInteger(options.windowMs ?? 5 * 60_000, 'windowMs');
    this.maxEntries = positiveInteger(options.maxEntries ?? 10_000, 'maxEntries');
    this.now = options.now ?? Date.now;
    this.onRefused = options.onRefused;
  }

  /** Whether an attempt for this pair may go ahead; call before checking the password. */
  check(clientIp: string, username: string): RateLimitDecision {
    const key = keyOf(clientIp, username);
    const times = this.live(key);
    if (times === undefined || times.length < this.maxFailures) return { allowed: true };
    const oldest = times[0] as number;
    const waitMs = oldest + this.windowMs - this.now();
    this.onRefused?.(clientIp, username.slice(0, MAX_KEY_USERNAME_LENGTH));
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  recordFailure(clientIp: string, username: string): void {
    const key = keyOf(clientIp, username);
    const times = this.live(key) ?? [];
    times.push(this.now());
    // Only the newest maxFailures matter: they decide both the lock and when it lifts.
    if (times.length > this.maxFailures) times.splice(0, times.length - this.maxFailures);
    this.failures.delete(key); // re-insert to mark as most recently used
    this.failures.set(key, times);
    if (this.failures.size > this.maxEntries) this.shrink();
  }

  recordSuccess(clientIp: string, username: string): void {
    this.failures.delete(keyOf(clientIp, username));
  }

  /** How many pairs are remembered (for tests and metrics). */
  get size(): number {
    return this.failures.size;
  }

  /** The pair's failures still inside the window, dropping the pair once none are. */
  private live(key: string): number[] | undefined {
    const times = this.failures.get(key);
    if (times === undefined) return undefined;
    const cutoff = this.now() - this.windowMs;
    while (times.length > 0 && (times[0] as number) <= cutoff) times.shift();
    if (times.length === 0) {
      this.failures.delete(key);
      return undefined;
    }
    return times;
  }

  private shrink(): void {
    const cutoff = this.now() - this.windowMs;
    for (const [key, times] of this.failures) {
      // The newest failure is last; if it has left the window, the whole pair has.
      if ((times[times.length - 1] ?? 0) <= cutoff) this.failures.delete(key);
    }
    // Map iteration follows insertion order, which recordFailure keeps as recency order. Evicting
    // down to 90% rather than to the cap spreads the cost of the sweep over many insertions.
    const target = Math.max(1, Math.floor(this.maxEntries * 0.9));
    for (const key of this.failures.keys()) {
      if (this.failures.size <= target) break;
      this.failures.delete(key);
    }
  }
}

function keyOf(clientIp: string, username: string): string {
  // NUL cannot occur in an IP address, so the pair is unambiguous.
  return `${clientIp}\u0000${username.slice(0, MAX_KEY_USERNAME_LENGTH)}`;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${value}.`);
  return value;
}

/**
 * Thrown by a credential check that was not run because too many are under way (see
 * access/login-gate.ts); the endpoints answer it with 429 TOOMANYREQUESTS and Retry-After, and it
 * does not count as a failed login.
 */
export class LoginBusyError extends Error {
  override readonly name = 'LoginBusyError';
  readonly retryAfterSeconds = 1;
}
