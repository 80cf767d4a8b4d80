import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { RedisPolicyState } from '../../src/state/redis/state.js';
import type { ReserveResult } from '../../src/storage/policy-state.js';

/**
 * Rate-limit counters in Redis on Redis's own clock (production: no injected clock, so keys expire).
 * A counter is a charge set and a running sum with the same expiry. Found by review: a denial, a
 * refund or a `used()` rewrote the sum with a plain SET, which drops the key's expiry; once the
 * charge set expired, the sum stayed, and the limit denied every call for good. Checked on the keys'
 * state, not by waiting out a window.
 */

const noAudit = { append() {}, flush() {}, query: () => [], page: () => ({ records: [], nextCursor: null }) };
const LIMIT = [{ key: 'tools.x.rate_limit\u0000g', max: 2, windowMs: 60_000, cost: 1 }];

function reservation(r: ReserveResult) {
  assert.equal(r.ok, true, JSON.stringify(r));
  return (r as Extract<ReserveResult, { ok: true }>).reservation;
}

test('Redis counters: the sum keeps its expiry through a denial, a refund and used(); a sum left without its charges counts nothing', async () => {
  const redis = await startRedis();
  const st = new RedisPolicyState({ url: redis.url, audit: noAudit, recoveryHoldMs: 0 });
  try {
    await st.ready();
    const keys = async () => {
      const [z, s] = ['z', 's'].map((k) => st.conn.redis.keys(`egress-triage:rl:*:${k}`));
      return { z: (await z)[0]!, s: (await s)[0]! };
    };
    const c = st.counters('expiry');
    await c.commit(reservation(await c.reserve(LIMIT)));
    const refunded = reservation(await c.reserve(LIMIT));
    await c.refund(refunded);
    const { z, s } = await keys();
    assert.ok((await st.conn.redis.pttl(s)) > 0, 'after a refund the sum still expires');
    await c.commit(reservation(await c.reserve(LIMIT)));
    const denied = await c.reserve(LIMIT);
    assert.equal(denied.ok, false);
    assert.ok((await st.conn.redis.pttl(s)) > 0, 'after a denial the sum still expires');
    assert.equal(await c.used(LIMIT[0]!.key, LIMIT[0]!.windowMs), 2);
    const ttl = await st.conn.redis.pttl(s);
    assert.ok(ttl > 0 && ttl <= 61_000, `after used() the sum still expires: pttl ${ttl}`);

    // The charge set gone as its expiry takes it (idle past the window), a sum left behind: nothing
    // is charged any more, and the limit admits again.
    await st.conn.redis.del(z);
    await st.conn.redis.persist(s);
    assert.equal(await c.used(LIMIT[0]!.key, LIMIT[0]!.windowMs), 0);
    reservation(await c.reserve(LIMIT));
    assert.equal(await c.used(LIMIT[0]!.key, LIMIT[0]!.windowMs), 1);
  } finally {
    await st.close();
    await redis.stop();
  }
});
