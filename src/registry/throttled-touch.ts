/**
 * Records that digests are in use (gc keeps what was touched within its grace period), at most
 * once a minute per digest: a blob HEAD is answered thousands of times a second under load, and a
 * database write each time would cost more than the answer. A minute is far inside any grace
 * period gc accepts above zero, so a touch is never missed for long.
 */
export class ThrottledTouch {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly write: (digests: string[]) => Promise<void>,
    private readonly everyMs = 60_000,
    private readonly maxRemembered = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async touch(digest: string): Promise<void> {
    const t = this.now();
    const before = this.last.get(digest);
    if (before !== undefined && t - before < this.everyMs) return;
    // Bounded: forgetting everything only means the next touch of each digest writes again.
    if (this.last.size >= this.maxRemembered) this.last.clear();
    this.last.set(digest, t);
    await this.write([digest]);
  }
}
