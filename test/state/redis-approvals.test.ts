import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis } from '../helpers/redis.js';
import { RedisPolicyState } from '../../src/state/redis/state.js';
import type { ApprovalBinding } from '../../src/storage/policy-state.js';

const noAudit = { append() {}, flush() {}, query: () => [], page: () => ({ records: [], nextCursor: null }) };
const binding = (over: Partial<ApprovalBinding> = {}): ApprovalBinding => ({
  session: 's1', identity: 'alice', tool: 'write', argsHash: 'h1', argsPreview: '{"a":1}', rule: 'tools.write', timeoutMs: 60_000, ...over,
});

test('Redis approvals: bound to session, tool and arguments; released on another replica by pub/sub alone; survive a replica restart; fail closed', async () => {
  const redis = await startRedis();
  // The fallback poll is an hour: only the pub/sub message can release the waiter in time.
  const open = () => new RedisPolicyState({ url: redis.url, audit: noAudit, approvalPollMs: 3_600_000, recoveryHoldMs: 0 });
  const a = open();
  const b = open();
  try {
    await Promise.all([a.ready(), b.ready()]);
    assert.deepEqual(a.hashKey, b.hashKey, 'replicas share the argument-hash key, so the same arguments bind on each');

    const filed = await a.approvals.request(binding());
    assert.equal(filed.state, 'new');
    assert.equal((await b.approvals.request(binding())).row.id, filed.row.id, 'the identical call on another replica attaches to the same approval');
    assert.notEqual((await b.approvals.request(binding({ argsHash: 'h2' }))).row.id, filed.row.id);
    assert.notEqual((await b.approvals.request(binding({ session: 's2' }))).row.id, filed.row.id);
    assert.notEqual((await b.approvals.request(binding({ tool: 'other' }))).row.id, filed.row.id);

    // Replica A restarts: the pending approval is still there for the retried call.
    await a.close();
    const a2 = open();
    await a2.ready();
    const retried = await a2.approvals.request(binding());
    assert.equal(retried.state, 'pending');
    assert.equal(retried.row.id, filed.row.id);

    const waiting = a2.approvals.wait(filed.row.id);
    await b.approvals.decide(filed.row.id, 'approved', 'cli:bob');
    assert.deepEqual(await waiting, { status: 'approved', decidedBy: 'cli:bob' });
    await assert.rejects(b.approvals.decide(filed.row.id, 'denied', 'cli:bob'), /approved, not pending/);
    assert.equal((await a2.approvals.request(binding())).state, 'approved');
    assert.equal(await a2.approvals.consume(filed.row.id), true);
    assert.equal(await b.approvals.consume(filed.row.id), false, 'an approval lets exactly one call through');
    await assert.rejects(b.approvals.decide('apr_0000000000000000', 'approved', 'x'), /no approval with id/);

    // Fail closed: with Redis gone, filing and waiting both end in a denial with the reason.
    const pending = await a2.approvals.request(binding({ argsHash: 'h9' }));
    const held = a2.approvals.wait(pending.row.id);
    await redis.kill();
    await assert.rejects(a2.approvals.request(binding({ argsHash: 'h10' })), /Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is unreachable/);
    await assert.rejects(async () => b.counters('p').reserve([{ key: 'k\u0000g', max: 1, windowMs: 1000, cost: 1 }]), /Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    // The waiter is released by the next check (here: the subscriber's reconnection attempt or the poll) as a denial.
    (a2.approvals as unknown as { checkAll(): void }).checkAll();
    const o = await held;
    assert.equal(o.status, 'denied');
    assert.match(o.reason!, /policy state error: Redis at /);
    await a2.close();
  } finally {
    await a.close().catch(() => undefined);
    await b.close();
    await redis.stop();
  }
});
