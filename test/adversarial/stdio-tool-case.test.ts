/**
 * Tool names an upstream would read as a denied or hidden tool after its own case mapping. The dotted
 * capital I (U+0130) lower-cases to "i" + U+0307 in JavaScript's full mapping but to a plain "i" in
 * Go's, Java's or .NET's simple one: `ADMİN_users` must meet a deny on `admin_users`, and the dotless
 * ı (U+0131) likewise. Raw JSON-RPC through a real stdio gateway; what reached the upstream is asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, resultText, startGateway } from './stdio-helpers.js';

const POLICY = `version: 1
default: allow
hide: ["adm?n_*"]
tools:
  delete_repo_file: { action: deny, reason: "never" }
`;

for (const era of ERAS) test(`stdio gateway (${REVISION[era]}): dotted and dotless i variants of a denied or hidden tool name are refused and never reach the upstream`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    const names = ['ADM\u0130N_users', 'adm\u0131n_users', 'DELETE_REPO_F\u0130LE', 'delete_repo_f\u0131le'];
    for (const [i, name] of names.entries()) {
      g.send(call(i + 1, name, { id: 'x' }));
      assert.match(resultText(await g.reply(i + 1)), /^\[POLICY DENIED\] /, name);
    }
    g.send(call(99, 'echo', { text: 'still served' }));
    assert.equal(resultText(await g.reply(99)), 'still served');
    assert.deepEqual(g.upstreamCalls().map((m) => m.params?.name), ['echo'], 'only the allowed call reached the upstream');
  } finally {
    await g.close();
  }
});
