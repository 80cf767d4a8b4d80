/**
 * Counts of things each identity holds open at once (initializes in progress, listen streams, calls
 * in flight), forgotten at zero so the map holds only identities with something open.
 */
export class IdentityCounts {
  private readonly counts = new Map<string, number>();

  of(identity: string): number {
    return this.counts.get(identity) ?? 0;
  }

  add(identity: string): void {
    this.counts.set(identity, this.of(identity) + 1);
  }

  /** Adds one unless the identity already holds `max`; says whether it did. */
  addUnder(identity: string, max: number): boolean {
    if (this.of(identity) >= max) return false;
    this.add(identity);
    return true;
  }

  remove(identity: string): void {
    const n = this.of(identity) - 1;
    if (n > 0) this.counts.set(identity, n);
    else this.counts.delete(identity);
  }
}
