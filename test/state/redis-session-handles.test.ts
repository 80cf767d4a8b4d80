import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { RedisPolicyState } from '../../src/state/redis/state.js';

/**
 * Session handles in Redis on Redis's own clock (production: no injected clock), with housekeeping:
 * the identity's set expires a second after its newest handle would. The shared semantics are in
 * test/storage/contract/policy-state.test.ts, which runs on every backend.
 */

const noAudit = { append() {}, flush() {}, query: () => [], page: () => ({ records: [], nextCursor: null }) };

test('Redis session handles: Redis TIME when no clock is injected, and the set expires after its newest handle', async () => {
  const redis = await startRedis();
  const st = new RedisPolicyState({ url: redis.url, audit: noAudit, recoveryHoldMs: 0 });
  const fake = { t: 1_000 };
  const injected = new RedisPolicyState({ url: redis.url.replace(/\/0$/, '/1'), audit: noAudit, recoveryHoldMs: 0, clock: () => fake.t });
  try {
    await Promise.all([st.ready(), injected.ready()]);
    const limits = { maxLive: 1, ttlMs: 5_000 };
    assert.deepEqual(await st.sessionHandles.touch('alice', 'a', limits), { ok: true, fresh: true, live: 1 });
    const refused = await st.sessionHandles.touch('alice', 'b', limits);
    assert.equal(refused.ok, false);
    // Measured on Redis TIME: the slot frees within the TTL from now (this process's clock is not asked).
    assert.ok(!refused.ok && refused.retryAfterMs > 0 && refused.retryAfterMs <= 5_000, JSON.stringify(refused));
    const keys = await st.conn.redis.keys('egress-triage:sh:*');
    assert.equal(keys.length, 1);
    const ttl = await st.conn.redis.pttl(keys[0]!);
    assert.ok(ttl > 5_000 && ttl <= 6_000, `pttl ${ttl}`);
    assert.deepEqual(await st.sessionHandles.live('alice', limits.ttlMs), ['a']);

    // An injected clock (tests) is never mixed with real-time expiry: the set does not expire.
    assert.equal((await injected.sessionHandles.touch('alice', 'a', limits)).ok, true);
    const [k] = await injected.conn.redis.keys('egress-triage:sh:*');
    assert.equal(await injected.conn.redis.pttl(k!), -1);
    fake.t += 5_000;
    assert.deepEqual(await injected.sessionHandles.touch('alice', 'b', limits), { ok: true, fresh: true, live: 1 }, 'a expired by the injected clock');
  } finally {
    await st.close();
    await injected.close();
    await redis.stop();
  }
});
