import { createHash } from 'node:crypto';
import type { HandleLimits, HandleResult, SessionHandles } from '../../storage/policy-state.js';
import type { RedisConnection } from './connection.js';

/** A TTL too long for milliseconds in a double (or for a key TTL) never ends: sent as -1. */
const wire = (ms: number) => (Number.isFinite(ms) && ms <= 1e15 ? String(ms) : '-1');

/**
 * Live session handles shared by every replica on one Redis: one sorted set per identity, changed
 * only by one Lua script per touch (handle-scripts.ts). Fails closed like the counters: while Redis
 * is unreachable a touch throws the reason, and the call is denied.
 */
export class RedisSessionHandles implements SessionHandles {
  constructor(private readonly conn: RedisConnection) {}

  private keyOf(identity: string): string {
    const tag = createHash('sha256').update(identity).digest('hex').slice(0, 24);
    return `egress-triage:sh:{${tag}}`;
  }

  private nowArg(now: number | undefined): string {
    return now === undefined ? this.conn.nowArg() : String(now);
  }

  async touch(identity: string, handle: string, limits: HandleLimits, now?: number): Promise<HandleResult> {
    this.conn.assertUsable();
    const out = (await this.conn.run('handle_touch', [this.keyOf(identity)], [
      this.nowArg(now), wire(limits.ttlMs), String(limits.maxLive), handle, this.conn.injected || now !== undefined ? '1' : '0',
    ])) as (string | number)[];
    if (Number(out[0]) === 1) return { ok: true, fresh: Number(out[1]) === 1, live: Number(out[2]) };
    const retry = Number(out[2]);
    return { ok: false, live: Number(out[1]), retryAfterMs: retry < 0 ? Infinity : retry };
  }

  async live(identity: string, ttlMs: number, now?: number): Promise<string[]> {
    this.conn.assertUsable();
    return (await this.conn.run('handle_live', [this.keyOf(identity)], [this.nowArg(now), wire(ttlMs)])) as string[];
  }
}
