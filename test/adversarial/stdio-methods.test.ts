import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, resultText, startGateway } from './stdio-helpers.js';

const POLICY = `version: 1
default: allow
hide: ["secret_*"]
`;

test('stdio methods: only allow-listed methods pass; look-alikes of tools/call, resources/read and custom methods are refused and audited', async () => {
  const g = await startGateway(POLICY);
  try {
    await g.init();
    const refused = ['tools/call ', ' tools/call', 'TOOLS/CALL', 'Tools/Call', 'tools/call/x', 'tools\u200b/call', 'tools/calls', 'resources/read', 'resources/subscribe', 'prompts/get', 'completion/complete', 'tasks/get', 'x/exec', ''];
    refused.forEach((method, i) => g.send({ jsonrpc: '2.0', id: `m${i}`, method, params: { name: 'secret_x', arguments: { x: 1 }, uri: 'file:///etc/passwd' } }));
    for (let i = 0; i < refused.length; i++) {
      const r = await g.reply(`m${i}`);
      assert.equal(r.error?.code, -32601, `${JSON.stringify(refused[i])}: ${JSON.stringify(r)}`);
    }
    // The same as notifications: no answer, dropped.
    for (const method of [...refused, 'tools/call']) g.send({ jsonrpc: '2.0', method, params: { name: 'secret_x', arguments: {} } });
    // Allowed requests and notifications still pass.
    for (const method of ['ping', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'logging/setLevel']) {
      g.send({ jsonrpc: '2.0', id: `ok-${method}`, method, params: method === 'logging/setLevel' ? { level: 'info' } : {} });
      const r = await g.reply(`ok-${method}`);
      assert.ok(r.result, `${method} answered by the upstream`);
    }
    g.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    await g.barrier();

    const got = g.upstream().map((m) => m.method);
    assert.deepEqual(
      got.filter((m) => m !== 'ping'),
      ['initialize', 'notifications/initialized', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'logging/setLevel', 'notifications/roots/list_changed'],
    );
    const audit = g.auditFile();
    assert.equal(audit.filter((r) => r.rule === 'protocol').length, refused.length * 2 + 1, 'every refused request and notification is audited');
    assert.ok(audit.some((r) => r.tool === 'method:resources/read' && r.decision === 'deny' && r.upstream === 'not_forwarded'));
    assert.ok(audit.some((r) => r.tool === 'secret_x' && /notification/.test(String(r.reason))), 'a tools/call notification is audited under its tool');
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio messages (${REVISION[era]}): batches, malformed JSON, non-objects and stray responses never reach the upstream; the gateway stays up`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    const batches = [
      [call('b1', 'echo', { text: 'batched' })],
      [call('b2', 'secret_x'), { jsonrpc: '2.0', method: 'notifications/initialized' }],
      [[call('b3', 'echo', { text: 'nested' })]],
      [],
    ];
    for (const b of batches) g.send(b);
    const bad = ['{"jsonrpc":"2.0","id":"p1","method":"tools/call"', 'not json', '42', '"tools/call"', 'null', '{"jsonrpc":"1.0","id":"v1","method":"tools/call","params":{"name":"echo","arguments":{}}}', '{"id":"v2","method":"tools/call","params":{"name":"echo","arguments":{}}}', '{"jsonrpc":"2.0","id":"v3","method":7}'];
    for (const b of bad) await g.raw(b + '\n');
    // A response to a request the upstream never sent, and one with a result that tries to look like a call.
    g.send({ jsonrpc: '2.0', id: 'nobody-asked', result: { name: 'secret_x' } });
    g.send({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'x' } });
    await g.barrier();

    const nullErrors = g.out.filter((m) => m.id === null);
    assert.equal(nullErrors.filter((m) => m.error?.code === -32600 && /batch/i.test(m.error.message)).length, batches.length);
    assert.equal(nullErrors.filter((m) => m.error?.code === -32700).length, 2, 'truncated JSON and plain text');
    assert.ok(!g.out.some((m) => ['b1', 'b2', 'b3', 'p1'].includes(m.id as string)), 'no member of a batch was processed');
    for (const id of ['v1', 'v2', 'v3']) assert.equal((await g.reply(id)).error?.code, -32600);
    assert.equal(g.upstreamCalls().length, 0);
    assert.ok(!g.upstream().some((m) => m.id === 'nobody-asked' || m.id === null), 'stray responses are dropped');

    // Still serving.
    g.send(call('after', 'echo', { text: 'still here' }));
    assert.equal(resultText(await g.reply('after')), 'still here');
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio messages (${REVISION[era]}): what the stdio reader refuses itself (batches, bad JSON, not JSON-RPC 2.0, oversize) is audited, and answered as before`, async () => {
  const g = await startGateway(POLICY, { era, args: ['--max-message-bytes', '4KiB'] });
  try {
    await g.init();
    g.send([call('b1', 'secret_x', { cmd: 'rm -rf /' }), { jsonrpc: '2.0', method: 'notifications/initialized' }]);
    g.send([]);
    await g.raw('not json\n');
    await g.raw('{"jsonrpc":"1.0","id":"v1","method":"tools/call","params":{"name":"secret_x","arguments":{}}}\n');
    await g.raw('{"id":"v2","method":"tools/call","params":{"name":"echo","arguments":{}}}\n');
    await g.raw('42\n');
    await g.raw(`{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"echo","arguments":{"text":"${'x'.repeat(8192)}"}}}\n`);
    g.send(call('after', 'echo', { text: 'still here' }));
    assert.equal(resultText(await g.reply('after')), 'still here');

    // The answers are the reader's, unchanged.
    assert.deepEqual(g.out.filter((m) => m.id === null).map((m) => m.error?.code), [-32600, -32600, -32700, -32600]);
    for (const id of ['v1', 'v2']) assert.deepEqual((await g.reply(id)).error, { code: -32600, message: 'Invalid Request' });
    assert.match((await g.reply('big')).error?.message ?? '', /^Invalid Request: message of \d+ bytes exceeds the limit of 4096 bytes$/);
    assert.equal(g.upstreamCalls().length, 1, 'only the last call reached the upstream');

    const allowed = g.auditFile().find((r) => r.tool === 'echo' && r.decision === 'allow');
    for (const recs of [g.auditFile(), await g.auditTable()]) {
      const refused = recs.filter((r) => r.rule === 'protocol');
      assert.deepEqual(refused.map((r) => [r.tool, r.reason]), [
        ['<batch>', 'Invalid Request: JSON-RPC batches are not supported by this gateway (2 messages: tools/call "secret_x", notifications/initialized)'],
        ['<batch>', 'Invalid Request: JSON-RPC batches are not supported by this gateway (0 messages)'],
        ['<invalid message>', 'Parse error: the line is not valid JSON'],
        ['secret_x', 'Invalid Request: "jsonrpc" must be "2.0"'],
        ['echo', 'Invalid Request: "jsonrpc" must be "2.0"'],
        ['<invalid message>', 'Invalid Request: a message must be a JSON object'],
        ['method:tools/call', refused[6]?.reason],
      ]);
      assert.match(String(refused[6]!.reason), /^Invalid Request: message of \d+ bytes exceeds the limit of 4096 bytes$/);
      for (const r of refused) {
        assert.equal(r.decision, 'deny');
        assert.equal(r.upstream, 'not_forwarded');
        assert.equal(r.identity, allowed?.identity, 'under the identity of the connection');
        assert.ok(r.session, 'and a session');
      }
    }
  } finally {
    await g.close();
  }
});
