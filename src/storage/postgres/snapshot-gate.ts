/**
 * A bound on the read snapshots open at once on one pool. A snapshot holds a pooled connection for
 * its whole read, and code inside it (the rules layer: impostor verdict, suggestion impact) takes
 * further connections from the same pool for short statements. Unbounded, as many snapshots as the
 * pool has connections would hold them all and each wait for one more: every call then fails after
 * the pool's connection timeout. Keeping half the pool out of reach of snapshots leaves room for
 * those nested statements and for other users of the pool (ingest, rules, policy state), so every
 * snapshot makes progress; the rest wait here, in order.
 */
export class SnapshotGate {
  private open = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`snapshot limit must be a whole number >= 1, got ${limit}`);
  }

  /** The limit for a pool of `poolMax` connections: half of it, at least one. */
  static forPool(poolMax: number): SnapshotGate {
    return new SnapshotGate(Math.max(1, Math.floor(poolMax / 2)));
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.open >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.open++;
    try {
      return await fn();
    } finally {
      // hand the slot straight to the next waiter, so a newcomer cannot overtake it
      const next = this.waiting.shift();
      if (next) next();
      else this.open--;
    }
  }
}
