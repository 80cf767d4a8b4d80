import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, enveloped, resultText, startGateway } from './stdio-helpers.js';

const cancel = (requestId: unknown) => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'changed my mind' } });

for (const era of ERAS) test(`stdio cancellation (${REVISION[era]}): call then cancel, 10 times against max 2, reaches the upstream at most twice`, async () => {
  const g = await startGateway(`version: 1
tools:
  slow: { rate_limit: { max: 2, window: 600 } }
`, { era });
  try {
    await g.init();
    for (let i = 0; i < 10; i++) {
      // Slow enough that the late answers are still due when c0 is reused below: once the upstream's
      // answer to c0 has come (and been dropped), the id is free again, so a 200 ms call raced that
      // check on a loaded machine.
      g.send(call(`c${i}`, 'slow', { ms: 5000 }));
      g.send(cancel(`c${i}`));
      g.send(cancel(`c${i}`)); // repeated: harmless
    }
    await g.barrier();
    g.send(call('after', 'slow', { ms: 1 }));
    const after = await g.reply('after');
    assert.match(resultText(after), /^\[POLICY DENIED\] rate limit exceeded/, 'both slots were used by cancelled calls the upstream had');
    assert.equal(g.upstreamCalls().length, 2);
    // The id of a cancelled call may still get a late answer from the upstream: it cannot be reused.
    g.send(call('c0', 'echo', { text: 'reuse' }));
    assert.match((await g.reply('c0')).error?.message ?? '', /already in use/);
    // The two forwarded calls get no answer once cancelled (MCP); the other eight were denied at once.
    const answered = g.out.filter((m) => typeof m.id === 'string' && /^c\d$/.test(m.id) && m.result);
    assert.equal(answered.length, 8);
    for (const m of answered) assert.match(resultText(m), /^\[POLICY DENIED\] rate limit exceeded/);
    const recs = g.auditFile().filter((r) => r.tool === 'slow');
    assert.equal(recs.filter((r) => r.upstream === 'cancelled').length, 2);
    assert.equal(recs.filter((r) => r.decision === 'rate_limited').length, 9);
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio cancellation (${REVISION[era]}): before forwarding (held for approval) gives the quota back and the upstream never sees the call`, async () => {
  const g = await startGateway(`version: 1
tools:
  echo: { action: require_approval, approval_timeout: 60, rate_limit: { max: 1, window: 600 } }
`, { era });
  try {
    await g.init();
    for (let i = 0; i < 3; i++) {
      g.send(call(`h${i}`, 'echo', { text: 'held' }));
      await g.barrier();
      g.send(cancel(`h${i}`));
    }
    await g.barrier();
    assert.equal(g.upstreamCalls().length, 0);
    const recs = g.auditFile().filter((r) => r.tool === 'echo');
    assert.deepEqual(recs.map((r) => r.decision), ['approval_cancelled', 'approval_cancelled', 'approval_cancelled'], 'each admitted again: the slot came back');
    // No late answer can come to a call the upstream never had: its id is not kept (ids kept for every
    // cancel of a held call, megabytes long each, filled the gateway's memory), and may be used again.
    g.send({ jsonrpc: '2.0', id: 'h0', method: 'tools/list', params: {} });
    const again = await g.reply('h0');
    assert.equal(again.error, undefined, JSON.stringify(again));
    assert.ok(Array.isArray((again.result as { tools?: unknown[] }).tools));
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio upstream errors (${REVISION[era]}): quota comes back only for "not executed" JSON-RPC errors`, async () => {
  const g = await startGateway(`version: 1
tools:
  fail: { rate_limit: { max: 1, window: 600 } }
  tool_error: { rate_limit: { max: 1, window: 600 } }
`, { era });
  try {
    await g.init();
    // -32700, -32600, -32601, -32602 say the request was not run: the single slot comes back each time.
    for (const code of [-32700, -32600, -32601, -32602]) {
      g.send(call(`f${code}`, 'fail', { code }));
      assert.equal((await g.reply(`f${code}`)).error?.code, code);
    }
    // -32603 and a server-defined error may come after the work: the slot stays used.
    g.send(call('f-32603', 'fail', { code: -32603 }));
    assert.equal((await g.reply('f-32603')).error?.code, -32603);
    g.send(call('f-32000', 'fail', { code: -32000 }));
    assert.match(resultText(await g.reply('f-32000')), /^\[POLICY DENIED\] rate limit/);
    g.send(call('te1', 'tool_error'));
    assert.equal((await g.reply('te1')).result?.isError, true);
    g.send(call('te2', 'tool_error'));
    assert.match(resultText(await g.reply('te2')), /^\[POLICY DENIED\] rate limit/, 'isError: true counts');
    assert.equal(g.upstreamCalls().length, 6);
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio timeout after sending keeps the quota (${REVISION[era]})`, async () => {
  const g = await startGateway(`version: 1
call_timeout: 0.3
tools:
  slow: { rate_limit: { max: 1, window: 600 } }
`, { era });
  try {
    await g.init();
    g.send(call('t1', 'slow', { ms: 5000 }));
    const r = await g.reply('t1');
    assert.equal(r.error?.code, -32001);
    assert.match(r.error!.message, /counts against its rate limit/);
    g.send(call('t2', 'slow', { ms: 1 }));
    assert.match(resultText(await g.reply('t2')), /^\[POLICY DENIED\] rate limit/);
    assert.equal(g.upstreamCalls().length, 1);
  } finally {
    await g.close();
  }
});

// A 2026-07-28 call with a session handle is decided only after the handle is registered (state I/O); a
// cancellation that arrives meanwhile ends it there: never forwarded, its quota never taken, and audited.
test('stdio cancellation (2026-07-28): while the session handle is being registered, the call ends unforwarded and audited', async () => {
  const g = await startGateway(`version: 1
tools:
  slow: { rate_limit: { max: 1, window: 600 } }
`, { era: 'modern' });
  try {
    await g.init();
    const withHandle = (id: string) => enveloped({ ...call(id, 'slow', { ms: 1 }), params: { name: 'slow', arguments: { ms: 1 }, _meta: { 'egress-triage/session': 'h1' } } });
    // One write: both lines reach the gateway in the same read, so the cancellation lands while the handle is registered.
    await g.raw(`${JSON.stringify(withHandle('early'))}\n${JSON.stringify(cancel('early'))}\n`);
    await g.barrier();
    assert.equal(g.upstreamCalls().length, 0, 'the cancelled call never reached the upstream');
    g.send(withHandle('later'));
    assert.equal(resultText(await g.reply('later')), 'slept 1', 'its quota was never taken');
    const recs = g.auditFile().filter((r) => r.tool === 'slow');
    const key = JSON.stringify([recs[0]?.identity, 'h1']);
    assert.deepEqual(recs.map((r) => [r.decision, r.rule, r.upstream, r.session]), [
      ['deny', 'cancelled', 'not_forwarded', key],
      ['allow', 'default', 'ok', key],
    ]);
  } finally {
    await g.close();
  }
});
