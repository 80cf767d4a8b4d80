import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, InMemoryTransport as ClientPair, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createServer } from 'node:http';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { InMemoryTransport as ServerPair, McpServer, createMcpHandler, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod/v4';
import { adaptUpstream, probeUpstreamEra, type Era } from '../../../src/gateway/era/index.js';
import { startFixture, type Fixture } from '../../conformance/runner.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * The era adapters between real SDK v2 clients pinned to one revision and real upstreams: the conformance fixture
 * over HTTP (it serves both revisions on one /mcp) and small servers of our own behind serveStdio (both eras, the
 * opening message picks one) over an in-memory wire.
 */

const AGENT = { name: 'era-test-agent', version: '1.0.0' };
const text = (r: unknown) => ((r as { content: Array<{ text?: string }> }).content[0]?.text ?? '');

function client(era: Era, onElicit?: (message: string) => Record<string, unknown>): Client {
  const c =
    era === 'modern'
      ? new Client(AGENT, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: { form: {} } } })
      : new Client(AGENT, { supportedProtocolVersions: ['2025-11-25'], capabilities: { elicitation: { form: {} } } });
  c.setRequestHandler('elicitation/create', async (req) => {
    const message = (req.params as { message: string }).message;
    return { action: 'accept', content: onElicit?.(message) ?? {} } as never;
  });
  return c;
}

/** What the gateway does with the adapted upstream, minus the policy: pump every message both ways. */
async function through(upstream: Transport, c: Client): Promise<void> {
  const [agentSide, gatewaySide] = ClientPair.createLinkedPair();
  gatewaySide.onmessage = (m) => void upstream.send(m).catch((e: Error) => gatewaySide.onerror?.(e));
  upstream.onmessage = (m) => void gatewaySide.send(m as JSONRPCMessage);
  upstream.onclose = () => void gatewaySide.close();
  await upstream.start();
  await gatewaySide.start();
  await c.connect(agentSide);
}

const http = (f: Fixture) => new StreamableHTTPClientTransport(new URL(f.url));

interface Sent {
  method?: string;
  id?: unknown;
  enveloped: boolean;
  params?: Record<string, unknown>;
}

/** The upstream transport, recording what the upstream was actually sent (the proof of which era it spoke). */
function recorded(upstream: Transport): { transport: Transport; sent: Sent[] } {
  const sent: Sent[] = [];
  const send = upstream.send.bind(upstream);
  upstream.send = (m, options) => {
    const msg = m as { method?: string; id?: unknown; params?: Record<string, unknown> };
    const meta = msg.params?._meta as Record<string, unknown> | undefined;
    sent.push({ method: msg.method, id: msg.id, params: msg.params, enveloped: meta?.['io.modelcontextprotocol/protocolVersion'] === '2026-07-28' });
    return send(m, options);
  };
  return { transport: upstream, sent };
}

/** Asserts the upstream was spoken to in `era` only: a session for 2025-11-25, envelopes for 2026-07-28. */
function assertSpoke(sent: Sent[], era: Era): void {
  const requests = sent.filter((s) => s.method !== undefined && s.id !== undefined);
  assert.ok(requests.length > 0, 'the upstream was sent requests');
  if (era === 'legacy') {
    assert.equal(requests[0]!.method, 'initialize', 'a 2025-11-25 upstream is opened with initialize');
    assert.deepEqual(sent.filter((s) => s.enveloped).map((s) => s.method), [], 'no 2026 envelope reaches a 2025 upstream');
  } else {
    assert.deepEqual(requests.filter((s) => !s.enveloped).map((s) => s.method), [], 'every request to a 2026 upstream carries the envelope');
    assert.ok(!requests.some((s) => s.method === 'initialize'), 'no initialize reaches a 2026 upstream');
  }
}

/** A small upstream of our own, served for both eras by serveStdio on one end of an in-memory wire. */
function ownUpstream(): { transport: Transport; seen: string[]; close: () => Promise<void> } {
  const seen: string[] = [];
  const [upSide, serverSide] = ServerPair.createLinkedPair();
  const handle = serveStdio(() => ownServer(seen), { transport: serverSide });
  return { transport: upSide, seen, close: () => handle.close() };
}

/** The same server over HTTP, 2026-07-28 only (a stateless handler): a per-request-stream upstream. */
async function ownHttpUpstream(): Promise<{ url: URL; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const handler = createMcpHandler(() => ownServer(seen), { legacy: 'reject' });
  const node = toNodeHandler(handler);
  const server = createServer((req, res) => void node(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    seen,
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function ownServer(seen: string[]): McpServer {
  const s = new McpServer({ name: 'own-upstream', version: '1.0.0' }, { capabilities: { tools: { listChanged: true }, logging: {} } });
  s.registerTool('echo', { inputSchema: z.object({ say: z.string() }) }, ({ say }) => ({ content: [{ type: 'text', text: `echo ${say}` }] }));
  s.registerTool('ask', { inputSchema: z.object({}) }, async (_a, ctx) => {
    try {
      const r = (await ctx.mcpReq.send({ method: 'elicitation/create', params: { message: 'Go on?', requestedSchema: { type: 'object', properties: { go: { type: 'boolean' } } } } })) as { content?: { go?: boolean } };
      return { content: [{ type: 'text', text: `go=${r.content?.go}` }] };
    } catch (e) {
      seen.push(`ask failed: ${(e as Error).message}`);
      return { content: [{ type: 'text', text: `ask failed: ${(e as Error).message}` }], isError: true };
    }
  });
  s.registerTool('wait', { inputSchema: z.object({}) }, (_a, ctx) => {
    seen.push('wait started');
    return new Promise((resolve) => {
      ctx.mcpReq.signal.addEventListener('abort', () => {
        seen.push('wait cancelled');
        resolve({ content: [{ type: 'text', text: 'cancelled' }] });
      });
    });
  });
  s.registerTool('log', { inputSchema: z.object({}) }, async (_a, ctx) => {
    await ctx.mcpReq.log('info', 'logged by the upstream');
    return { content: [{ type: 'text', text: 'logged' }] };
  });
  s.registerTool('add_tool', { inputSchema: z.object({}) }, () => {
    // On a 2025 session the SDK announces this with notifications/tools/list_changed.
    s.registerTool(`added_${seen.length}`, { inputSchema: z.object({}) }, () => ({ content: [] }));
    seen.push('added');
    return { content: [{ type: 'text', text: 'added' }] };
  });
  return s;
}

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': AGENT,
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
};

/** Drives a modern-over-legacy adapter with raw 2026-07-28 messages, as the gateway's proxy would. */
async function rawModern(upstream: Transport, holdMs?: number) {
  const adapter = adaptUpstream(upstream, { upstreamEra: 'legacy', downstreamEra: 'modern', holdMs });
  const got: Array<Record<string, unknown>> = [];
  adapter.onmessage = (m) => void got.push(m as unknown as Record<string, unknown>);
  await adapter.start();
  return {
    adapter,
    got,
    call: (id: number, name: string, args: Record<string, unknown>, extra: Record<string, unknown> = {}, envelope: Record<string, unknown> = ENVELOPE) =>
      adapter.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: envelope, ...extra } } as JSONRPCMessage),
    answer: (id: number) => waitFor(() => got.find((m) => m.id === id && ('result' in m || 'error' in m)), 10_000, 25, `the answer to ${id}`),
  };
}

type InputRequired = { resultType: string; inputRequests: Record<string, { method: string }>; requestState: string };

test('era adapters against real SDK clients and upstreams', { timeout: 120_000 }, async (t) => {
  const fixture = await startFixture();
  try {
    await t.test('eras that match are not adapted: the upstream itself comes back', () => {
      const up = http(fixture);
      assert.equal(adaptUpstream(up, { upstreamEra: 'modern', downstreamEra: 'modern' }), up);
      assert.equal(adaptUpstream(up, { upstreamEra: 'legacy', downstreamEra: 'legacy' }), up);
      assert.notEqual(adaptUpstream(up, { upstreamEra: 'legacy', downstreamEra: 'modern' }), up);
      assert.notEqual(adaptUpstream(up, { upstreamEra: 'modern', downstreamEra: 'legacy' }), up);
    });

    for (const down of ['modern', 'legacy'] as const) {
      for (const upEra of ['modern', 'legacy'] as const) {
        await t.test(`a ${down} client lists and calls tools through a ${upEra} upstream`, async () => {
          const c = client(down);
          const up = recorded(http(fixture));
          await through(adaptUpstream(up.transport, { upstreamEra: upEra, downstreamEra: down }), c);
          try {
            assert.equal(c.getNegotiatedProtocolVersion(), down === 'modern' ? '2026-07-28' : '2025-11-25');
            // What the client learnt at connect (initialize or server/discover) is the upstream's, whichever era asked.
            assert.equal(c.getServerVersion()?.name, 'egress-triage-conformance-fixture');
            assert.ok(c.getServerCapabilities()?.tools, 'the upstream tools capability is advertised');
            const tools = await c.listTools();
            assert.ok(tools.tools.some((tool) => tool.name === 'test_simple_text'), 'the fixture tools are listed');
            const r = await c.callTool({ name: 'test_simple_text', arguments: {} });
            assert.equal(text(r), 'This is a simple text response for testing.');
            const failed = await c.callTool({ name: 'test_error_handling', arguments: {} });
            assert.equal(failed.isError, true);
            assertSpoke(up.sent, upEra);
          } finally {
            await c.close();
          }
        });
      }
    }

    await t.test('a 2025 upstream that pushes elicitation mid-call: the 2026 client answers it over input_required', async () => {
      const asked: string[] = [];
      const c = client('modern', (message) => (asked.push(message), { response: 'blue' }));
      const up = recorded(http(fixture));
      await through(adaptUpstream(up.transport, { upstreamEra: 'legacy', downstreamEra: 'modern' }), c);
      try {
        const r = await c.callTool({ name: 'test_elicitation', arguments: { message: 'Favourite colour?' } });
        assert.deepEqual(asked, ['Favourite colour?']);
        assert.equal(text(r), 'User response: action=accept, content={"response":"blue"}');
        assertSpoke(up.sent, 'legacy');
        // The answer went up as the response to the upstream's own elicitation/create, once.
        assert.equal(up.sent.filter((s) => s.method === undefined).length, 1);
      } finally {
        await c.close();
      }
    });

    await t.test('a 2026 upstream that answers input_required: the 2025 client gets a real elicitation/create', async () => {
      const asked: string[] = [];
      const c = client('legacy', (message) => (asked.push(message), { name: 'Ada' }));
      const up = recorded(http(fixture));
      await through(adaptUpstream(up.transport, { upstreamEra: 'modern', downstreamEra: 'legacy' }), c);
      try {
        const r = await c.callTool({ name: 'test_input_required_result_elicitation', arguments: {} });
        assert.deepEqual(asked, ['What is your name?']);
        assert.equal(text(r), 'Hello, Ada!');
        // Two rounds with sealed state that evolves: the adapter passes requestState back each time.
        const multi = await c.callTool({ name: 'test_input_required_result_multi_round', arguments: {} });
        assert.match(text(multi), /^Multi-round complete: /);
        assert.equal(asked.length, 3);
        assertSpoke(up.sent, 'modern');
        const retries = up.sent.filter((s) => s.params?.inputResponses !== undefined);
        assert.equal(retries.length, 3, 'one retry per round, carrying the answers');
        assert.ok(retries.slice(1).every((s) => typeof s.params?.requestState === 'string'), 'the sealed state goes back on each retry');
      } finally {
        await c.close();
      }
    });

    await t.test('probeUpstreamEra: server/discover finds a 2026 upstream, initialize a 2025-only one', async () => {
      const modern = await probeUpstreamEra(() => http(fixture), { clientInfo: AGENT });
      assert.equal(modern.era, 'modern');
      assert.ok(modern.era === 'modern' && (modern.discover.supportedVersions as string[]).includes('2026-07-28'));

      const legacyOnly = () => {
        const [upSide, serverSide] = ServerPair.createLinkedPair();
        const s = new McpServer({ name: 'legacy-only', version: '1.0.0' }, { supportedProtocolVersions: ['2025-11-25'] });
        s.registerTool('echo', { inputSchema: z.object({}) }, () => ({ content: [] }));
        void s.connect(serverSide);
        return upSide;
      };
      const legacy = await probeUpstreamEra(legacyOnly, { clientInfo: AGENT });
      assert.equal(legacy.era, 'legacy');
      assert.ok(legacy.era === 'legacy' && (legacy.initialize.serverInfo as { name: string }).name === 'legacy-only');
    });
  } finally {
    await fixture.stop();
  }

  await t.test('subscriptions/listen of a 2026 client is fed by the 2025 session list_changed', async () => {
    const own = ownUpstream();
    const c = client('modern');
    const changed: string[] = [];
    c.setNotificationHandler('notifications/tools/list_changed', (n) => void changed.push(JSON.stringify(n.params ?? {})));
    const up = recorded(own.transport);
    await through(adaptUpstream(up.transport, { upstreamEra: 'legacy', downstreamEra: 'modern' }), c);
    try {
      await c.listen({ toolsListChanged: true });
      await c.callTool({ name: 'add_tool', arguments: {} });
      await waitFor(() => changed.length > 0, 10_000, 25, 'a tools list_changed on the listen stream');
      assert.match(changed[0]!, /io\.modelcontextprotocol\/subscriptionId/);
      assertSpoke(up.sent, 'legacy');
    } finally {
      await c.close();
      await own.close();
    }
  });

  for (const [down, upEra] of [['modern', 'legacy'], ['legacy', 'modern']] as const) {
    await t.test(`a cancelled call from a ${down} client reaches the ${upEra} upstream under the upstream's id`, async () => {
      const own = ownUpstream();
      const c = client(down);
      const up = recorded(own.transport);
      await through(adaptUpstream(up.transport, { upstreamEra: upEra, downstreamEra: down }), c);
      try {
        const abort = new AbortController();
        const call = c.callTool({ name: 'wait', arguments: {} }, { signal: abort.signal });
        await waitFor(() => own.seen.includes('wait started'), 10_000, 25, 'the upstream tool to start');
        abort.abort('changed my mind');
        await assert.rejects(call);
        await waitFor(() => own.seen.includes('wait cancelled'), 10_000, 25, 'the upstream to see the cancellation');
        assertSpoke(up.sent, upEra);
        // The adapter still serves calls after a cancellation.
        assert.equal(text(await c.callTool({ name: 'echo', arguments: { say: 'hi' } })), 'echo hi');
      } finally {
        await c.close();
        await own.close();
      }
    });
  }

  await t.test('ids: a 2026 request reusing the id of a held call gets its own answer, and the held call still resumes', async () => {
    const own = ownUpstream();
    const { adapter, got, call, answer } = await rawModern(own.transport);
    try {
      // The adapter's own initialize took upstream id 1; the client uses 1 as well.
      await call(1, 'ask', {});
      const held = (await answer(1)).result as InputRequired;
      assert.equal(held.resultType, 'input_required');
      const [key] = Object.keys(held.inputRequests);
      assert.equal(held.inputRequests[key!]!.method, 'elicitation/create');
      got.length = 0;
      // Same id again while the upstream call behind it is still open.
      await call(1, 'echo', { say: 'again' });
      assert.equal(text((await answer(1)).result), 'echo again');
      got.length = 0;
      // The state is bound to the call it was issued for: another tool cannot use it.
      await call(4, 'echo', { say: 'x' }, { inputResponses: {}, requestState: held.requestState });
      assert.match(JSON.stringify((await answer(4)).error), /different request/);
      await call(2, 'ask', {}, { inputResponses: { [key!]: { action: 'accept', content: { go: true } } }, requestState: held.requestState });
      assert.equal(text((await answer(2)).result), 'go=true');
      got.length = 0;
      // A forged or replayed state is refused, never resumed.
      await call(3, 'ask', {}, { inputResponses: {}, requestState: held.requestState });
      assert.match(JSON.stringify((await answer(3)).error), /requestState/);
    } finally {
      await adapter.close();
      await own.close();
    }
  });

  await t.test('a held call the client never retries expires: the question gets an error, the call ends, the state is dead', async () => {
    const own = ownUpstream();
    const { adapter, got, call, answer } = await rawModern(own.transport, 50);
    try {
      await call(1, 'ask', {});
      const held = (await answer(1)).result as InputRequired;
      assert.equal(held.resultType, 'input_required');
      await waitFor(() => own.seen.find((l) => l.startsWith('ask failed')), 10_000, 25, 'the upstream question to be answered with an error');
      assert.match(own.seen.find((l) => l.startsWith('ask failed'))!, /did not answer in time/);
      got.length = 0;
      await call(2, 'ask', {}, { inputResponses: {}, requestState: held.requestState });
      assert.match(JSON.stringify((await answer(2)).error), /requestState/);
    } finally {
      await adapter.close();
      await own.close();
    }
  });

  await t.test('a push is refused, never guessed: a client without the capability, or two calls open', async () => {
    const own = ownUpstream();
    const { adapter, call, answer } = await rawModern(own.transport);
    try {
      await call(1, 'ask', {}, {}, { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': {} });
      const refused = (await answer(1)).result as { isError?: boolean; resultType: string };
      assert.equal(refused.resultType, 'complete');
      assert.equal(refused.isError, true);
      assert.match(text(refused), /did not declare the elicitation capability/);

      await call(2, 'wait', {});
      await waitFor(() => own.seen.includes('wait started'), 10_000, 25, 'the first call to be open');
      await call(3, 'ask', {});
      assert.match(text((await answer(3)).result), /cannot tell which of 2 open calls/);
      await adapter.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } } as JSONRPCMessage);
    } finally {
      await adapter.close();
      await own.close();
    }
  });

  await t.test('a 2025 client hears the list changes of a 2026 upstream: the adapter listens for it', async () => {
    const own = ownUpstream();
    const c = client('legacy');
    let changed = 0;
    c.setNotificationHandler('notifications/tools/list_changed', () => void changed++);
    const up = recorded(own.transport);
    await through(adaptUpstream(up.transport, { upstreamEra: 'modern', downstreamEra: 'legacy' }), c);
    try {
      await waitFor(() => up.sent.some((s) => s.method === 'subscriptions/listen'), 10_000, 25, 'the adapter to open subscriptions/listen');
      await c.callTool({ name: 'add_tool', arguments: {} });
      await waitFor(() => changed > 0, 10_000, 25, 'notifications/tools/list_changed at the 2025 client');
      assertSpoke(up.sent, 'modern');
    } finally {
      await c.close();
      await own.close();
    }
  });

  await t.test('a 2026 request whose stream the gateway aborts (HTTP cancellation) is cancelled at the 2025 upstream', async () => {
    const own = ownUpstream();
    const { adapter, got } = await rawModern(own.transport);
    try {
      const stream = new AbortController();
      await adapter.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'wait', arguments: {}, _meta: ENVELOPE } } as JSONRPCMessage, { requestSignal: stream.signal });
      await waitFor(() => own.seen.includes('wait started'), 10_000, 25, 'the upstream tool to start');
      stream.abort();
      await waitFor(() => own.seen.includes('wait cancelled'), 10_000, 25, 'the upstream to see the cancellation');
      assert.deepEqual(got.filter((m) => m.id === 7), [], 'a cancelled call is not answered');
    } finally {
      await adapter.close();
      await own.close();
    }
  });

  await t.test("a 2025 client's logging/setLevel reaches a 2026 upstream as the envelope's logLevel", async () => {
    const own = ownUpstream();
    const c = client('legacy');
    const logged: string[] = [];
    c.setNotificationHandler('notifications/message', (n) => void logged.push(String(n.params.data)));
    const up = recorded(own.transport);
    await through(adaptUpstream(up.transport, { upstreamEra: 'modern', downstreamEra: 'legacy' }), c);
    try {
      await c.setLoggingLevel('info');
      await c.callTool({ name: 'log', arguments: {} });
      await waitFor(() => logged.length > 0, 10_000, 25, 'the upstream log line at the 2025 client');
      assert.deepEqual(logged, ['logged by the upstream']);
      assert.ok(!up.sent.some((s) => s.method === 'logging/setLevel'), 'a 2026 upstream has no logging/setLevel');
    } finally {
      await c.close();
      await own.close();
    }
  });

  await t.test('a 2025 upstream that refuses initialize fails start() with the reason', async () => {
    const [upSide, serverSide] = ServerPair.createLinkedPair();
    const handle = serveStdio(() => new McpServer({ name: 'modern-only', version: '1.0.0' }), { transport: serverSide, legacy: 'reject' });
    const adapter = adaptUpstream(upSide, { upstreamEra: 'legacy', downstreamEra: 'modern' });
    try {
      await assert.rejects(adapter.start(), /refused initialize/);
    } finally {
      await adapter.close();
      await handle.close();
    }
  });

  await t.test('probeUpstreamEra fails with both reasons when nothing answers', async () => {
    const dead = () => {
      const [upSide, serverSide] = ServerPair.createLinkedPair();
      serverSide.onmessage = () => void serverSide.close();
      return upSide;
    };
    await assert.rejects(probeUpstreamEra(dead, { clientInfo: AGENT, timeoutMs: 2_000 }), /answered neither server\/discover \(.+\) nor initialize \(.+\)/);
  });

  await t.test('a cancelled call from a 2025 client closes its request stream to a 2026 HTTP upstream', async () => {
    const own = await ownHttpUpstream();
    const c = client('legacy');
    const up = recorded(new StreamableHTTPClientTransport(own.url));
    await through(adaptUpstream(up.transport, { upstreamEra: 'modern', downstreamEra: 'legacy' }), c);
    try {
      const abort = new AbortController();
      const call = c.callTool({ name: 'wait', arguments: {} }, { signal: abort.signal });
      await waitFor(() => own.seen.includes('wait started'), 10_000, 25, 'the upstream tool to start');
      abort.abort('changed my mind');
      await assert.rejects(call);
      await waitFor(() => own.seen.includes('wait cancelled'), 10_000, 25, 'the upstream to see its request stream closed');
      assert.ok(!up.sent.some((s) => s.method === 'notifications/cancelled'), 'over HTTP the stream close is the cancellation');
      assert.equal(text(await c.callTool({ name: 'echo', arguments: { say: 'hi' } })), 'echo hi');
    } finally {
      await c.close();
      await own.close();
    }
  });
});
