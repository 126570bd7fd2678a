import { LoginBusyError } from '../auth/rate-limit.js';

export interface LoginGateOptions {
  /** Password checks that may run at once; default 2, half of libuv's default threadpool. */
  maxConcurrent?: number;
  /** Checks that may wait for a turn; past this a login is answered "busy". Default 256. */
  maxQueued?: number;
  /**
   * Checks with different passwords that one address may have under way for one name; default 5,
   * the failures after which the rate limiter locks the pair out anyway.
   */
  maxPerSource?: number;
  /**
   * Checks one address may have under way or waiting, over all names; default 32. Without it one
   * address trying five passwords for each of many made-up names (each still costs a check, so
   * that unknown names answer as slowly as known ones) would fill the queue and turn away every
   * other address's logins.
   */
  maxPerAddress?: number;
}

/** Names are cut as the failed-login limiter cuts them, so both count the same sources. */
const MAX_NAME_LENGTH = 256;

/**
 * Bounds the slow part of logins (scrypt: tens of milliseconds of a threadpool thread and 32 MiB
 * each). The failed-login limiter only counts failures once they are known, so a burst of guesses
 * sent in parallel all reached scrypt before the first one failed, and each took a threadpool
 * thread that the registry's file reads and writes need too. Here at most `maxConcurrent` checks
 * run, the rest wait in order, and one address trying many passwords for one name at once, or
 * many logins at once over all names, is told to slow down instead of being queued. Parallel requests with the same password do not count
 * against the per-source bound: AccessControl shares one check between them.
 */
export class LoginGate {
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly maxPerSource: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly maxPerAddress: number;
  private readonly perSource = new Map<string, number>();
  private readonly perAddress = new Map<string, number>();

  constructor(options: LoginGateOptions = {}) {
    this.maxConcurrent = options.maxConcurrent ?? 2;
    this.maxQueued = options.maxQueued ?? 256;
    this.maxPerSource = options.maxPerSource ?? 5;
    this.maxPerAddress = options.maxPerAddress ?? 32;
  }

  /**
   * Runs `check` when a slot is free; throws LoginBusyError when this address and name, this
   * address, or the queue is over its bound.
   */
  async run<T>(address: string, name: string, check: () => Promise<T>): Promise<T> {
    const source = `${address}\u0000${name.slice(0, MAX_NAME_LENGTH)}`;
    const pending = this.perSource.get(source) ?? 0;
    if (pending >= this.maxPerSource) {
      throw new LoginBusyError('too many logins for this user from this address are being checked at once; retry in 1 second');
    }
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= this.maxPerAddress) {
      throw new LoginBusyError('too many logins from this address are being checked at once; retry in 1 second');
    }
    if (this.running >= this.maxConcurrent && this.waiting.length >= this.maxQueued) {
      throw new LoginBusyError('too many logins are being checked at once; retry in 1 second');
    }
    this.perSource.set(source, pending + 1);
    this.perAddress.set(address, fromAddress + 1);
    try {
      if (this.running >= this.maxConcurrent) await new Promise<void>((resolve) => this.waiting.push(resolve));
      else this.running++;
      try {
        return await check();
      } finally {
        // The slot passes straight to the next in line, so `running` never drops below while others wait.
        const next = this.waiting.shift();
        if (next) next();
        else this.running--;
      }
    } finally {
      release(this.perSource, source);
      release(this.perAddress, address);
    }
  }

  /** Checks running and waiting now (for tests). */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}

function release(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
