/**
 * Serialises work per key (a repository, an upload session) with a promise chain, so unrelated
 * keys never wait for each other: there is no global lock.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const current = previous.then(fn, fn);
    // The stored tail never rejects, so one failure does not poison the queue.
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await current;
    } finally {
      // Drop the entry once nothing queued behind us, so the map does not grow without bound.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** True when nothing runs or waits for `key`. */
  idle(key: string): boolean {
    return !this.tails.has(key);
  }

  get size(): number {
    return this.tails.size;
  }
}
