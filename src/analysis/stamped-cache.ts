/**
 * Answers of the rules layer kept per tenant under the commit stamp they were computed at
 * (rules-port.ts commitStamp): an answer is handed out again only for the same stamp, and a newer
 * stamp drops the tenant's answers. The stamp a caller holds was taken before its read snapshot
 * opened and the answer was computed after, so an answer is never older than the state the stamp
 * names; any commit that could change it changes the stamp, so it is never reused after one.
 *
 * Bounded: at most MAX_TENANTS tenants (the oldest entered is dropped) and MAX_PER_TENANT answers
 * per tenant (then nothing more is kept until the stamp moves).
 */

const MAX_TENANTS = 256;
const MAX_PER_TENANT = 4096;

interface AtStamp {
  stamp: number;
  values: Map<string, unknown>;
}

export class StampedCache {
  private readonly tenants = new Map<number, AtStamp>();

  /** The value kept for (tenant, stamp, key), or computes it, keeps it and returns it; null stamp: computes. */
  async get<T>(tenantId: number, stamp: number | null | undefined, key: string, compute: () => Promise<T>): Promise<T> {
    if (stamp === null || stamp === undefined) return compute();
    const hit = this.tenants.get(tenantId);
    if (hit && hit.stamp === stamp && hit.values.has(key)) return hit.values.get(key) as T;
    const value = await compute();
    this.put(tenantId, stamp, key, value);
    return value;
  }

  private put(tenantId: number, stamp: number, key: string, value: unknown): void {
    let at = this.tenants.get(tenantId);
    // a slower call that read an older stamp keeps nothing: a newer answer is already there
    if (at && at.stamp > stamp) return;
    if (!at || at.stamp < stamp) {
      this.tenants.delete(tenantId);
      if (this.tenants.size >= MAX_TENANTS) this.tenants.delete(this.tenants.keys().next().value!);
      this.tenants.set(tenantId, (at = { stamp, values: new Map() }));
    }
    if (at.values.size < MAX_PER_TENANT) at.values.set(key, value);
  }
}
