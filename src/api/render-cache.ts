import { BudgetBusyError, ByteBudget } from '../registry/byte-budget.js';
import { ApiError } from './http.js';

/** Total bytes of rendered documents kept (SBOMs); least recently used go first. */
export const RENDER_CACHE_BYTES = 128 * 1024 * 1024;
/** Renders (decode, match, write) under way at once; the rest wait. */
export const RENDERS_AT_ONCE = 2;
/** Renders that may wait for a slot; past that a request gets 429. */
export const RENDERS_WAITING = 16;
/** What a refused render's `Retry-After` says, in seconds. */
export const RENDER_RETRY_AFTER = 2;

/** Rendered documents by key, bounded in total bytes; a get makes an entry the most recently used. */
export class RenderedCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = RENDER_CACHE_BYTES) {}

  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** Keeps `value` unless it alone is larger than the bound, evicting the least recently used first. */
  set(key: string, value: Buffer): void {
    if (value.length > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.length;
    }
    while (this.bytes + value.length > this.maxBytes) {
      const [oldest, buf] = this.entries.entries().next().value as [string, Buffer];
      this.entries.delete(oldest);
      this.bytes -= buf.length;
    }
    this.entries.set(key, value);
    this.bytes += value.length;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}

/**
 * At most `active` renders at once and `waiting` queued; a render past that is refused with
 * 429 TOO_MANY_REQUESTS and `Retry-After`, so parallel requests for large SBOMs cannot hold
 * many decoded results in memory or keep the event loop busy for everyone else.
 */
export class RenderLimiter {
  // One unit per render: the registry's byte budget with every claim the same size is a
  // first-come queue with a bound on those waiting.
  private readonly slots: ByteBudget;

  constructor(
    private readonly active = RENDERS_AT_ONCE,
    private readonly waiting = RENDERS_WAITING,
  ) {
    this.slots = new ByteBudget(active, waiting);
  }

  /** Renders under way and waiting (for tests and diagnostics). */
  get load(): { running: number; waiting: number } {
    return { running: this.slots.bytesInUse, waiting: this.slots.waitingCount };
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await this.slots.run(1, work);
    } catch (err) {
      if (!(err instanceof BudgetBusyError)) throw err;
      throw new ApiError(429, 'TOO_MANY_REQUESTS', `${this.active} documents are being rendered and ${this.waiting} wait; try again shortly`, {
        headers: { 'retry-after': String(RENDER_RETRY_AFTER) },
      });
    }
  }
}

/**
 * Rendered documents with their inputs as the key: a cached copy when there is one, else one
 * render per key however many requests ask at once (they share its result), under the limiter.
 */
export class DocumentRenderer {
  private readonly inflight = new Map<string, Promise<Buffer>>();

  constructor(
    readonly cache = new RenderedCache(),
    readonly limiter = new RenderLimiter(),
  ) {}

  /** `render` says whether its document may be kept under `key` (false when an input moved on meanwhile). */
  async get(key: string, render: () => Promise<{ doc: Buffer; keep: boolean }>): Promise<Buffer> {
    const hit = this.cache.get(key);
    if (hit) return hit;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const started = this.limiter.run(render).then(({ doc, keep }) => {
      if (keep) this.cache.set(key, doc);
      return doc;
    });
    this.inflight.set(key, started);
    try {
      return await started;
    } finally {
      this.inflight.delete(key);
    }
  }
}
