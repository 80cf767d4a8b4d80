import type { IngestLeaseEvent, IngestLeaseState } from './store.js';

/**
 * The backend-independent half of the ingest lease: what a writer does on seeing the current lease
 * row, and how waiting is explained to a person. Plain data in, decision out.
 */

export interface LeaseRow {
  token: string;
  expiresAt: number;
}

/**
 * free: nobody holds it; expired: its holder stopped renewing (take it over); held: wait.
 * A lease expires at expiresAt exactly, so a zero-length lease is never valid.
 */
export function leaseDecision(current: LeaseRow | null, now: number): 'free' | 'expired' | 'held' {
  if (!current) return 'free';
  return current.expiresAt <= now ? 'expired' : 'held';
}

/** How long a waiter sleeps before looking again: soon after expiry, and at most pollMs. */
export function nextPollMs(current: LeaseRow, now: number, pollMs: number): number {
  return Math.max(1, Math.min(pollMs, current.expiresAt - now));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function who(s: IngestLeaseState): string {
  return `the ingest of ${s.holder.source} (pid ${s.holder.pid} on ${s.holder.host})`;
}

/** One line for stderr: whom we wait for, since when, and when a dead holder would be taken over. */
export function describeLeaseEvent(e: IngestLeaseEvent): string {
  if (e.kind === 'waiting') {
    const c = e.current;
    if (e.busy) {
      return (
        `tenant "${c.tenant}": waiting for ${who(c)}, writing since ${iso(c.since)}; it is inside a write ` +
        `transaction (a --strict ingest keeps one open for its whole source), and this ingest goes on when that ends`
      );
    }
    const left = Math.max(0, Math.ceil((c.expiresAt - e.now) / 1000));
    return (
      `tenant "${c.tenant}": waiting for ${who(c)}, writing since ${iso(c.since)}; ` +
      `if that process is dead its lease expires in ${left} s and this ingest takes over`
    );
  }
  const p = e.previous;
  return `tenant "${p.tenant}": took over from ${who(p)}, writing since ${iso(p.since)}, whose lease expired at ${iso(p.expiresAt)} without being released (the process was probably killed)`;
}

/**
 * Follows "tenant -> its holder -> the tenant that holder waits for -> ..." from the tenant `me`
 * wants. Returns the holders on the way when the chain comes back to `me` (waiting would never
 * end), else null. Holders are compared by key (host/pid); a chain longer than `limit` is no cycle.
 */
export function waitCycle<T>(
  wanted: T,
  me: string,
  holderOf: (tenant: T) => string | null,
  waitingFor: (holder: string) => T | null,
  limit = 64,
): string[] | null {
  const chain: string[] = [];
  let t: T | null = wanted;
  for (let i = 0; t !== null && i < limit; i++) {
    const h = holderOf(t);
    if (h === null) return null;
    if (h === me) return chain;
    if (chain.includes(h)) return null; // a cycle among others: theirs to break
    chain.push(h);
    t = waitingFor(h);
  }
  return null;
}
