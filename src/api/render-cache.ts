import type { ServerResponse } from 'node:http';
import { BudgetAbandonedError, BudgetBusyError, ByteBudget } from '../registry/byte-budget.js';
import { ApiError } from './http.js';

/** Total bytes of rendered documents kept (SBOMs); least recently used go first. */
export const RENDER_CACHE_BYTES = 128 * 1024 * 1024;
/** Renders (decode, match, write) under way at once; the rest wait. */
export const RENDERS_AT_ONCE = 2;
/** Renders that may wait for a slot; past that a request gets 429. */
export const RENDERS_WAITING = 16;
/** What a refused render's `Retry-After` says, in seconds. */
export const RENDER_RETRY_AFTER = 2;

/** What a render whose requests have all gone ends with (nobody receives it; 499 as nginx logs it). */
export function clientGone(): ApiError {
  return new ApiError(499, 'CLIENT_CLOSED_REQUEST', 'the client went away before its document was ready');
}

/** A signal that fires when the client of `res` goes away before the response has been sent. */
export function untilClientGone(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  const gone = () => {
    if (!res.writableEnded) controller.abort(clientGone());
  };
  if (res.destroyed) gone();
  else res.once('close', gone);
  return controller.signal;
}

/**
 * Between two steps of a render (decode, match, write): lets pending I/O run, a client's close
 * among it (each step holds the event loop for up to a second on a large image), then throws if
 * nobody waits for the result any more.
 */
export async function nextStep(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  signal.throwIfAborted();
}

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

  /**
   * Runs `work` in a slot. With `signal`, a work whose signal has fired by its turn never starts
   * (it gives up its place), and `work` gets the signal to stop at its next step (see nextStep).
   */
  async run<T>(work: (signal?: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    try {
      return await this.slots.run(1, () => work(signal), () => signal?.aborted !== true);
    } catch (err) {
      if (err instanceof BudgetAbandonedError) throw clientGone();
      if (!(err instanceof BudgetBusyError)) throw err;
      throw new ApiError(429, 'TOO_MANY_REQUESTS', `${this.active} documents are being rendered and ${this.waiting} wait; try again shortly`, {
        headers: { 'retry-after': String(RENDER_RETRY_AFTER) },
      });
    }
  }
}

interface Inflight {
  done: Promise<Buffer>;
  /** Requests still waiting for it; when the last goes, the render is stopped. */
  waiting: number;
  stop: AbortController;
}

/**
 * Rendered documents with their inputs as the key: a cached copy when there is one, else one
 * render per key however many requests ask at once (they share its result), under the limiter.
 * A render stops (or never starts) once every request that wanted it has gone.
 */
export class DocumentRenderer {
  private readonly inflight = new Map<string, Inflight>();

  constructor(
    readonly cache = new RenderedCache(),
    readonly limiter = new RenderLimiter(),
  ) {}

  /**
   * `render` says whether its document may be kept under `key` (false when an input moved on
   * meanwhile), and should stop at `nextStep` between its steps. `signal`: the request's client
   * has gone (untilClientGone); without it the request counts as waiting until the end.
   */
  async get(key: string, render: (signal: AbortSignal) => Promise<{ doc: Buffer; keep: boolean }>, signal?: AbortSignal): Promise<Buffer> {
    const hit = this.cache.get(key);
    if (hit) return hit;
    signal?.throwIfAborted();
    let entry = this.inflight.get(key);
    if (!entry) {
      const stop = new AbortController();
      const done = this.limiter.run(() => render(stop.signal), stop.signal).then(({ doc, keep }) => {
        if (keep) this.cache.set(key, doc);
        return doc;
      });
      const started: Inflight = { done, waiting: 0, stop };
      this.inflight.set(key, started);
      const forget = () => {
        if (this.inflight.get(key) === started) this.inflight.delete(key);
      };
      done.then(forget, forget);
      entry = started;
    }
    const mine = entry;
    mine.waiting++;
    let left = false;
    const leave = () => {
      left = true;
      if (--mine.waiting > 0) return;
      // A later request for the same document starts a render of its own.
      if (this.inflight.get(key) === mine) this.inflight.delete(key);
      mine.stop.abort(clientGone());
    };
    signal?.addEventListener('abort', leave, { once: true });
    try {
      return await mine.done;
    } finally {
      signal?.removeEventListener('abort', leave);
      if (!left) mine.waiting--;
    }
  }
}
