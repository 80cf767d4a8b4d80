import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { CLI, FIXTURE, cli, kill, spawnUntil, text, tmpDir, waitFor } from './helpers.js';

const TOK = { alice: 'alice-token-0123456789abcdef', bob: 'bob-token-0123456789abcdefgh', admin: 'admin-token-0123456789abcdef' };

async function connect(url: string, token?: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'http-test', version: '1' }, { capabilities });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : undefined));
  return client;
}

test('HTTP gateway: tokens, identity and session scopes, no Authorization forwarding, batches, approvals API, many sessions', async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
default: allow
hide: [delete_thing]
tools:
  echo: { rate_limit: { max: 2, window: 60 } }
  add: { rate_limit: { max: 3, window: 60, scope: client } }
  write_thing: { action: require_approval, approval_timeout: 30 }
`,
  );
  const grants = t.file(
    'grants.yaml',
    `grants:
  - { identity: alice, token: ${TOK.alice} }
  - { identity: bob, token: ${TOK.bob} }
  - { identity: ops, token: ${TOK.admin}, admin: true }
`,
  );
  const up = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
  const upstreamUrl = `http://127.0.0.1:${up.match[1]}/mcp`;
  const gw = await spawnUntil(
    process.execPath,
    [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', upstreamUrl, '--listen', '127.0.0.1:0', '--grants', grants, '--upstream-header', 'Authorization: Bearer upstream-secret'],
    /listening on (http:\/\/\S+)/,
  );
  const url = gw.match[1]!;
  const base = url.replace(/\/mcp$/, '');
  const clients: Client[] = [];
  try {
    await assert.rejects(connect(url), /401|Unauthorized|bearer/i);
    await assert.rejects(connect(url, 'wrong-token-000000000000'), /401|Unauthorized|bearer/i);

    const a1 = await connect(url, TOK.alice);
    const a2 = await connect(url, TOK.alice);
    const b1 = await connect(url, TOK.bob);
    clients.push(a1, a2, b1);

    // The upstream sees the gateway's credentials, never the agent's.
    assert.deepEqual(JSON.parse(text(await a1.callTool({ name: 'whoami', arguments: {} }))), { authorization: 'Bearer upstream-secret' });

    // session scope: a1's quota does not touch a2's.
    for (let i = 0; i < 2; i++) assert.equal(text(await a1.callTool({ name: 'echo', arguments: { text: 'x' } })), 'x');
    assert.match(text(await a1.callTool({ name: 'echo', arguments: { text: 'x' } })), /^\[POLICY DENIED\] rate limit/);
    assert.equal(text(await a2.callTool({ name: 'echo', arguments: { text: 'y' } })), 'y');

    // client scope: alice's two sessions share 3; bob has his own 3.
    await a1.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
    await a2.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
    await a2.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
    assert.match(text(await a1.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), /scope client/);
    assert.equal(text(await b1.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2');

    assert.ok(!(await a1.listTools()).tools.some((x) => x.name === 'delete_thing'));

    // Batch POST is refused before it reaches any session.
    const sid = (a1 as unknown as { _transport: { sessionId?: string } })._transport.sessionId!;
    const batch = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOK.alice}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'echo', arguments: { text: 'smuggled' } } }]),
    });
    assert.equal(batch.status, 400);
    assert.equal(((await batch.json()) as { error: { code: number } }).error.code, -32600);
    // Bob cannot ride alice's session.
    const hijack = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOK.bob}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 100, method: 'tools/list' }),
    });
    assert.equal(hijack.status, 403);

    // Approvals over the HTTP API: only an admin token may decide.
    const pendingCall = a1.callTool({ name: 'write_thing', arguments: { owner: 'acme' } }, { timeout: 30_000 });
    const list = await waitFor(async () => {
      const r = await fetch(`${base}/policy/approvals`, { headers: { authorization: `Bearer ${TOK.admin}` } });
      const j = (await r.json()) as { approvals: { id: string; identity: string }[] };
      return j.approvals[0];
    });
    assert.equal(list.identity, 'alice');
    const agentTry = await fetch(`${base}/policy/approvals/${list.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOK.alice}` } });
    assert.equal(agentTry.status, 403, 'an agent cannot approve its own call');
    // A decision that did not arrive whole, or carries a reason too long to show, decides nothing.
    const approve = (body: string) => fetch(`${base}/policy/approvals/${list.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOK.admin}` }, body });
    const tooLarge = await approve(JSON.stringify({ reason: 'x'.repeat(5 * 1024 * 1024) }));
    assert.equal(tooLarge.status, 413, await tooLarge.text());
    const longReason = await approve(JSON.stringify({ reason: 'y'.repeat(2_001) }));
    assert.equal(longReason.status, 400);
    assert.match(((await longReason.json()) as { error: string }).error, /reason is 2001 characters long; at most 2000: nothing was decided/);
    assert.equal((await approve('{"reason": 7}')).status, 400);
    assert.equal((await approve('[]')).status, 400);
    const { port } = new URL(base);
    await new Promise<void>((resolve, reject) => {
      const sock = netConnect(Number(port), '127.0.0.1', () => {
        sock.write(
          `POST /policy/approvals/${list.id}/approve HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOK.admin}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"reason": "wait, I am still ty',
          () => sock.destroy(),
        );
      });
      sock.once('close', () => resolve());
      sock.once('error', reject);
    });
    const stillPending = await fetch(`${base}/policy/approvals`, { headers: { authorization: `Bearer ${TOK.admin}` } });
    assert.deepEqual(((await stillPending.json()) as { approvals: { id: string }[] }).approvals.map((a) => a.id), [list.id], 'nothing was decided');
    const ok = await fetch(`${base}/policy/approvals/${list.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${TOK.admin}` }, body: '{}' });
    assert.equal(ok.status, 200);
    assert.equal(text(await pendingCall), 'write_thing ok {"owner":"acme"}');

    // Many sessions in parallel: every response comes back to the session and call that asked.
    const many = await Promise.all(Array.from({ length: 20 }, () => connect(url, TOK.bob)));
    clients.push(...many);
    const answers = await Promise.all(
      many.flatMap((c, i) => Array.from({ length: 2 }, (_, j) => c.callTool({ name: 'echo', arguments: { text: `s${i}-c${j}` } }).then((r) => [`s${i}-c${j}`, text(r)]))),
    );
    for (const [want, got] of answers) assert.equal(got, want);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await kill(gw.child);
    await kill(up.child);
  }
  const audit = (await cli(['audit', '--db', t.db, '--jsonl', '--tool', 'add'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(audit.map((a) => a.identity))].sort(), ['alice', 'bob']);
  t.cleanup();
});

test('HTTP gateway refuses a non-loopback listen address without tokens', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\n');
  const r = await cli(['gateway', '--policy', policy, '--db', t.db, '--upstream', 'http://127.0.0.1:9/mcp', '--listen', '0.0.0.0:0']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /refusing to listen on non-loopback address 0\.0\.0\.0 without bearer tokens/);
  t.cleanup();
});

test('HTTP gateway: answers are plain JSON, and switch to a stream when a call elicits mid-way (policy and upstream)', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ndefault: allow\ntools:\n  write_thing: { action: require_approval, approval_timeout: 30, approval_elicitation: true }\n');
  // The SSE upstream can elicit in the middle of a call; the JSON one answers every POST with one JSON body.
  const up = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
  const upJson = await spawnUntil(process.execPath, [FIXTURE, '--http', '--json'], /LISTENING (\d+)/);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', `http://127.0.0.1:${up.match[1]}/mcp`, '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+)/);
  const gwJson = await spawnUntil(
    process.execPath,
    [CLI, 'gateway', '--policy', policy, '--db', t.file('j.db', ''), '--upstream', `http://127.0.0.1:${upJson.match[1]}/mcp`, '--listen', '127.0.0.1:0'],
    /listening on (http:\/\/\S+)/,
  );
  const clients: Client[] = [];
  try {
    for (const url of [gw.match[1]!, gwJson.match[1]!]) {
      // A raw POST on an established session gets one application/json answer with the same id.
      const c = await connect(url);
      clients.push(c);
      const sid = (c as unknown as { _transport: { sessionId?: string } })._transport.sessionId!;
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'raw-1', method: 'tools/call', params: { name: 'echo', arguments: { text: 'plain' } } }),
      });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(r.headers.get('mcp-session-id'), sid);
      const j = (await r.json()) as { id: string; result: unknown };
      assert.equal(j.id, 'raw-1');
      assert.equal(text(j.result), 'plain');
      // Bad requests still get the SDK's errors.
      const noAccept = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'mcp-session-id': sid },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'raw-2', method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }),
      });
      assert.equal(noAccept.status, 406);
      const badVersion = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'raw-3', method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }),
      });
      assert.equal(badVersion.status, 400);
      // Many calls at once on one session: each answer comes back to its own call.
      const got = await Promise.all(Array.from({ length: 40 }, (_, i) => c.callTool({ name: 'echo', arguments: { text: `m${i}` } }).then(text)));
      assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => `m${i}`));
    }

    // Elicitation in the middle of a call: the policy's approval question and the upstream's own one.
    const seen: string[] = [];
    const c = await connect(gw.match[1]!, undefined, { elicitation: { form: {} } });
    clients.push(c);
    c.setRequestHandler('elicitation/create', async (req): Promise<{ action: 'accept'; content: Record<string, string | boolean> }> => {
      seen.push(req.params.message);
      if (req.params.message.includes('Policy requires approval')) return { action: 'accept', content: { approve: true } };
      return { action: 'accept', content: { value: 'v7' } };
    });
    assert.equal(text(await c.callTool({ name: 'write_thing', arguments: { owner: 'acme' } })), 'write_thing ok {"owner":"acme"}');
    assert.equal(text(await c.callTool({ name: 'ask', arguments: {} })), 'got accept:v7');
    // With another call in flight, the upstream's elicitation still reaches the client mid-call.
    const [slow, ask] = await Promise.all([
      c.callTool({ name: 'slow', arguments: { ms: 400 } }).then(text),
      c.callTool({ name: 'ask', arguments: {} }).then(text),
    ]);
    assert.deepEqual([slow, ask], ['slept 400', 'got accept:v7']);
    assert.equal(seen.length, 3);
    // Failures upstream still come back as errors with the call's id.
    await assert.rejects(c.callTool({ name: 'fail_rpc', arguments: {} }), /fixture failure/);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await kill(gw.child);
    await kill(gwJson.child);
    await kill(up.child);
    await kill(upJson.child);
  }
  t.cleanup();
});

/** `serve` on an empty store: a real upstream that speaks both 2025-11-25 and 2026-07-28. */
async function startServeUpstream(t: ReturnType<typeof tmpDir>) {
  const db = t.file('upstream.db', '');
  SqliteStore.open(db).close();
  return spawnUntil(process.execPath, [CLI, 'serve', '--db', db, '--tenant', 'demo', '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+\/mcp)/);
}

const modernClient = async (url: string, token?: string) => {
  const c = new Client({ name: 'modern-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : undefined));
  return c;
};

test('HTTP gateway serves 2026-07-28 statelessly under the policy (per-request proxy, no session), and 2025-11-25 clients keep sessions', async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
default: allow
hide: [delete_suppression_rule]
sessions: { max_handles: 2 }
tools:
  list_suppression_rules: { action: deny, reason: not for agents }
  ping: { rate_limit: { max: 2, window: 600, scope: session } }
`,
  );
  const grants = t.file('grants.yaml', `grants:\n  - { identity: alice, token: ${TOK.alice} }\n  - { identity: bob, token: ${TOK.bob} }\n`);
  const up = await startServeUpstream(t);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', up.match[1]!, '--listen', '127.0.0.1:0', '--grants', grants], /listening on (http:\/\/\S+)/);
  const url = gw.match[1]!;
  const clients: Client[] = [];
  try {
    const a = await modernClient(url, TOK.alice);
    clients.push(a);
    assert.equal(a.getNegotiatedProtocolVersion(), '2026-07-28');
    const tools = (await a.listTools()).tools.map((x) => x.name);
    assert.ok(tools.includes('get_my_tenant') && !tools.includes('delete_suppression_rule'), tools.join(','));
    assert.match(text(await a.callTool({ name: 'get_my_tenant', arguments: {} })), /demo/);
    assert.match(text(await a.callTool({ name: 'list_suppression_rules', arguments: {} })), /^\[POLICY DENIED\] not for agents/);
    // No session in 2026-07-28: "session" scope counts against the identity, whichever connection.
    const a2 = await modernClient(url, TOK.alice);
    clients.push(a2);
    assert.ok(!(await a.callTool({ name: 'ping', arguments: {} })).isError);
    assert.ok(!(await a2.callTool({ name: 'ping', arguments: {} })).isError);
    assert.match(text(await a.callTool({ name: 'ping', arguments: {} })), /^\[POLICY DENIED\] rate limit/);
    // A session handle in _meta is a session of its own (identity plus handle), at most two live per identity here.
    const withHandle = (h: string) => ({ name: 'ping', arguments: {}, _meta: { 'egress-triage/session': h } });
    assert.ok(!(await a.callTool(withHandle('conv-1'))).isError, 'a handle opens its own session count');
    assert.ok(!(await a.callTool(withHandle('conv-1'))).isError);
    assert.match(text(await a.callTool(withHandle('conv-1'))), /^\[POLICY DENIED\] rate limit/);
    assert.ok(!(await a.callTool(withHandle('conv-2'))).isError);
    assert.match(text(await a.callTool(withHandle('conv-3'))), /^\[POLICY DENIED\] session identity refused: .*2/, 'a third live handle is over the cap');
    const b = await modernClient(url, TOK.bob);
    clients.push(b);
    assert.ok(!(await b.callTool({ name: 'ping', arguments: {} })).isError, 'bob has his own count');
    assert.ok(!(await b.callTool(withHandle('conv-3'))).isError, "alice's cap is not bob's");
    // A 2025-11-25 client on the same endpoint gets a session, policed the same way.
    const legacy = await connect(url, TOK.bob);
    clients.push(legacy);
    assert.equal(legacy.getNegotiatedProtocolVersion(), '2025-11-25');
    assert.ok((legacy as unknown as { _transport: { sessionId?: string } })._transport.sessionId);
    assert.match(text(await legacy.callTool({ name: 'list_suppression_rules', arguments: {} })), /^\[POLICY DENIED\]/);
    assert.match(text(await legacy.callTool({ name: 'get_my_tenant', arguments: {} })), /demo/);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await kill(gw.child);
    await kill(up.child);
  }
  const audit = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const denied = audit.filter((r) => r.tool === 'list_suppression_rules');
  assert.deepEqual(denied.map((r) => [r.identity, r.decision]).sort(), [['alice', 'deny'], ['bob', 'deny']]);
  const modernCall = audit.find((r) => r.tool === 'get_my_tenant' && r.identity === 'alice');
  assert.ok(modernCall && modernCall.upstream === 'ok', JSON.stringify(audit));
  // No session id in 2026-07-28: the session scope key is the identity, or the identity plus a handle.
  assert.equal(modernCall.session, JSON.stringify(['alice']));
  assert.ok(audit.some((r) => r.tool === 'ping' && r.session === JSON.stringify(['alice', 'conv-1']) && r.decision === 'rate_limited'));
  t.cleanup();
});

test('HTTP gateway: a 2026-07-28 request whose Mcp-Name, Mcp-Method or MCP-Protocol-Version header disagrees with the body is refused with 400 and audited', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ndefault: allow\ntools:\n  create_suppression_rule: { action: deny, reason: humans only }\n');
  const up = await startServeUpstream(t);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', up.match[1]!, '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+)/);
  const url = gw.match[1]!;
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };
  const post = (headers: Record<string, string>, name = 'create_suppression_rule') =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {}, _meta: envelope } }),
    });
  try {
    const std = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' };
    const cases: Record<string, string>[] = [
      { ...std, 'mcp-name': 'get_my_tenant' }, // names an allowed tool over a denied one
      { ...std }, // Mcp-Name missing
      { 'mcp-protocol-version': '2026-07-28', 'mcp-name': 'create_suppression_rule' }, // Mcp-Method missing
      { 'mcp-method': 'tools/call', 'mcp-name': 'create_suppression_rule' }, // MCP-Protocol-Version missing
      { ...std, 'mcp-method': 'tools/list', 'mcp-name': 'create_suppression_rule' },
      { ...std, 'mcp-name': `=?base64?${Buffer.from('get_my_tenant').toString('base64')}?=` },
    ];
    for (const headers of cases) {
      const r = await post(headers);
      assert.equal(r.status, 400, JSON.stringify(headers));
      const j = (await r.json()) as { id: number; error: { code: number; message: string } };
      assert.equal(j.id, 7);
      assert.equal(j.error.code, -32020, j.error.message);
    }
    // Headers that agree pass (and the policy decides): the Base64 form of the same name included.
    // (The upstream here speaks both revisions; one that speaks only 2025-11-25 is the next test.)
    const ok = await post({ ...std, 'mcp-name': `=?base64?${Buffer.from('get_my_tenant').toString('base64')}?=` }, 'get_my_tenant');
    assert.equal(ok.status, 200);
    assert.match(JSON.stringify(await ok.json()), /demo/);
    // The revision's HTTP statuses hold through the gateway: an unknown method is 404, an unsupported
    // version 400.
    const raw = (method: string, pv: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': pv, 'mcp-method': method },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method, params: { _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': pv } } }),
      });
    const unknown = await raw('no/such', '2026-07-28');
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: number } }).error.code, -32601);
    const version = await raw('tools/list', '2099-01-01');
    assert.equal(version.status, 400);
    const ve = ((await version.json()) as { error: { code: number; data?: { supported?: string[]; requested?: string } } }).error;
    assert.equal(ve.code, -32022);
    // UnsupportedProtocolVersionError's data: the versions an envelope may claim, and the one asked for.
    assert.deepEqual(ve.data, { supported: ['2026-07-28'], requested: '2099-01-01' });
    // A 2025-11-25 session ended with DELETE is gone: the next request naming it gets 404.
    const legacy = await connect(url);
    const sid = (legacy as unknown as { _transport: { sessionId?: string } })._transport.sessionId!;
    const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(del.status, 200);
    const after = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(after.status, 404);
    await legacy.close().catch(() => undefined);
  } finally {
    await kill(gw.child);
    await kill(up.child);
  }
  const audit = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const refused = audit.filter((r) => r.rule === 'protocol' && r.tool === 'create_suppression_rule');
  assert.equal(refused.length, 6, JSON.stringify(audit));
  assert.ok(refused.every((r) => r.decision === 'deny' && r.tool === 'create_suppression_rule' && r.upstream === 'not_forwarded' && /headers and body disagree/.test(r.reason)));
  t.cleanup();
});

test('HTTP gateway: an identity holds at most sessions.max_http_sessions open 2025-11-25 sessions, even in a burst; ending one frees its slot', async () => {
  const t = tmpDir();
  t.file('p.yaml', 'version: 1\ndefault: allow\nsessions: { max_http_sessions: 2 }\n');
  const grants = t.file('grants.yaml', `grants:\n  - { identity: alice, token: ${TOK.alice} }\n  - { identity: bob, token: ${TOK.bob} }\n`);
  // a command upstream: each session starts its own child, so opening one takes real time, during which
  // the next initializes of a burst arrive
  const config = t.file('gateway.yaml', `upstreams:\n  - name: fx\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]\n    policy: p.yaml\n`);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', t.db, '--listen', '127.0.0.1:0', '--grants', grants], /listening on (http:\/\/\S+\/s\/fx\/mcp)/);
  const url = gw.match[1]!;
  const clients: Client[] = [];
  try {
    const a1 = await connect(url, TOK.alice);
    const a2 = await connect(url, TOK.alice);
    clients.push(a1, a2);
    await assert.rejects(connect(url, TOK.alice), /session refused: identity \W*alice\W* already holds 2 open MCP sessions on this gateway \(policy sessions\.max_http_sessions: 2\)/);
    assert.equal(text(await a2.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'still here', 'the open sessions are untouched');
    // ten initializes at once: the cap holds for those still being opened too
    const burst = await Promise.allSettled(Array.from({ length: 10 }, () => connect(url, TOK.bob)));
    const opened = burst.filter((r): r is PromiseFulfilledResult<Client> => r.status === 'fulfilled').map((r) => r.value);
    clients.push(...opened);
    assert.equal(opened.length, 2, burst.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')).join('\n'));
    // ending a session (HTTP DELETE) frees its slot at once
    await (a1 as unknown as { _transport: StreamableHTTPClientTransport })._transport.terminateSession();
    const a3 = await connect(url, TOK.alice);
    clients.push(a3);
    assert.equal(text(await a3.callTool({ name: 'echo', arguments: { text: 'new' } })), 'new');
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await kill(gw.child);
  }
  const refused = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { identity: string; reason?: string });
  assert.equal(refused.filter((r) => /session refused/.test(r.reason ?? '')).length, 1 + 8, 'every refused initialize is audited');
  t.cleanup();
});
