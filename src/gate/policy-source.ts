import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { PolicyDocument } from '../policy/index.js';

export interface LoadedGatePolicy {
  policy: PolicyDocument;
  /** Where it came from, for messages: a file, `FILE: policy`, or `built-in policy`. */
  source: string;
}

export interface PolicyInForce extends LoadedGatePolicy {
  /** Changes whenever the policy's content changes: verdicts computed under another hash are stale. */
  hash: string;
}

/**
 * The policy the registry enforces, re-read when one of its files changes (checked at most once a
 * second), so an exception added to the policy file applies without a restart. A policy that
 * stops being valid is an error for every evaluation, never a silent fallback: the gate fails closed.
 */
export class PolicySource {
  private current: PolicyInForce | undefined;
  private failure: Error | undefined;
  private stamp = '';
  private checkedAt = 0;

  constructor(
    private readonly load: () => Promise<LoadedGatePolicy>,
    private readonly files: () => string[],
    private readonly recheckMs = 1000,
  ) {}

  private fileStamp(): string {
    return this.files()
      .map((f) => {
        try {
          const s = statSync(f);
          return `${f}:${s.mtimeMs}:${s.size}:${s.ino}`;
        } catch {
          return `${f}:absent`;
        }
      })
      .join('|');
  }

  async get(): Promise<PolicyInForce> {
    const now = Date.now();
    if (this.current === undefined && this.failure === undefined) this.checkedAt = 0;
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      const stamp = this.fileStamp();
      if (stamp !== this.stamp || (this.current === undefined && this.failure === undefined)) {
        this.stamp = stamp;
        try {
          const loaded = await this.load();
          const hash = createHash('sha256').update(JSON.stringify(loaded.policy)).digest('hex').slice(0, 16);
          this.current = { ...loaded, hash };
          this.failure = undefined;
        } catch (err) {
          this.current = undefined;
          this.failure = err instanceof Error ? err : new Error(String(err));
        }
      }
    }
    if (this.failure) throw this.failure;
    return this.current!;
  }
}
