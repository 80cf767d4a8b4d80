/**
 * `cost_from` counts an argument against a rate limit. A call whose count is 0 (which upstreams
 * often read as "no limit" or "the default") or a tiny fraction still costs 1: before, 35 of 50 such
 * calls passed a limit already spent, and `limit: 0` was never counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, resultText, startGateway } from './stdio-helpers.js';
import { runCli, tempDir } from '../helpers.js';

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

test('stdio gateway: a cost_from argument beside a key that differs only in case (or NFKC form) is denied, not charged for the key it reads', async () => {
  const g = await startGateway('version: 1\ndefault: allow\ntools:\n  echo:\n    rate_limit: { max: 100, window: 3600, cost_from: args.opts.limit }\n');
  try {
    await g.init();
    const run = async (id: number, args: Record<string, unknown>) => {
      g.send(call(id, 'echo', { text: 'x', ...args }));
      return resultText(await g.reply(id));
    };
    // an upstream that matches keys loosely (Go's encoding/json: the last match wins) would do 1000
    for (const [id, opts] of [[1, { limit: 1, Limit: 1000 }], [2, { limit: 1, 'ＬＩＭＩＴ': 1000 }], [3, { Limit: 1 }]] as const) {
      assert.match(await run(id, { opts }), /^\[POLICY DENIED\] args\.opts has keys that differ only in case \(.*\), and tools\.echo\.rate_limit counts args\.opts\.limit/, JSON.stringify(opts));
    }
    // and along the path to it
    assert.match(await run(4, { opts: { limit: 1 }, OPTS: { limit: 1000 } }), /^\[POLICY DENIED\] args has keys that differ only in case \("opts", "OPTS"\)/);
    // a cost written once is charged as before
    assert.equal(await run(5, { opts: { limit: 99 } }), 'x');
    assert.match(await run(6, { opts: { limit: 2 } }), /^\[POLICY DENIED\] .*rate limit/);
  } finally {
    await g.close();
  }
});

test('policy explain decides a call whose cost_from cannot be counted as the gateway does: denied, naming the argument', async () => {
  const yaml = 'version: 1\ndefault: allow\ntools:\n  echo:\n    rate_limit: { max: 100, window: 3600, cost_from: args.n }\n';
  const t = tempDir('adv-explain-cost-');
  const g = await startGateway(yaml);
  try {
    const file = t.file('policy.yaml', yaml);
    await g.init();
    let id = 0;
    for (const args of [{ n: -5 }, {}, { n: '3' }, { n: 1, N: 9 }, { n: 1 }]) {
      const explained = runCli(['policy', 'explain', file, '--tool', 'echo', '--args', JSON.stringify(args), '--json']);
      assert.equal(explained.status, 0, explained.stderr);
      const d = JSON.parse(explained.stdout) as { action: string; reason: string | null };
      g.send(call(++id, 'echo', { text: 'x', ...args }));
      const answer = resultText(await g.reply(id));
      if (d.action === 'deny') assert.equal(answer, `[POLICY DENIED] ${d.reason}`, JSON.stringify(args));
      else assert.equal(answer, 'x', JSON.stringify(args));
      assert.equal(d.action, JSON.stringify(args) === '{"n":1}' ? 'allow' : 'deny', JSON.stringify(args));
    }
  } finally {
    await g.close();
    t.cleanup();
  }
});
