import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, resultText, startGateway } from './stdio-helpers.js';

const POLICY = `version: 1
default: allow
hide: ["secret_*"]
tools:
  danger: { action: deny, reason: "never" }
`;

for (const era of ERAS) test(`stdio ids (${REVISION[era]}): only string and integer ids reach the policy; every other id of a tools/call is refused, audited, never forwarded`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    // Valid ids: decided by the policy, the id comes back unchanged.
    const valid: unknown[] = ['s-1', '', 'ünïcødé-€', 7, 0, -3, Number.MAX_SAFE_INTEGER];
    for (const id of valid) g.send(call(id, 'echo', { text: `ok ${JSON.stringify(id)}` }));
    for (const id of valid) assert.equal(resultText(await g.reply(id)), `ok ${JSON.stringify(id)}`);
    g.send(call('hid', 'secret_x', { a: 1 }));
    assert.match(resultText(await g.reply('hid')), /^\[POLICY DENIED\] /);

    // Invalid ids, each carrying a call to a hidden tool, a denied tool, and an allowed one.
    const raw = ['null', '{"a":1}', '[1]', 'true', 'false', '1.5', '1e400', '12345678901234567890', '-0.0001'];
    for (const id of raw) {
      for (const name of ['secret_x', 'danger', 'echo']) {
        await g.raw(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${name}","arguments":{"text":"smuggled"}}}\n`);
      }
    }
    await g.barrier();
    const errors = g.out.filter((m) => m.id === null);
    assert.equal(errors.length, raw.length * 3, 'each gets one answer, with id null');
    for (const e of errors) {
      assert.equal(e.error?.code, -32600);
      assert.match(e.error!.message, /"id" must be a string or an integer/);
    }

    const forwarded = g.upstreamCalls();
    assert.deepEqual(
      forwarded.map((m) => m.id),
      valid,
      'only the valid-id echo calls reached the upstream',
    );
    assert.ok(!g.upstream().some((m) => JSON.stringify(m).includes('smuggled')));

    // Duplicate id while the first call is in flight: refused, the first call keeps its answer and audit.
    g.send(call('dup', 'slow', { ms: 300 }));
    g.send(call('dup', 'danger', {}));
    const first = await g.reply('dup');
    assert.equal(first.error?.code, -32600);
    assert.match(first.error!.message, /already in use/);
    assert.equal(resultText(await g.reply('dup')), 'slept 300');
  } finally {
    await g.close().catch(() => undefined);
  }
  // The audit sees every refused call, by tool name, as a protocol denial (checked after close, so the
  // file is complete even without sync writes).
});

for (const era of ERAS) test(`stdio ids (${REVISION[era]}): refused calls are audited in the JSONL file and the table`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    await g.raw('{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"secret_x","arguments":{"cmd":"rm -rf /"}}}\n');
    await g.raw('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"danger","arguments":{}}}\n');
    await g.raw('{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"echo","arguments":{}}}\n');
    await g.barrier();
    assert.equal(g.upstreamCalls().length, 0);
    assert.equal(g.out.filter((m) => m.id === null).length, 2, 'the notification gets no answer');
    for (const recs of [g.auditFile(), await g.auditTable()]) {
      const byTool = Object.fromEntries(recs.map((r) => [r.tool, r]));
      for (const tool of ['secret_x', 'danger', 'echo']) {
        assert.equal(byTool[tool]?.decision, 'deny', `${tool} audited: ${JSON.stringify(recs)}`);
        assert.equal(byTool[tool]?.rule, 'protocol');
        assert.equal(byTool[tool]?.upstream, 'not_forwarded');
      }
      assert.match(String(byTool.danger!.reason), /notification/);
    }
  } finally {
    await g.close();
  }
});
