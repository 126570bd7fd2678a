import { randomUUID } from 'node:crypto';
import type { JobRecord, JobStore } from '../store/index.js';

/** What a job kind does. Throwing fails the attempt; it is retried with backoff while attempts remain. */
export type JobHandler = (job: JobRecord, signal: AbortSignal) => Promise<void>;

export interface JobRunnerOptions {
  store: JobStore;
  handlers: Record<string, JobHandler>;
  /** Jobs run at once (default 1: analysis is CPU-bound and this process also serves requests). */
  concurrency?: number;
  /** A claimed job is this worker's for this long, renewed while it runs (default 15 s: a crashed worker's job waits no longer). */
  leaseMs?: number;
  /** How often an idle runner looks for work that another process queued (default 1 s). */
  pollMs?: number;
  /** First retry delay; doubled per attempt, capped at 10 minutes (default 2 s). */
  retryBaseMs?: number;
  /** Failures and lost leases, for the log. */
  onError?: (err: unknown, job: JobRecord) => void;
  onDone?: (job: JobRecord, ms: number) => void;
  /** A job given back unfinished because the runner stopped; it runs again at the next start. */
  onReleased?: (job: JobRecord) => void;
  /** The worker's name in leases; unique per process by default. */
  owner?: string;
}

/**
 * Runs queued jobs: claims the most urgent one (priority, then age), renews its lease while the
 * handler works, and records the outcome. A job left `running` by a crashed process is claimed
 * again once its lease expires, so no job is lost and none stays running forever.
 */
export class JobRunner {
  private readonly owner: string;
  private stopping = false;
  private wake: (() => void) | undefined;
  private loops: Promise<void>[] = [];
  private readonly abort = new AbortController();

  constructor(private readonly options: JobRunnerOptions) {
    this.owner = options.owner ?? `worker-${process.pid}-${randomUUID().slice(0, 8)}`;
  }

  get kinds(): string[] {
    return Object.keys(this.options.handlers);
  }

  start(): void {
    const n = Math.max(1, this.options.concurrency ?? 1);
    for (let i = 0; i < n; i++) this.loops.push(this.loop());
  }

  /** Tells idle loops that work was just queued in this process (no need to wait for the poll). */
  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * Stops claiming and aborts the handlers' signal. A job whose handler then gives up is released
   * (queued again, the attempt not counted) rather than failed; waits for every job in progress to
   * finish, fail or be released.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.notify();
    await Promise.allSettled(this.loops);
  }

  private async idle(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.options.pollMs ?? 1000);
      timer.unref();
      const previous = this.wake;
      this.wake = done;
      function done() {
        clearTimeout(timer);
        previous?.();
        resolve();
      }
    });
  }

  private async loop(): Promise<void> {
    const leaseMs = this.options.leaseMs ?? 15_000;
    while (!this.stopping) {
      let job: JobRecord | null = null;
      try {
        job = await this.options.store.claim(this.owner, this.kinds, leaseMs);
      } catch (err) {
        this.options.onError?.(err, { id: 0, kind: 'claim' } as JobRecord);
      }
      if (!job) {
        await this.idle();
        continue;
      }
      await this.run(job, leaseMs);
    }
  }

  private async run(job: JobRecord, leaseMs: number): Promise<void> {
    const started = Date.now();
    const heartbeat = setInterval(() => {
      this.options.store.heartbeat(job.id, this.owner, leaseMs).catch((err: unknown) => this.options.onError?.(err, job));
    }, Math.max(50, Math.floor(leaseMs / 3)));
    heartbeat.unref();
    try {
      const handler = this.options.handlers[job.kind];
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler(job, this.abort.signal);
      clearInterval(heartbeat);
      await this.options.store.complete(job.id, this.owner);
      this.options.onDone?.(job, Date.now() - started);
    } catch (err) {
      clearInterval(heartbeat);
      if (this.stopping) {
        // Interrupted by the shutdown, not failed: counting it would fail for good a job that met
        // a few restarts in a row, and its error would read as if the content were at fault.
        const released = await this.options.store.release(job.id, this.owner).catch((e: unknown) => {
          this.options.onError?.(e, job);
          return false;
        });
        if (released) this.options.onReleased?.(job);
        return;
      }
      this.options.onError?.(err, job);
      const base = this.options.retryBaseMs ?? 2000;
      const delay = Math.min(base * 2 ** Math.max(0, job.attempts - 1), 10 * 60_000);
      await this.options.store
        .fail(job.id, this.owner, err instanceof Error ? err.message : String(err), delay)
        .catch((e: unknown) => this.options.onError?.(e, job));
    }
  }
}
