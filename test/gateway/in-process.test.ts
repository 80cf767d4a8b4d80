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
  const policy = t.file('p.yaml', 'version: 1\ntools:\n  tick: { rate_limit: { max: 1, window: 600, scope: session } }\n');
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
  // Without a resolver the key is the identity: handles do not open new sessions.
  const b = await run('modern');
  try {
    assert.equal(await b.tick('C'), 'tock');
    assert.match(await b.tick('D'), /^\[POLICY DENIED\] rate limit exceeded/);
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
  const audit = (await cli(['audit', '--db', t.db, '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(audit.map((r) => `${String(r.session)}:${String(r.decision)}`), [
    'agent-7/A:allow', 'agent-7/A:rate_limited', 'agent-7/B:allow', 'agent-7:deny', 'agent-7:allow', 'agent-7:rate_limited',
    'legacy-session:allow', 'legacy-session:rate_limited',
  ]);
  const file = readFileSync(join(t.dir, 'policy-audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(file.length === 8 && file.every((r) => r.upstreamName === 'inproc-upstream'), 'every record names the upstream');
  t.cleanup();
});
