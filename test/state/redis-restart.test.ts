import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitted, recoverThenCount, startReplicas, text } from './replicas.js';

const POLICY = `version: 1
default: allow
tools:
  echo: { rate_limit: { max: 10, window: 3600, scope: global } }
`;

const UNREACHABLE = /^\[POLICY DENIED\] policy state error: Redis at redis:\/\/127\.0\.0\.1:\d+\/0/;

test('Redis stopped and restarted without its data mid-run: calls are denied with the reason while it is down, the replicas put their charges back, and nothing extra is admitted', async () => {
  const r = await startReplicas(POLICY, 3);
  try {
    const cs = await Promise.all([0, 1, 2].map((i) => r.connect(i, r.tokens[i]!)));
    // 6 of the 10 global slots, spread over the three replicas.
    const before = await Promise.all(cs.flatMap((c, i) => [0, 1].map((k) => admitted(c, 'echo', { text: `before-${i}-${k}` }))));
    assert.deepEqual(before, Array(6).fill(true));

    await r.redis.kill();
    for (const [i, c] of cs.entries()) {
      const reasons: string[] = [];
      assert.equal(await admitted(c, 'echo', { text: `down-${i}` }, reasons), false, `replica ${i} admitted a call while Redis was down`);
      assert.match(reasons[0]!, UNREACHABLE);
      // A call that needs no state still passes.
      assert.equal(JSON.parse(text(await c.callTool({ name: 'stats', arguments: {} }))).echo, 6);
    }
    // The approvals API says the state is unavailable rather than pretending there is nothing pending.
    const api = r.urls[0]!.replace(/\/mcp$/, '/policy/approvals');
    const auth = { authorization: `Bearer ${r.admin}` };
    const list = await fetch(api, { headers: auth });
    assert.equal(list.status, 503);
    assert.match(((await list.json()) as { error: string }).error, /Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is unreachable/);
    const decide = await fetch(`${api}/apr_0123456789abcdef/approve`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(decide.status, 503);
    for (const i of [0, 1, 2]) {
      const denied = (await r.audit(i)).filter((a) => a.tool === 'echo' && a.decision === 'deny');
      assert.equal(denied.length, 1, `replica ${i} audits the denial`);
      assert.match(denied[0]!.reason!, /^policy state error: Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    }

    // Same port, no data: the replicas reconnect on their own (no restart) and rebuild the counts.
    await r.redis.start();
    const { recovered, rest } = await recoverThenCount(cs, 'echo');
    assert.equal(recovered, 3);
    assert.equal(rest, 1, 'the 6 charges made before the restart still count: only 10 in all');
    assert.equal(JSON.parse(text(await cs[0]!.callTool({ name: 'stats', arguments: {} }))).echo, 10);
  } finally {
    await r.close();
  }
});
