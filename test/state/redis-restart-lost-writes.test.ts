import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { RedisPolicyState } from '../../src/state/redis/state.js';
import type { ApprovalBinding, ReserveResult } from '../../src/storage/policy-state.js';

/**
 * Redis restarts that keep some data (found by review). A server reloaded from a snapshot still has
 * the marker key the replicas check, but not the charges made and the approvals used after the
 * snapshot: the limit admitted over its max and a used approval passed a second call. And a check on
 * reconnecting that failed (a put-back refused, memory full) was never run again: charges stayed lost,
 * or the replica denied for good. Real redis-server; every wait is a poll on the state's own answer.
 */

const noAudit = { append() {}, flush() {}, query: () => [], page: () => ({ records: [], nextCursor: null }) };
const LIMIT = [{ key: 'tools.deploy.rate_limit\u0000g', max: 3, windowMs: 3_600_000, cost: 1 }];
const BINDING: ApprovalBinding = { session: 's1', identity: 'agent', tool: 'delete_repo', argsHash: 'h1', argsPreview: '{}', rule: 'tools.delete_repo', timeoutMs: 600_000 };

async function charge(st: RedisPolicyState): Promise<boolean> {
  const c = st.counters('lost-writes');
  const r: ReserveResult = await c.reserve(LIMIT);
  if (r.ok) await c.commit(r.reservation);
  return r.ok;
}

/** Why the state denies calls right now, or null when it admits them. */
function refusal(st: RedisPolicyState): string | null {
  try {
    st.conn.assertUsable();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const usable = (st: RedisPolicyState, what: string) => waitFor(() => refusal(st) === null, 20_000, 25, what);

async function withRedis(fn: (redis: TestRedis, st: RedisPolicyState) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  const st = new RedisPolicyState({ url: redis.url, audit: noAudit, recoveryHoldMs: 200 });
  try {
    await st.ready();
    await fn(redis, st);
  } finally {
    await st.close();
    await redis.stop();
  }
}

test('Redis reloaded from an older snapshot: the charges and the used approval made after it are put back', async () => {
  await withRedis(async (redis, st) => {
    const filed = await st.approvals.request(BINDING);
    await st.approvals.decide(filed.row.id, 'approved', 'alice');
    assert.equal(await charge(st), true);
    await st.conn.redis.save(); // the snapshot a periodic save leaves: 1 charge, the approval unused
    assert.deepEqual([await charge(st), await charge(st), await charge(st)], [true, true, false]);
    assert.equal(await st.approvals.consume(filed.row.id), true);

    await redis.kill();
    await redis.start();
    await usable(st, 'the replica back after the restart');
    assert.equal(await st.counters('lost-writes').used(LIMIT[0]!.key, LIMIT[0]!.windowMs), 3, 'the charges made after the snapshot count');
    assert.equal(await charge(st), false, 'still at max: nothing over it is admitted');
    assert.equal((await st.approvals.get(filed.row.id))?.status, 'consumed');
    const again = await st.approvals.request(BINDING);
    assert.equal(again.state, 'new', 'the same call needs a new decision');
    assert.equal(await st.approvals.consume(filed.row.id), false);
  });
});

test('a put-back refused on reconnecting is tried again, and nothing is admitted before it succeeds', async () => {
  await withRedis(async (redis, st) => {
    assert.deepEqual([await charge(st), await charge(st), await charge(st), await charge(st)], [true, true, true, false]);
    await redis.kill();
    // back without its data, and refusing scripts for a while (an ACL here; a timeout or a second
    // blip in life): the put-back fails
    const acl = join(redis.dir, 'users.acl');
    writeFileSync(acl, 'user default on nopass ~* &* +@all -eval -evalsha\nuser admin on >pw ~* &* +@all\n');
    await redis.start(['--aclfile', acl]);
    await waitFor(() => refusal(st) !== null && /NOPERM/.test(refusal(st)!), 20_000, 25, 'the put-back refused');
    assert.equal(st.conn.redis.status, 'ready');
    assert.match(refusal(st)!, /cannot be used/);
    await assert.rejects(async () => st.counters('lost-writes').reserve(LIMIT), /NOPERM/);
    const admin = new Redis({ port: redis.port, host: '127.0.0.1', username: 'admin', password: 'pw', lazyConnect: true });
    try {
      await admin.connect();
      await admin.call('ACL', 'SETUSER', 'default', '+eval', '+evalsha');
    } finally {
      admin.disconnect();
    }
    await usable(st, 'the replica usable once scripts run again');
    assert.equal(await st.counters('lost-writes').used(LIMIT[0]!.key, LIMIT[0]!.windowMs), 3, 'the charges were put back');
    assert.equal(await charge(st), false);
  });
});

test('a check that fails while the connection stays up (memory full) is run again once the condition clears', async () => {
  await withRedis(async (redis, st) => {
    await redis.kill();
    await redis.start(['--maxmemory', '1']);
    await waitFor(() => st.conn.redis.status === 'ready', 20_000, 25, 'the reconnection');
    await waitFor(() => /OOM|maxmemory/i.test(refusal(st) ?? ''), 20_000, 25, 'the check refused for memory');
    await st.conn.redis.config('SET', 'maxmemory', '0');
    await usable(st, 'the replica usable again without a reconnection');
    assert.equal(await charge(st), true);
  });
});
