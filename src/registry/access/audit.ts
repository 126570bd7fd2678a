import type { AuditRecord, RegistryMetadata } from '../../store/index.js';

export type AuditAction = 'push' | 'pull' | 'delete' | 'login' | 'login_failed' | 'token';

export interface AuditEvent {
  action: AuditAction;
  principal: string;
  repository?: string | null;
  reference?: string | null;
  digest?: string | null;
  clientIp?: string | null;
  outcome: string;
  detail?: string | null;
}

export interface AuditLogOptions {
  /** How long events wait for company before they are written; default 200 ms. */
  flushMs?: number;
  /** A batch this big is written at once; default 500. */
  maxBatch?: number;
  /** Events kept while the database is failing; older ones are dropped (and counted). */
  maxPending?: number;
  /**
   * Told of a failed write when writes start failing, then at most once per `reportEveryMs` while
   * they go on failing (a retry runs every second: a full disk would otherwise log a stack trace
   * every second for as long as it lasts).
   */
  onError?: (err: unknown, state: { pending: number; dropped: number }) => void;
  /** Told when a write succeeds again after failures: for how long they failed, what this run of failures dropped. */
  onRecover?: (state: { failedForMs: number; dropped: number }) => void;
  /** Default 60 s. */
  reportEveryMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/**
 * The audit log writer. `record` only queues: requests never wait for the database. Events are
 * written in batches (one multi-row INSERT per batch) on a short timer, and on `flush`/`close`.
 */
export class AuditLog {
  private pending: AuditRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  /** Events dropped because the queue overflowed while writes failed. */
  dropped = 0;
  /** When the current run of failed writes began, and when it was last reported. */
  private failingSince: number | null = null;
  private reportedAt = 0;
  /** `dropped` when the current run of failures began: what this outage dropped is the rest. */
  private droppedBefore = 0;
  /** Events removed from the front of `pending` by the overflow trim, ever (see flush). */
  private trimmed = 0;

  constructor(
    private readonly metadata: RegistryMetadata,
    private readonly options: AuditLogOptions = {},
  ) {
    this.flushMs = options.flushMs ?? 200;
    this.maxBatch = options.maxBatch ?? 500;
    this.maxPending = options.maxPending ?? 50_000;
  }

  record(event: AuditEvent): void {
    this.pending.push({
      time: new Date().toISOString(),
      principal: event.principal,
      action: event.action,
      repository: event.repository ?? null,
      reference: event.reference ?? null,
      digest: event.digest ?? null,
      clientIp: event.clientIp ?? null,
      outcome: event.outcome,
      detail: event.detail ?? null,
    });
    if (this.pending.length > this.maxPending) {
      const excess = this.pending.length - this.maxPending;
      this.pending.splice(0, excess);
      this.dropped += excess;
      this.trimmed += excess;
    }
    if (this.pending.length >= this.maxBatch) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs);
      // A queued event must not keep a finished CLI or test process alive; close() writes it.
      this.timer.unref();
    }
  }

  /** Writes everything queued so far; resolves once it is in the database. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Writes are chained so batches land in order and never overlap.
    this.writing = this.writing.then(async () => {
      while (this.pending.length > 0) {
        const batch = this.pending.slice(0, this.maxBatch);
        const trimmedBefore = this.trimmed;
        try {
          await this.metadata.appendAudit(batch);
          // The overflow trim may have removed some of the batch from the front meanwhile; only
          // what is still there was written, and nothing behind it may go.
          this.pending.splice(0, Math.max(0, batch.length - (this.trimmed - trimmedBefore)));
          this.recovered();
        } catch (err) {
          // Kept for the next attempt; the maxPending cap bounds the memory this can take.
          this.failed(err);
          if (!this.timer) {
            this.timer = setTimeout(() => void this.flush(), Math.max(this.flushMs, 1000));
            this.timer.unref();
          }
          return;
        }
      }
    });
    return this.writing;
  }

  private failed(err: unknown): void {
    const now = this.options.now?.() ?? Date.now();
    if (this.failingSince !== null && now - this.reportedAt < (this.options.reportEveryMs ?? 60_000)) return;
    if (this.failingSince === null) {
      this.failingSince = now;
      this.droppedBefore = this.dropped;
    }
    this.reportedAt = now;
    this.options.onError?.(err, { pending: this.pending.length, dropped: this.dropped - this.droppedBefore });
  }

  private recovered(): void {
    if (this.failingSince === null) return;
    const failedForMs = (this.options.now?.() ?? Date.now()) - this.failingSince;
    this.failingSince = null;
    this.options.onRecover?.({ failedForMs, dropped: this.dropped - this.droppedBefore });
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
