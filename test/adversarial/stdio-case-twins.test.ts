import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, resultText, startGateway } from './stdio-helpers.js';

/**
 * Argument keys that differ only in case from a condition's key, sent as raw JSON-RPC to the real
 * gateway process: an upstream that matches keys loosely (Go's encoding/json) would read the twin, so
 * the call is denied and nothing reaches the upstream (policy/conditions.ts caseTwinKeys).
 */

for (const era of ERAS) test(`stdio case twins (${REVISION[era]}): a deny on args.text is not passed by spelling the key in another case`, async () => {
  const g = await startGateway(`version: 1
tools:
  echo:
    when:
      - { path: args.text, op: eq, value: "rm -rf /", action: deny, reason: no wiping }
`, { era });
  try {
    await g.init();
    const hostile: Record<string, unknown>[] = [
      { Text: 'rm -rf /' },
      { text: 'ls', TEXT: 'rm -rf /' },
      { '\u0074ext': 'ls', 'TeXt': 'rm -rf /' },
    ];
    for (const [i, args] of hostile.entries()) {
      g.send(call(`h${i}`, 'echo', args));
      const r = await g.reply(`h${i}`);
      assert.match(resultText(r), /^\[POLICY DENIED\] args has keys that differ only in case/, JSON.stringify(args));
    }
    assert.equal(g.upstreamCalls().length, 0, 'no hostile call reached the upstream');
    // the key as the policy names it is judged as before
    g.send(call('plain', 'echo', { text: 'ls' }));
    assert.equal(resultText(await g.reply('plain')), 'ls');
    assert.deepEqual(g.upstreamCalls().map((m) => (m.params as { arguments?: unknown }).arguments), [{ text: 'ls' }]);
  } finally {
    await g.close();
  }
});
