import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { admitted, recoverThenCount, startReplicas, text } from './replicas.js';
import { cli, FIXTURE, tmpDir } from '../gateway/helpers.js';
import { startRedis } from '../helpers/redis.js';

/**
 * Redis losing its data with no reconnection (found by review): FLUSHALL, FLUSHDB or an evicted key
 * on a live connection. The check on connecting never ran, every counter began again from zero, and
 * three gateways admitted 10 more calls of a global limit of 10 after each flush. Now the marker key
 * is read with every admitting script and on a timer, and the replicas recover as after a restart.
 * A Redis that may evict keys, or has no database the URL names, is refused outright.
 */

const POLICY = `version: 1
default: allow
tools:
  echo: { rate_limit: { max: 10, window: 3600, scope: global } }
`;

test('FLUSHALL under three live gateways: the next calls are denied with the reason, every replica puts its charges back, and nothing extra is admitted', async () => {
  const r = await startReplicas(POLICY, 3);
  const admin = new Redis({ host: '127.0.0.1', port: r.redis.port, lazyConnect: true });
  try {
    await admin.connect();
    const cs = await Promise.all([0, 1, 2].map((i) => r.connect(i, r.tokens[i]!)));
    const before = await Promise.all(cs.flatMap((c, i) => [0, 1].map((k) => admitted(c, 'echo', { text: `before-${i}-${k}` }))));
    assert.deepEqual(before, Array(6).fill(true));

    assert.equal(await admin.flushall(), 'OK');
    const reasons: string[] = [];
    assert.equal(await admitted(cs[0]!, 'echo', { text: 'right-after' }, reasons), false, 'admitted on a counter the flush emptied');
    assert.match(reasons[0]!, /^\[POLICY DENIED\] policy state error: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 (lost its data while connected|is new or restarted without some of its data|cannot be used)/);

    const { recovered, rest } = await recoverThenCount(cs, 'echo');
    assert.equal(recovered, 3);
    assert.equal(rest, 1, 'the 6 charges made before the flush still count: only 10 in all');
    assert.equal(JSON.parse(text(await cs[0]!.callTool({ name: 'stats', arguments: {} }))).echo, 10);
  } finally {
    admin.disconnect();
    await r.close();
  }
});

test('a Redis that evicts keys under memory pressure, or has no database the URL names, is refused: exit 5 with the reason', async () => {
  const redis = await startRedis();
  const t = tmpDir();
  try {
    const policy = t.file('p.yaml', POLICY);
    const port = redis.port;
    const none = await cli(['approvals', 'list', '--state', `redis://127.0.0.1:${port}/16`]);
    assert.equal(none.code, 5, none.stderr);
    assert.match(none.stderr, new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port}/16 has no database 16 \\(.*\\); give a database its "databases" setting allows, such as /0`));
    const ok = await cli(['approvals', 'list', '--state', `redis://127.0.0.1:${port}/15`]);
    assert.equal(ok.code, 0, ok.stderr);

    await redis.kill();
    await redis.start(['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
    const evicting = await cli(['gateway', '--policy', policy, '--db', t.db, '--state', `redis://127.0.0.1:${port}/0`, '--', process.execPath, FIXTURE]);
    assert.equal(evicting.code, 5, evicting.stderr);
    assert.match(evicting.stderr, /evicts keys under memory pressure \(maxmemory-policy allkeys-lru\): a rate-limit counter or an approval could vanish and calls be admitted past their limits; set maxmemory-policy noeviction/);
  } finally {
    await redis.stop();
    t.cleanup();
  }
});
