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

/** A change to the policy's files that could not be loaded: the policy before it stays in force. */
export interface RejectedPolicyChange {
  message: string;
  /** When the change was seen (ISO 8601). */
  since: string;
}

/** What a re-read after a change to the files gave: told once per change, not once per pull. */
export type PolicyReload = { ok: true; policy: PolicyInForce; changed: boolean } | { ok: false; error: Error; kept: PolicyInForce };

/**
 * The policy the registry enforces, re-read when one of its files changes (checked at most once a
 * second), so an exception added to the policy file applies without a restart.
 *
 * A change that cannot be loaded (a typo, a schema error, the file deleted, unreadable or replaced
 * by a folder) leaves the last policy that loaded in force, as Prometheus, nginx or OPA do with
 * a configuration reload, and is reported once through `onReload` and by `rejectedChange()` until
 * the files load again. Failing every pull instead would turn one bad save into an outage of every
 * pull of every image, and every stored verdict into an error and back (a verdict_changed each);
 * the policy kept is one an operator put in force, never a weaker default. When no policy has ever
 * loaded there is nothing to keep: `get` throws and the gate refuses pulls with the reason.
 */
export class PolicySource {
  private current: PolicyInForce | undefined;
  private failure: Error | undefined;
  private rejected: RejectedPolicyChange | undefined;
  private stamp = '';
  private checkedAt = 0;

  constructor(
    private readonly load: () => Promise<LoadedGatePolicy>,
    private readonly files: () => string[],
    private readonly recheckMs = 1000,
    private readonly onReload?: (reload: PolicyReload) => void,
  ) {}

  /**
   * What the files look like without reading them. The change time is in it because the
   * modification time is not enough: `cp -p`, `touch -r` and `rsync -t --inplace` write new content
   * and put the old time back, and an edit of an expiry date keeps the size, so such an edit went
   * unseen. No tool can set the change time.
   */
  private fileStamp(): string {
    return this.files()
      .map((f) => {
        try {
          const s = statSync(f);
          return `${f}:${s.mtimeMs}:${s.ctimeMs}:${s.size}:${s.ino}`;
        } catch {
          return `${f}:absent`;
        }
      })
      .join('|');
  }

  /** The change that was refused while the last good policy stays in force; undefined when the files load. */
  rejectedChange(): RejectedPolicyChange | undefined {
    return this.rejected;
  }

  async get(): Promise<PolicyInForce> {
    const now = Date.now();
    if (this.current === undefined && this.failure === undefined) this.checkedAt = 0;
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      const stamp = this.fileStamp();
      if (stamp !== this.stamp || (this.current === undefined && this.failure === undefined)) {
        this.stamp = stamp;
        await this.reload();
      }
    }
    if (this.current) return this.current;
    throw this.failure!;
  }

  private async reload(): Promise<void> {
    const before = this.current;
    let loaded: LoadedGatePolicy;
    try {
      loaded = await this.load();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (!before) {
        this.failure = error;
        return;
      }
      this.rejected = { message: error.message, since: new Date().toISOString() };
      this.tell({ ok: false, error, kept: before });
      return;
    }
    const hash = createHash('sha256').update(JSON.stringify(loaded.policy)).digest('hex').slice(0, 16);
    this.current = { ...loaded, hash };
    this.failure = undefined;
    this.rejected = undefined;
    if (before) this.tell({ ok: true, policy: this.current, changed: hash !== before.hash });
  }

  private tell(reload: PolicyReload): void {
    try {
      this.onReload?.(reload);
    } catch {
      // A listener (a log line) must never change which policy is enforced.
    }
  }
}
