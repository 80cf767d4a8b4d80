/**
 * `cost_from` counts an argument against a rate limit. A call whose count is 0 (which upstreams
 * often read as "no limit" or "the default") or a tiny fraction still costs 1: before, 35 of 50 such
 * calls passed a limit already spent, and `limit: 0` was never counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, resultText, startGateway } from './stdio-helpers.js';

test('stdio gateway: a call costs at least 1 whatever its cost_from argument says (0, a fraction); the rest is rounded up', async () => {
  const g = await startGateway('version: 1\ndefault: allow\ntools:\n  echo:\n    rate_limit: { max: 5, window: 3600, cost_from: args.limit }\n');
  try {
    await g.init();
    const run = async (id: number, limit: number) => {
      g.send(call(id, 'echo', { text: 'x', limit }));
      return resultText(await g.reply(id));
    };
    // 0 and 1e-10 cost 1 each; 2.5 costs 3: 1 + 1 + 3 = 5, the whole quota
    assert.equal(await run(1, 0), 'x');
    assert.equal(await run(2, 1e-10), 'x');
    assert.equal(await run(3, 2.5), 'x');
    for (const [id, limit] of [[4, 0], [5, 1e-10], [6, 0.5]] as const) assert.match(await run(id, limit), /^\[POLICY DENIED\] .*rate limit/, `limit ${limit}`);
    // a negative count is refused, as before
    assert.match(await run(7, -1), /^\[POLICY DENIED\] argument args\.limit must be a non-negative number/);
  } finally {
    await g.close();
  }
});
