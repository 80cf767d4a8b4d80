import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, waitFor } from '../gateway/helpers.js';
import { call, envelope, resultText, startGateway, type Msg } from './stdio-helpers.js';

const ELICIT = { elicitation: { form: {} } };
const APPROVAL_KEY = 'egress-triage/policy-approval';

test('stdio 2026-07-28 methods: removed methods are "method not found", discovery and listen pass, 2025-only notifications are dropped', async () => {
  const g = await startGateway('version: 1\ndefault: allow\nforward: [logging/setLevel, resources/read]\n', { era: 'modern' });
  try {
    await g.init();
    // Removed in 2026-07-28, even where the policy forwards the method for 2025-11-25 clients.
    const removed = ['ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe', 'initialize'];
    removed.forEach((method, i) => g.send({ jsonrpc: '2.0', id: `r${i}`, method, params: method === 'initialize' ? { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } : {} }));
    for (let i = 0; i < removed.length; i++) {
      const r = await g.reply(`r${i}`);
      assert.equal(r.error?.code, -32601, `${removed[i]}: ${JSON.stringify(r)}`);
      assert.match(r.error!.message, /does not exist in protocol revision 2026-07-28/);
    }
    for (const method of ['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read']) {
      g.send({ jsonrpc: '2.0', id: `ok-${method}`, method, params: method === 'resources/read' ? { uri: 'file:///x' } : {} });
      assert.ok((await g.reply(`ok-${method}`)).result, method);
    }
    g.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    g.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    await g.barrier();
    const got = g.upstream().map((m) => m.method).filter((m) => m !== 'tools/list');
    assert.deepEqual(got, ['server/discover', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read']);
    const audit = g.auditFile();
    assert.equal(audit.filter((r) => r.rule === 'protocol').length, removed.length + 2);
    assert.ok(audit.some((r) => r.tool === 'method:resources/read' && r.rule === 'forward' && r.decision === 'allow' && r.upstream === 'ok'), 'a forwarded method is audited');
  } finally {
    await g.close();
  }
});

test('stdio envelope lies: a request claiming another revision than its connection, or an unknown one, is refused, audited and never forwarded', async () => {
  // A 2025-11-25 connection: a request claiming 2026-07-28 would get per-request capabilities and another session key.
  const legacy = await startGateway('version: 1\ndefault: allow\n');
  try {
    await legacy.init();
    legacy.send({ ...call('lie-1', 'echo', { text: 'x' }), params: { name: 'echo', arguments: { text: 'x' }, _meta: envelope(ELICIT) } });
    const r = await legacy.reply('lie-1');
    assert.equal(r.error?.code, -32600);
    assert.match(r.error!.message, /this connection speaks 2025-11-25; a request claiming 2026-07-28 is refused/);
    legacy.send({ ...call('lie-2', 'echo', { text: 'x' }), params: { name: 'echo', arguments: { text: 'x' }, _meta: envelope({}, '2025-11-25') } });
    assert.equal((await legacy.reply('lie-2')).error?.code, -32022, 'the envelope names no revision it could be');
    await legacy.barrier();
    assert.equal(legacy.upstreamCalls().length, 0);
    assert.equal(legacy.auditFile().filter((a) => a.tool === 'echo' && a.decision === 'deny' && a.rule === 'protocol').length, 2);
  } finally {
    await legacy.close();
  }
  // A 2026-07-28 connection: a request without the envelope (2025-11-25), or claiming another version.
  const modern = await startGateway('version: 1\ndefault: allow\n', { era: 'modern' });
  try {
    await modern.init();
    await modern.raw(JSON.stringify(call('bare', 'echo', { text: 'x' })) + '\n');
    const bare = await modern.reply('bare');
    assert.equal(bare.error?.code, -32600);
    assert.match(bare.error!.message, /this connection speaks 2026-07-28; a request claiming 2025-11-25 is refused/);
    modern.send({ ...call('other', 'echo', { text: 'x' }), params: { name: 'echo', arguments: {}, _meta: envelope({}, '2099-01-01') } });
    const other = (await modern.reply('other')).error;
    assert.equal(other?.code, -32022);
    assert.deepEqual(other?.data, { supported: ['2026-07-28'], requested: '2099-01-01' }, 'the versions to retry with, and the one asked for');
    modern.send({ jsonrpc: '2.0', id: 'init2', method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, );
    await modern.barrier();
    assert.equal(modern.upstreamCalls().length, 0);
    assert.ok(!modern.upstream().some((m) => m.method === 'initialize'));
  } finally {
    await modern.close();
  }
});

/** One approval asked over MRTR: the gateway's input_required answer to a call of write_thing. */
async function askApproval(g: Awaited<ReturnType<typeof startGateway>>, id: string, args: Record<string, unknown>): Promise<string> {
  g.send(call(id, 'write_thing', args));
  const r = await g.reply(id);
  assert.equal(r.result?.resultType, 'input_required', JSON.stringify(r));
  const q = (r.result!.inputRequests as Record<string, { method: string; params: { message: string } }>)[APPROVAL_KEY]!;
  assert.equal(q.method, 'elicitation/create');
  assert.match(q.params.message, /Policy requires approval for tool "write_thing"/);
  return r.result!.requestState as string;
}

const retry = (id: string, name: string, args: Record<string, unknown>, requestState: unknown, approve = true): Msg => ({
  jsonrpc: '2.0', id, method: 'tools/call',
  params: { name, arguments: args, requestState, inputResponses: { [APPROVAL_KEY]: { action: 'accept', content: { approve } } } },
});

test('stdio 2026-07-28 requestState: forged, altered or minted for another call is -32602; replayed or minted under another policy is a denial', async () => {
  const policy = `version: 1
tools:
  write_thing: { action: require_approval, approval_timeout: 60, approval_elicitation: true }
  other_thing: { action: require_approval, approval_timeout: 60, approval_elicitation: true }
`;
  const g = await startGateway(policy, { era: 'modern', capabilities: ELICIT });
  try {
    await g.init();
    const a = { owner: 'acme' };
    const state = await askApproval(g, 'q1', a);
    assert.equal(g.upstreamCalls().length, 0, 'the question is the gateway\'s own: nothing ran');
    // Forged and altered states.
    const flipped = state.slice(0, 10) + (state[10] === 'A' ? 'B' : 'A') + state.slice(11);
    for (const [id, s] of [['forged', 'v1.eyJwIjp7fX0.AAAA'], ['altered', flipped], ['not-a-string', { tool: 'write_thing' }], ['upstream-style', '{"name":"vpn"}']] as const) {
      g.send(retry(id, 'write_thing', a, s));
      // A state that fails verification is invalid params (-32602), as the SDK's servers answer it.
      const e = (await g.reply(id)).error;
      assert.equal(e?.code, -32602, id);
      assert.match(e!.message, /requestState refused: forged, altered, expired or not issued by this gateway/, id);
      assert.deepEqual(e!.data, { reason: 'invalid_request_state' }, id);
    }
    // A genuine state used for another tool, or for other arguments.
    g.send(retry('tool-b', 'other_thing', a, state));
    const toolB = (await g.reply('tool-b')).error;
    assert.equal(toolB?.code, -32602);
    assert.match(toolB!.message, /requestState refused: it was issued for another call/);
    g.send(retry('args-b', 'write_thing', { owner: 'someone-else' }, state));
    const argsB = (await g.reply('args-b')).error;
    assert.equal(argsB?.code, -32602);
    assert.match(argsB!.message, /requestState refused: it was issued for another call/);
    assert.equal(g.upstreamCalls().length, 0);
    // The genuine retry runs once, without our state or our answer reaching the upstream...
    g.send(retry('ok', 'write_thing', a, state));
    assert.equal(resultText(await g.reply('ok')), 'write_thing ran');
    const up = g.upstreamCalls();
    assert.equal(up.length, 1);
    assert.deepEqual(Object.keys(up[0]!.params!).sort(), ['_meta', 'arguments', 'name']);
    // ...and replaying it is refused: the approval was used.
    g.send(retry('replay', 'write_thing', a, state));
    assert.match(resultText(await g.reply('replay')), /^\[POLICY DENIED\] approval apr_\w+ was already used/);
    assert.equal(g.upstreamCalls().length, 1);
    // A policy reload invalidates states minted under the old policy.
    const s2 = await askApproval(g, 'q2', a);
    writeFileSync(join(g.dir, 'policy.yaml'), `${policy}  echo: { action: allow }\n`);
    await waitFor(() => (g.stderr().includes('policy reloaded') ? true : undefined), 10_000);
    g.send(retry('stale', 'write_thing', a, s2));
    assert.match(resultText(await g.reply('stale')), /^\[POLICY DENIED\] requestState refused: the policy changed/);
    // A declined answer denies the call and records the decision.
    const s3 = await askApproval(g, 'q3', { owner: 'no' });
    g.send(retry('declined', 'write_thing', { owner: 'no' }, s3, false));
    assert.match(resultText(await g.reply('declined')), /^\[POLICY DENIED\] approval apr_\w+ was denied by elicitation: declined in the client/);
    await g.barrier();
    const recs = g.auditFile().filter((r) => r.rule === 'request_state');
    assert.equal(recs.length, 7, 'every refused state is audited');
    assert.ok(recs.every((r) => r.decision === 'deny' && r.upstream === 'not_forwarded'));
  } finally {
    await g.close();
  }
});

test('stdio 2026-07-28: a held call (client cannot be asked) can be cancelled; its approval is withdrawn, not left for a later call', async () => {
  const g = await startGateway('version: 1\ntools:\n  write_thing: { action: require_approval, approval_timeout: 60, rate_limit: { max: 1, window: 600 } }\n', { era: 'modern' });
  try {
    await g.init();
    g.send(call('held', 'write_thing', { owner: 'acme' }));
    const row = await waitFor(async () => {
      const r = await cli(['approvals', 'list', '--db', g.db, '--json']);
      return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((x) => x.tool === 'write_thing');
    });
    g.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'held', reason: 'user gave up' } });
    await g.barrier();
    assert.ok(!g.out.some((m) => m.id === 'held'), 'a cancelled request gets no answer');
    // The approval went with the call: nobody can approve it any more, so no later identical call
    // can spend it (an agent filing requests and withdrawing them would collect passes).
    const rows = async () => JSON.parse((await cli(['approvals', 'list', '--all', '--db', g.db, '--json'])).stdout) as { id: string; tool: string; status: string; reason: string | null }[];
    const withdrawn = await waitFor(async () => (await rows()).find((x) => x.id === row.id && x.status === 'expired'));
    assert.equal(withdrawn.reason, 'withdrawn: the client cancelled the call');
    const approve = await cli(['approvals', 'approve', row.id, '--db', g.db]);
    assert.notEqual(approve.code, 0);
    assert.match(approve.stderr, /is expired, not pending/);
    // the same call again is held for a new approval (the quota came back), and nothing runs
    g.send(call('later', 'write_thing', { owner: 'acme' }));
    const next = await waitFor(async () => (await rows()).find((x) => x.tool === 'write_thing' && x.status === 'pending'));
    assert.notEqual(next.id, row.id);
    await g.barrier();
    assert.equal(g.upstreamCalls().length, 0);
    assert.deepEqual(g.auditFile().filter((r) => r.tool === 'write_thing').map((r) => r.decision), ['approval_cancelled']);
  } finally {
    await g.close();
  }
});

test('stdio 2026-07-28 hot reload: list_changed only on an open subscriptions/listen stream, stamped with its id; never unsolicited', async () => {
  const g = await startGateway('version: 1\ndefault: allow\n', { era: 'modern' });
  const policy = join(g.dir, 'policy.yaml');
  const reloads = () => g.stderr().match(/policy reloaded/g)?.length ?? 0;
  try {
    await g.init();
    writeFileSync(policy, 'version: 1\ndefault: allow\nhide: [echo]\n');
    await waitFor(() => (reloads() >= 1 ? true : undefined), 10_000);
    await g.barrier();
    assert.ok(!g.out.some((m) => m.method === 'notifications/tools/list_changed'), 'no listen stream: nothing sent');
    g.send({ jsonrpc: '2.0', id: 'listen-1', method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true } } });
    g.send({ jsonrpc: '2.0', id: 'listen-2', method: 'subscriptions/listen', params: { notifications: { promptsListChanged: true } } });
    await g.barrier();
    writeFileSync(policy, 'version: 1\ndefault: allow\n');
    const note = await waitFor(() => g.out.find((m) => m.method === 'notifications/tools/list_changed'), 10_000);
    assert.deepEqual(note.params, { _meta: { 'io.modelcontextprotocol/subscriptionId': 'listen-1' } });
    await g.barrier();
    assert.equal(g.out.filter((m) => m.method === 'notifications/tools/list_changed').length, 1, 'not on the stream that did not ask for it');
    // A cancelled stream gets nothing more.
    g.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'listen-1' } });
    await g.barrier();
    const before = reloads();
    writeFileSync(policy, 'version: 1\ndefault: allow\nhide: [echo]\n');
    await waitFor(() => (reloads() > before ? true : undefined), 10_000);
    await g.barrier();
    assert.equal(g.out.filter((m) => m.method === 'notifications/tools/list_changed').length, 1);
  } finally {
    await g.close();
  }
});

test('policy forward: only MCP methods the gateway can forward are accepted, tools/call never', async () => {
  const g = await startGateway('version: 1\n');
  try {
    for (const bad of ['tools/call', 'x/exec', 'resources/reed']) {
      const f = join(g.dir, `bad-${bad.replace('/', '_')}.yaml`);
      writeFileSync(f, `version: 1\nforward: [prompts/get, "${bad}"]\n`);
      const r = await cli(['policy', 'validate', f]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /forward\[1\]: not a method the gateway can forward; one of: resources\/read/);
    }
    const ok = join(g.dir, 'ok.yaml');
    writeFileSync(ok, 'version: 1\nforward: [resources/read, prompts/get, completion/complete, logging/setLevel]\n');
    assert.equal((await cli(['policy', 'validate', ok])).code, 0);
  } finally {
    await g.close();
  }
});
