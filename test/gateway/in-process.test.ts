import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, McpServer } from '@modelcontextprotocol/server';
import { createPolicyGatewayForServer } from '../../src/gateway/in-process.js';
import { PolicyHolder } from '../../src/policy/holder.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { SlidingWindowLimiter } from '../../src/policy/rate-limiter.js';
import { text, tmpDir, waitFor } from './helpers.js';

function makeServer(onSlow: { release?: () => void }) {
  const server = new McpServer({ name: 'inproc', version: '1' });
  server.registerTool('hello', { inputSchema: { name: z.string() } }, async ({ name }) => ({ content: [{ type: 'text', text: `hello ${name}` }] }));
  server.registerTool('drop_all', { annotations: { destructiveHint: true } }, async () => ({ content: [{ type: 'text', text: 'dropped' }] }));
  server.registerTool('tick', {}, async () => ({ content: [{ type: 'text', text: 'tock' }] }));
  server.registerTool('hang', {}, () => new Promise((resolve) => (onSlow.release = () => resolve({ content: [{ type: 'text', text: 'late' }] }))));
  return server;
}

test('in-process mode: policy between an McpServer and its client transport; a crash after the call was sent keeps its quota', async () => {
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
  const client = new Client({ name: 'c', version: '1' });
  await client.connect(clientSide);
  try {
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
