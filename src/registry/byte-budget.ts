/** Thrown when the waiting line is full; the registry answers 429 with Retry-After. */
export class BudgetBusyError extends Error {
  override readonly name = 'BudgetBusyError';
}

/** Thrown to a waiter whose request was given up (its client went away) before its turn came. */
export class BudgetAbandonedError extends Error {
  override readonly name = 'BudgetAbandonedError';
}

interface Waiter {
  bytes: number;
  /** When it started waiting (Date.now()). */
  since: number;
  stillWanted: () => boolean;
  grant: () => void;
  refuse: (err: Error) => void;
}

/**
 * Bounds the bytes that work of one kind may hold in memory at once (manifest PUTs: the body, its
 * parse and what checking it builds). Each task claims its size before it reads anything; a claim
 * that does not fit waits, holding only its socket, and is dropped when its client has gone by
 * its turn. Waiters are let in in order of arrival, but one that does not fit yet does not hold
 * back smaller ones behind it: a few large claims must not stall every small push. Small claims
 * (nearly every manifest) fit thousands at once. A task larger than the whole budget runs alone.
 */
export class ByteBudget {
  private inUse = 0;
  private readonly waiting: Waiter[] = [];

  /**
   * `overtakeMs`: how long a waiter that does not fit may be overtaken by smaller claims; after
   * that, claims queue behind it until it runs, so a large push cannot wait for ever.
   */
  constructor(
    private readonly limitBytes: number,
    private readonly maxWaiting: number,
    private readonly overtakeMs = 5_000,
  ) {}

  /** Whether the longest waiter has waited long enough that no one may pass it any more. */
  private headIsDue(now: number): boolean {
    const head = this.waiting[0];
    return head !== undefined && now - head.since >= this.overtakeMs;
  }

  /** Bytes claimed by running tasks (for tests and diagnostics). */
  get bytesInUse(): number {
    return this.inUse;
  }

  /** Tasks waiting for room. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Runs `task` once `bytes` fit in the budget. Throws BudgetBusyError at once when it must wait
   * and the line is full, and BudgetAbandonedError when `stillWanted` says no at its turn.
   */
  async run<T>(bytes: number, task: () => Promise<T>, stillWanted: () => boolean = () => true): Promise<T> {
    const claim = Math.max(0, Math.min(bytes, this.limitBytes));
    if (this.inUse + claim > this.limitBytes || this.headIsDue(Date.now())) {
      if (this.waiting.length >= this.maxWaiting) this.dropAbandoned();
      if (this.waiting.length >= this.maxWaiting) throw new BudgetBusyError('too many large requests are waiting; retry in 1 second');
      await new Promise<void>((grant, refuse) => this.waiting.push({ bytes: claim, since: Date.now(), stillWanted, grant, refuse }));
    } else {
      this.inUse += claim;
    }
    try {
      return await task();
    } finally {
      this.inUse -= claim;
      this.admit();
    }
  }

  /** Refuses every waiter whose client has gone, wherever it is in line. */
  private dropAbandoned(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i]!;
      if (w.stillWanted()) continue;
      this.waiting.splice(i, 1);
      w.refuse(new BudgetAbandonedError('the client went away while its request waited'));
    }
  }

  /** Lets in, in order, every waiter that fits (until one has waited too long); gives up those no longer wanted. */
  private admit(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const next = this.waiting[i]!;
      if (!next.stillWanted()) {
        this.waiting.splice(i, 1);
        next.refuse(new BudgetAbandonedError('the client went away while its request waited'));
        continue;
      }
      if (this.inUse + next.bytes > this.limitBytes && this.inUse > 0) {
        // Waited its share of being overtaken: the ones behind it wait for it now.
        if (Date.now() - next.since >= this.overtakeMs) return;
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.inUse += next.bytes;
      next.grant();
    }
  }
}

/**
 * What each holder (an account, a project) has claimed of a ByteBudget, against a share of it. A
 * holder with nothing claimed may always take one claim (a claim is at most the budget's largest
 * task, which fits in a share), so a share bounds how many a holder runs at once, never whether
 * it may push at all.
 */
export class BudgetShares {
  private readonly claimed = new Map<string, number>();

  constructor(private readonly shareBytes: number) {}

  /** Bytes `holder` has claimed now. */
  held(holder: string): number {
    return this.claimed.get(holder) ?? 0;
  }

  /** Adds `bytes` to `holder`'s claims; false (and nothing added) when that would pass its share. */
  take(holder: string, bytes: number): boolean {
    const already = this.held(holder);
    if (already > 0 && already + bytes > this.shareBytes) return false;
    this.claimed.set(holder, already + bytes);
    return true;
  }

  /** Returns what `take` added. */
  give(holder: string, bytes: number): void {
    const left = this.held(holder) - bytes;
    if (left > 0) this.claimed.set(holder, left);
    else this.claimed.delete(holder);
  }
}
