/**
 * Sliding-window rate limiter with reserve / commit / refund.
 *
 * Each key keeps a log of admitted calls (time, cost). A window is exact: a call is admitted iff the
 * cost admitted in the last `windowMs` plus its own cost stays <= max. Nothing is calendar aligned, so
 * a burst at the end of one minute cannot be followed by a second burst at the start of the next.
 * Reservation is synchronous (single JS thread), so concurrent calls can never over-admit; refund
 * gives the quota back when the upstream never produced a result, and commit makes a charge final.
 *
 * Housekeeping forgets a key only once its newest entry is older than that key's own window, so a
 * weekly window holds for the whole week however quiet it is. Counters live in this process's memory:
 * a restart starts every window afresh. This is the counters half of the default (store) policy-state
 * backend; src/state/redis/ shares counters between processes instead.
 */
import type { LimitRequest, RateCounters, Reservation as PortReservation, ReserveResult as PortReserveResult } from '../storage/policy-state.js';

export type { LimitRequest } from '../storage/policy-state.js';
export type Clock = () => number;

interface Entry {
  t: number;
  cost: number;
}

interface Window {
  entries: Entry[];
  head: number;
  sum: number;
  /** The window length this key was last charged under (a reload may change it). */
  windowMs: number;
}

export interface Reservation extends PortReservation {
  readonly parts: { w: Window; e: Entry }[];
}

export type ReserveResult = Exclude<PortReserveResult, { ok: true }> | { ok: true; reservation: Reservation };

export class SlidingWindowLimiter implements RateCounters {
  private readonly windows = new Map<string, Window>();
  private ops = 0;

  constructor(private readonly now: Clock = Date.now) {}

  private prune(w: Window, now: number, windowMs: number): void {
    const cutoff = now - windowMs;
    const es = w.entries;
    while (w.head < es.length && es[w.head]!.t <= cutoff) {
      const e = es[w.head]!;
      w.sum -= e.cost;
      // A later refund of this reservation must not subtract it a second time.
      e.cost = 0;
      w.head++;
    }
    // Compact occasionally so the array does not grow without bound.
    if (w.head > 64 && w.head * 2 > es.length) {
      w.entries = es.slice(w.head);
      w.head = 0;
    }
    if (w.sum < 1e-9) w.sum = Math.max(0, w.sum);
  }

  /** All-or-nothing: either every limit admits the call and each is charged, or none is. */
  reserve(reqs: readonly LimitRequest[]): ReserveResult {
    const now = this.now();
    const ws: Window[] = [];
    for (const r of reqs) {
      let w = this.windows.get(r.key);
      if (!w) {
        w = { entries: [], head: 0, sum: 0, windowMs: r.windowMs };
        this.windows.set(r.key, w);
      }
      w.windowMs = r.windowMs;
      this.prune(w, now, r.windowMs);
      if (w.sum + r.cost > r.max + 1e-9) {
        return { ok: false, key: r.key, max: r.max, windowMs: r.windowMs, used: w.sum, retryAfterMs: retryAfter(w, r, now) };
      }
      ws.push(w);
    }
    const parts = reqs.map((r, i) => {
      const e = { t: now, cost: r.cost };
      ws[i]!.entries.push(e);
      ws[i]!.sum += r.cost;
      return { w: ws[i]!, e };
    });
    if (++this.ops % 4096 === 0) this.sweep(now);
    return { ok: true, reservation: { parts, released: false } };
  }

  /** Gives the quota back. Idempotent. */
  refund(r: PortReservation): void {
    const res = r as Reservation;
    if (res.released) return;
    res.released = true;
    for (const { w, e } of res.parts) {
      if (e.cost === 0) continue;
      w.sum -= e.cost;
      e.cost = 0;
    }
  }

  /** The call reached the upstream: its charge stays whatever happens next. Idempotent. */
  commit(res: PortReservation): void {
    res.released = true;
  }

  /** Current usage for a key (after pruning), for tests and explain. */
  used(key: string, windowMs: number): number {
    const w = this.windows.get(key);
    if (!w) return 0;
    this.prune(w, this.now(), windowMs);
    return w.sum;
  }

  /** Drops every key with nothing left inside its own window (e.g. those of ended sessions). */
  forgetExpired(): void {
    this.sweep(this.now());
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) {
      this.prune(w, now, w.windowMs);
      if (w.sum <= 0) this.windows.delete(k);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}

function retryAfter(w: Window, r: LimitRequest, now: number): number {
  if (r.cost > r.max) return Infinity;
  let sum = w.sum;
  for (let i = w.head; i < w.entries.length; i++) {
    const e = w.entries[i]!;
    sum -= e.cost;
    if (sum + r.cost <= r.max + 1e-9) return Math.max(1, e.t + r.windowMs - now);
  }
  return r.windowMs;
}
