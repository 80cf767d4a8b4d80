import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { InMemoryTransport, McpServer } from '@modelcontextprotocol/server';
import { createPolicyGatewayForServer } from '../../src/gateway/in-process.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers.js';
import { PolicyHolder } from '../../src/policy/holder.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { SlidingWindowLimiter } from '../../src/policy/rate-limiter.js';
import { ERAS, REVISION, newClient, text, tmpDir, waitFor, type Era } from './helpers.js';

function makeServer(onSlow: { release?: () => void }) {
  const server = new McpServer({ name: 'inproc', version: '1' });
  server.registerTool('hello', { inputSchema: { name: z.string() } }, async ({ name }) => ({ content: [{ type: 'text', text: `hello ${name}` }] }));
  server.registerTool('drop_all', { annotations: { destructiveHint: true } }, async () => ({ content: [{ type: 'text', text: 'dropped' }] }));
  server.registerTool('tick', {}, async () => ({ content: [{ type: 'text', text: 'tock' }] }));
  server.registerTool('hang', {}, () => new Promise((resolve) => (onSlow.release = () => resolve({ content: [{ type: 'text', text: 'late' }] }))));
  return server;
}

for (const era of ERAS) test(`in-process mode (${REVISION[era]}): policy between an McpServer and its client transport; a crash after the call was sent keeps its quota`, async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
hide: [drop_all]
tools:
  hello: { rate_limit: { max: 2, window: 60 } }
  hang: { rate_limit: { max: 1, window: 60, scope: global } }
  tick: { rate_limit: { max: 1, window: 0.6 } }
`,
  );
  const hooks: { release?: () => void } = {};
  let server: McpServer | undefined;
  const [clientSide, serverFacing] = InMemoryTransport.createLinkedPair();
  // Time comes from an injected clock: the test moves it instead of sleeping.
  let now = Date.now();
  const holder = new PolicyHolder(policy, undefined, new SlidingWindowLimiter(() => now));
  const state = new SqlitePolicyState({ dbPath: t.db, clock: () => now });
  const runtime = { holder, state, close: () => (holder.close(), state.close()) };
  const gw = await createPolicyGatewayForServer({ policyPath: policy, dbPath: t.db, serverFactory: () => (server = makeServer(hooks)), clientTransport: serverFacing, identity: 'tester', runtime });
  const client = newClient(era, {}, 'c');
  await client.connect(clientSide);
  try {
    assert.equal(client.getNegotiatedProtocolVersion(), REVISION[era]);
    assert.deepEqual((await client.listTools()).tools.map((x) => x.name).sort(), ['hang', 'hello', 'tick']);
    assert.equal(text(await client.callTool({ name: 'hello', arguments: { name: 'a' } })), 'hello a');
    assert.equal(text(await client.callTool({ name: 'hello', arguments: { name: 'b' } })), 'hello b');
    const third = await client.callTool({ name: 'hello', arguments: { name: 'c' } });
    assert.equal(third.isError, true);
    assert.match(text(third), /^\[POLICY DENIED\] rate limit exceeded/);
    assert.match(text(await client.callTool({ name: 'drop_all', arguments: {} })), /^\[POLICY DENIED\]/);

    // The window slides and frees the slot on its own, exactly one window after it was used.
    assert.equal(text(await client.callTool({ name: 'tick', arguments: {} })), 'tock');
    assert.match(text(await client.callTool({ name: 'tick', arguments: {} })), /^\[POLICY DENIED\] rate limit .*retry after 1s/);
    now += 599;
    assert.match(text(await client.callTool({ name: 'tick', arguments: {} })), /^\[POLICY DENIED\] rate limit/);
    now += 1;
    assert.equal(text(await client.callTool({ name: 'tick', arguments: {} })), 'tock');
    const limiter = gw.runtime.holder.limiter;
    const key = 'tools.hang.rate_limit\u0000g';
    const p = client.callTool({ name: 'hang', arguments: {} }, { timeout: 10_000 });
    await waitFor(() => (hooks.release ? true : undefined)); // the call reached the server
    assert.equal(await limiter.used(key, 60_000), 1);
    await server!.close(); // the upstream goes away with the call in flight
    await assert.rejects(p, /upstream closed or crashed.*counts against its rate limit/);
    assert.equal(await limiter.used(key, 60_000), 1, 'the server had the call: a crash does not give the quota back');
  } finally {
    await client.close().catch(() => undefined);
    await gw.close();
    runtime.close();
    t.cleanup();
  }
});

// 2026-07-28 has no sessions: the "session" scope counts against the key the modernSession resolver
// derives from each request's _meta (the identity when there is none), and a refusal denies the call.
test('in-process mode (2026-07-28): "session" limits use the modernSession key; a refused session is a denial; 2025 keeps its session', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\nsessions: { max_handles: 2 }\ntools:\n  tick: { rate_limit: { max: 1, window: 600, scope: session } }\n');
  const run = async (era: Era, resolver?: (meta: Record<string, unknown> | undefined) => Promise<{ ok: true; key: string } | { ok: false; reason: string }>) => {
    const [clientSide, serverFacing] = InMemoryTransport.createLinkedPair();
    const gw = await createPolicyGatewayForServer({
      policyPath: policy, dbPath: t.db, serverFactory: () => makeServer({}), clientTransport: serverFacing, identity: 'agent-7',
      modernSession: resolver, upstreamName: 'inproc-upstream', sessionId: 'legacy-session',
    });
    const client = newClient(era, {}, 'c');
    await client.connect(clientSide);
    const tick = async (handle?: string) => text(await client.callTool({ name: 'tick', arguments: {}, ...(handle ? { _meta: { 'egress-triage/session': handle } } : {}) }));
    return { gw, client, tick };
  };
  const byHandle = async (meta: Record<string, unknown> | undefined) => {
    const h = meta?.['egress-triage/session'];
    if (h === 'refused') return { ok: false as const, reason: 'too many session handles for agent-7' };
    return { ok: true as const, key: `agent-7/${typeof h === 'string' ? h : '-'}` };
  };
  const a = await run('modern', byHandle);
  try {
    assert.equal(await a.tick('A'), 'tock');
    assert.match(await a.tick('A'), /^\[POLICY DENIED\] rate limit exceeded .*scope session/);
    assert.equal(await a.tick('B'), 'tock', 'another handle is another session');
    assert.match(await a.tick('refused'), /^\[POLICY DENIED\] session identity refused: too many session handles for agent-7/);
  } finally {
    await a.client.close().catch(() => undefined);
    await a.gw.close();
  }
  // Without a resolver of its own, the gateway uses the policy's session handles: identity plus handle,
  // at most sessions.max_handles live ones, and no handle is the identity's own session.
  const b = await run('modern');
  try {
    assert.equal(await b.tick('C'), 'tock');
    assert.match(await b.tick('C'), /^\[POLICY DENIED\] rate limit exceeded/);
    assert.equal(await b.tick('D'), 'tock');
    assert.match(await b.tick('E'), /^\[POLICY DENIED\] session identity refused: .*2/, 'a third live handle is over the cap');
    assert.equal(await b.tick(), 'tock', 'no handle: the identity itself');
  } finally {
    await b.client.close().catch(() => undefined);
    await b.gw.close();
  }
  // 2025-11-25 keeps the connection's session, whatever the request's _meta says.
  const c = await run('legacy', byHandle);
  try {
    assert.equal(await c.tick('X'), 'tock');
    assert.match(await c.tick('Y'), /^\[POLICY DENIED\] rate limit exceeded/);
  } finally {
    await c.client.close().catch(() => undefined);
    await c.gw.close();
  }
  const audit = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(audit.map((r) => `${String(r.session)}:${String(r.decision)}`), [
    'agent-7/A:allow', 'agent-7/A:rate_limited', 'agent-7/B:allow', 'agent-7:deny',
    '["agent-7","C"]:allow', '["agent-7","C"]:rate_limited', '["agent-7","D"]:allow', 'agent-7:deny', '["agent-7"]:allow',
    'legacy-session:allow', 'legacy-session:rate_limited',
  ]);
  const file = readFileSync(join(t.dir, 'policy-audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(file.length === 11 && file.every((r) => r.upstreamName === 'inproc-upstream'), 'every record names the upstream');
  t.cleanup();
});

// `scope: upstream` counts every call to one registered upstream, whichever session or identity makes
// it, and nothing of another upstream's, even when both upstreams share the policy file and its counters.
test('in-process mode: "upstream" limits are keyed by the upstream name, across sessions, apart from other upstreams', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ntools:\n  tick: { rate_limit: { max: 1, window: 600, scope: upstream } }\n');
  const now = Date.now();
  const holder = new PolicyHolder(policy, undefined, new SlidingWindowLimiter(() => now));
  const state = new SqlitePolicyState({ dbPath: t.db, clock: () => now });
  const runtime = { holder, state, close: () => undefined };
  const open = async (upstreamName: string, identity: string, sessionId: string) => {
    const [clientSide, serverFacing] = InMemoryTransport.createLinkedPair();
    const gw = await createPolicyGatewayForServer({
      policyPath: policy, dbPath: t.db, serverFactory: () => makeServer({}), clientTransport: serverFacing, identity, sessionId, upstreamName, runtime,
    });
    const client = newClient('legacy', {}, 'c');
    await client.connect(clientSide);
    return { gw, client, tick: async () => text(await client.callTool({ name: 'tick', arguments: {} })) };
  };
  const sessions = [await open('alpha', 'agent-1', 's1'), await open('alpha', 'agent-2', 's2'), await open('beta', 'agent-1', 's3')];
  try {
    assert.equal(await sessions[0]!.tick(), 'tock');
    assert.match(await sessions[1]!.tick(), /^\[POLICY DENIED\] rate limit exceeded .*scope upstream/, 'another session and identity on the same upstream share its count');
    assert.equal(await sessions[2]!.tick(), 'tock', 'another upstream has its own count');
    assert.match(await sessions[2]!.tick(), /^\[POLICY DENIED\] rate limit exceeded/);
  } finally {
    for (const s of sessions) {
      await s.client.close().catch(() => undefined);
      await s.gw.close();
    }
    holder.close();
    state.close();
  }
  t.cleanup();
});

// A 2026-07-28 call whose session key is still being resolved (session handles are stored: I/O) when
// the client goes away: it was never decided nor forwarded, and it still gets its one audit record.
test('2026-07-28: a call still waiting for its session key when the client disconnects is audited as cancelled, never forwarded', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ndefault: allow\n');
  let release!: (s: { ok: true; key: string }) => void;
  const sessionKey = new Promise<{ ok: true; key: string }>((r) => (release = r));
  const ran: string[] = [];
  const server = new McpServer({ name: 'inproc', version: '1' });
  server.registerTool('hello', { inputSchema: { name: z.string() } }, async ({ name }) => (ran.push(name), { content: [{ type: 'text', text: `hello ${name}` }] }));
  const [clientSide, serverFacing] = InMemoryTransport.createLinkedPair();
  const gw = await createPolicyGatewayForServer({ policyPath: policy, dbPath: t.db, serverFactory: () => server, clientTransport: serverFacing, identity: 'tester', modernSession: () => sessionKey, auditFile: false });
  try {
    await clientSide.start();
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    await clientSide.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'hello', arguments: { name: 'late' }, _meta: meta } });
    await clientSide.close();
    release({ ok: true, key: 'k' });
    const records = await waitFor(async () => {
      const r = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim();
      return r ? r.split('\n').map((l) => JSON.parse(l) as { tool: string; decision: string; rule: string; reason: string; upstream: string }) : undefined;
    });
    assert.deepEqual(records.map((r) => [r.tool, r.decision, r.rule, r.reason, r.upstream]), [['hello', 'deny', 'cancelled', 'client disconnected before the policy decided', 'not_forwarded']]);
    assert.deepEqual(ran, []);
  } finally {
    await gw.close();
    t.cleanup();
  }
});
