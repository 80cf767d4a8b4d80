import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import * as z from 'zod/v4';
import { StreamableHTTPClientTransport, type Client } from '@modelcontextprotocol/client';
import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import { McpServer, createMcpHandler, isInitializeRequest } from '@modelcontextprotocol/server';
import { CLI, kill, newClient, spawnUntil, text, tmpDir, waitFor, type Era } from './helpers.js';

const ONE_REVISION = fileURLToPath(new URL('./fixtures/one-revision-server.js', import.meta.url));
const ENVELOPE_KEY = 'io.modelcontextprotocol/protocolVersion';

/** Policy shared by every upstream here: one tool hidden, one denied, one limited to 2 calls. */
const POLICY = `version: 1
default: allow
hide: [write_thing]
tools:
  delete_thing: { action: deny, reason: no deleting }
  echo: { rate_limit: { max: 2, window: 600, scope: upstream } }
`;

async function client(era: Era, url: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const c = newClient(era, capabilities);
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
}

/** A gateway (the built CLI) in front of the given upstreams, each at /s/{name}/mcp with POLICY. */
async function gateway(t: ReturnType<typeof tmpDir>, upstreams: string) {
  t.file('p.yaml', POLICY);
  const config = t.file('gateway.yaml', `upstreams:\n${upstreams}`);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', t.db, '--listen', '127.0.0.1:0'], /listening on (http:\/\/[^/\s]+)\/s\/[a-z]+\/mcp/);
  return { ...gw, at: (name: string) => `${gw.match[1]}/s/${name}/mcp` };
}

const stdioUpstream = (name: string, revision: Era) =>
  `  - name: ${name}\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(ONE_REVISION)}, ${revision}]\n    policy: p.yaml\n`;
const urlUpstream = (name: string, url: string) => `  - name: ${name}\n    url: ${url}\n    policy: p.yaml\n`;

test('HTTP gateway: a 2026-07-28 client in front of 2025-11-25-only upstreams is translated over one shared session per upstream, under the policy', { timeout: 60_000 }, async () => {
  const t = tmpDir();
  const web = await legacyOnlyUpstream();
  const dead = await legacyOnlyUpstream({ refuseInitialize: true });
  const gw = await gateway(t, stdioUpstream('cmd', 'legacy') + urlUpstream('web', web.url) + urlUpstream('dead', dead.url));
  const clients: Client[] = [];
  try {
    // A URL upstream: the upstream gets initialize once and envelope-free calls; the policy still decides.
    const a = await client('modern', gw.at('web'));
    const b = await client('modern', gw.at('web'));
    clients.push(a, b);
    assert.deepEqual((await a.listTools()).tools.map((x) => x.name).sort(), ['delete_thing', 'echo']);
    assert.equal(text(await a.callTool({ name: 'echo', arguments: { text: 'one' } })), 'one');
    assert.equal(text(await b.callTool({ name: 'echo', arguments: { text: 'two' } })), 'two');
    assert.match(text(await a.callTool({ name: 'echo', arguments: { text: 'three' } })), /^\[POLICY DENIED\] rate limit/);
    assert.match(text(await b.callTool({ name: 'delete_thing', arguments: { id: 'x' } })), /^\[POLICY DENIED\] no deleting/);
    assert.deepEqual(web.calls, ['one', 'two'], 'the limited and the denied call never reached the upstream');
    const methods = web.bodies.map((m) => m.method);
    assert.equal(methods.filter((m) => m === 'initialize').length, 1, `one session for every POST: ${methods.join(', ')}`);
    assert.ok(!methods.includes('server/discover') || web.bodies.find((m) => m.method === 'server/discover')?.id === 'egress-triage-probe', 'discovery was answered by the gateway, not forwarded');
    const forwarded = web.bodies.filter((m) => m.method === 'tools/call' || m.method === 'tools/list');
    assert.ok(forwarded.length >= 3);
    for (const m of forwarded) assert.equal((m.params as { _meta?: Record<string, unknown> } | undefined)?._meta?.[ENVELOPE_KEY], undefined, JSON.stringify(m));

    // A stdio upstream: one translating child for every request; a pushed question is held across the POST and its retry.
    const c = await client('modern', gw.at('cmd'), { elicitation: { form: {} } });
    clients.push(c);
    c.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { colour: 'teal' } }));
    assert.deepEqual((await c.listTools()).tools.map((x) => x.name).sort(), ['ask', 'delete_thing', 'echo', 'grow', 'methods', 'stats', 'work']);
    assert.match(text(await c.callTool({ name: 'echo', arguments: { text: 'hi' } })), /legacy-only-upstream: hi/);
    assert.match(text(await c.callTool({ name: 'delete_thing', arguments: { id: 'x' } })), /^\[POLICY DENIED\] no deleting/);
    assert.equal(text(await c.callTool({ name: 'ask', arguments: {} })), 'accept: teal', 'the retry got the held call\'s final answer');
    assert.deepEqual(JSON.parse(text(await c.callTool({ name: 'stats', arguments: {} }))), { echo: 1, ask: 1 });
    const seen = JSON.parse(text(await c.callTool({ name: 'methods', arguments: {} }))) as string[];
    assert.deepEqual(seen.filter((m) => m === 'initialize'), ['initialize'], `one child, one handshake: ${seen.join(', ')}`);

    // Fail closed: an upstream whose session cannot be opened gets nothing, and the client a clear error.
    const meta = { [ENVELOPE_KEY]: '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    const r = await fetch(gw.at('dead'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'lost' }, _meta: meta } }),
    });
    const j = (await r.json()) as { id: number; error?: { message: string } };
    assert.equal(j.id, 3);
    assert.match(j.error?.message ?? JSON.stringify(j), /upstream "dead".*initialize/);
    assert.deepEqual(dead.calls, []);
    assert.ok(!dead.bodies.some((m) => m.method === 'tools/call'));
  } finally {
    await Promise.all(clients.map((x) => x.close().catch(() => undefined)));
    await kill(gw.child);
    await web.close();
    await dead.close();
  }
  t.cleanup();
});

test('HTTP gateway: a 2025-11-25 session in front of 2026-07-28-only upstreams (URL and stdio) is translated under the policy', { timeout: 60_000 }, async () => {
  const t = tmpDir();
  const web = await modernOnlyUpstream();
  const gw = await gateway(t, stdioUpstream('cmd', 'modern') + urlUpstream('web', web.url));
  const clients: Client[] = [];
  try {
    for (const name of ['web', 'cmd']) {
      const c = await client('legacy', gw.at(name));
      clients.push(c);
      const tools = (await c.listTools()).tools.map((x) => x.name);
      assert.ok(tools.includes('echo') && tools.includes('delete_thing') && !tools.includes('write_thing'), `${name}: ${tools.join(', ')}`);
      assert.match(text(await c.callTool({ name: 'echo', arguments: { text: 'old' } })), /: old$/, name);
      assert.match(text(await c.callTool({ name: 'delete_thing', arguments: { id: 'x' } })), /^\[POLICY DENIED\] no deleting/, name);
    }
    assert.deepEqual(web.calls, ['echo old'], 'the denied call never reached the upstream');
  } finally {
    await Promise.all(clients.map((x) => x.close().catch(() => undefined)));
    await kill(gw.child);
    await web.close();
  }
  t.cleanup();
});

/**
 * An SDK v2 server that speaks only 2025-11-25 (sessions; no stateless 2026-07-28 handler), in this
 * process, recording every JSON-RPC body it is sent. `refuseInitialize`: a server that opens no session.
 */
async function legacyOnlyUpstream(o: { refuseInitialize?: boolean } = {}) {
  const calls: string[] = [];
  const bodies: Array<Record<string, unknown>> = [];
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const ch of req) chunks.push(ch as Buffer);
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      if (body && typeof body === 'object') bodies.push(body as Record<string, unknown>);
      const sid = req.headers['mcp-session-id'];
      let tr = typeof sid === 'string' ? sessions.get(sid) : undefined;
      if (!tr) {
        if (!isInitializeRequest(body) || o.refuseInitialize) {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: Server not initialized' } }));
          return;
        }
        const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void sessions.set(id, transport) });
        const mcp = new McpServer({ name: 'legacy-only', version: '1' });
        for (const name of ['echo', 'delete_thing', 'write_thing']) {
          mcp.registerTool(name, { inputSchema: z.object({ text: z.string().optional(), id: z.string().optional() }) }, async ({ text: s, id }) => {
            calls.push(s ?? `${name} ${id}`);
            return { content: [{ type: 'text', text: s ?? name }] };
          });
        }
        await mcp.connect(transport);
        tr = transport;
      }
      await tr.handleRequest(req, res, body);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    bodies,
    close: async () => {
      await Promise.all([...sessions.values()].map((x) => x.close().catch(() => undefined)));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An SDK v2 server that speaks only 2026-07-28 (a stateless handler that refuses initialize), in this process. */
async function modernOnlyUpstream() {
  const calls: string[] = [];
  const handler = createMcpHandler(() => {
    const s = new McpServer({ name: 'modern-only', version: '1' });
    s.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, ({ text: v }) => (calls.push(`echo ${v}`), { content: [{ type: 'text', text: `modern-only: ${v}` }] }));
    s.registerTool('delete_thing', { inputSchema: z.object({ id: z.string() }) }, ({ id }) => (calls.push(`delete ${id}`), { content: [{ type: 'text', text: 'deleted' }] }));
    s.registerTool('write_thing', { inputSchema: z.object({}) }, () => (calls.push('write'), { content: [] }));
    return s;
  }, { legacy: 'reject' });
  const node = toNodeHandler(handler);
  const server = createServer((req, res) => void node(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    close: async () => {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One raw 2026-07-28 tools/call through the gateway; resolves to the JSON-RPC messages of its stream. */
async function rawModernCall(url: string, id: number, name: string, args: Record<string, unknown>, progressToken?: string, signal?: AbortSignal): Promise<Record<string, any>[]> {
  const meta: Record<string, unknown> = {
    [ENVELOPE_KEY]: '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
    ...(progressToken === undefined ? {} : { progressToken }),
  };
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: meta } }),
    ...(signal ? { signal } : {}),
  });
  const body = await r.text();
  if (body.trim().startsWith('{')) return [JSON.parse(body)];
  return body.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
}

test('HTTP gateway, 2026-07-28 in front of a 2025-11-25-only upstream: progress reaches the call it belongs to, a closed stream cancels the upstream call, list_changed reaches the listen stream', { timeout: 60_000 }, async () => {
  const t = tmpDir();
  const gw = await gateway(t, stdioUpstream('cmd', 'legacy'));
  try {
    const url = gw.at('cmd');
    // Two calls at once with the SAME progress token (each client picks its own): each stream gets its own progress only.
    const [a, b] = await Promise.all([
      rawModernCall(url, 1, 'work', { tag: 'a', steps: 2 }, 'tok'),
      rawModernCall(url, 1, 'work', { tag: 'b', steps: 3 }, 'tok'),
    ]);
    for (const [msgs, tag, steps] of [[a, 'a', 2], [b, 'b', 3]] as const) {
      const progress = msgs.filter((m) => m.method === 'notifications/progress');
      assert.deepEqual(progress.map((m) => [m.params.progressToken, m.params.message]), Array.from({ length: steps }, (_, i) => ['tok', `${tag} step ${i + 1}`]), JSON.stringify(msgs));
      assert.equal(msgs.at(-1)?.result?.content?.[0]?.text, `${tag} done`);
    }
    // No token asked: no progress.
    assert.deepEqual((await rawModernCall(url, 2, 'work', { tag: 'quiet' })).map((m) => m.result?.content?.[0]?.text), ['quiet done']);

    // The client closes its stream while the upstream works on the call: the upstream hears notifications/cancelled.
    const stats = async () => JSON.parse((await rawModernCall(url, 9, 'stats', {})).at(-1)!.result.content[0].text) as Record<string, number>;
    const ac = new AbortController();
    const held = rawModernCall(url, 3, 'work', { tag: 'held', steps: 0, hold: true }, undefined, ac.signal).catch((e: Error) => e);
    await waitFor(async () => ((await stats()).work === 4 ? true : undefined), 20_000, 50, 'the held call to reach the upstream');
    ac.abort();
    assert.ok((await held) instanceof Error, 'the client gave up on its stream');
    await waitFor(async () => ((await stats()).work_cancelled === 1 ? true : undefined), 20_000, 50, 'the upstream call to be cancelled');

    // A subscriptions/listen stream gets the upstream's list_changed, stamped with its own id.
    const listen = new AbortController();
    const res = await fetch(url, {
      method: 'POST',
      signal: listen.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
      body: JSON.stringify({
        jsonrpc: '2.0', id: 'listen-1', method: 'subscriptions/listen',
        params: { notifications: { toolsListChanged: true }, _meta: { [ENVELOPE_KEY]: '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} } },
      }),
    });
    const seen: Record<string, any>[] = [];
    const reader = res.body!.getReader();
    let buffered = '';
    const until = async (what: string, ok: () => boolean) => {
      while (!ok()) {
        const { value, done } = await reader.read();
        if (done) assert.fail(`the listen stream ended before ${what}: ${JSON.stringify(seen)}`);
        buffered += Buffer.from(value).toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const l of lines) if (l.startsWith('data:')) seen.push(JSON.parse(l.slice(5)));
      }
    };
    await until('the acknowledgement', () => seen.some((m) => m.method === 'notifications/subscriptions/acknowledged'));
    assert.equal((await rawModernCall(url, 4, 'grow', { name: 'grown_tool' })).at(-1)?.result?.content?.[0]?.text, 'grew grown_tool');
    await until('list_changed', () => seen.some((m) => m.method === 'notifications/tools/list_changed'));
    const changed = seen.find((m) => m.method === 'notifications/tools/list_changed')!;
    assert.equal(changed.params._meta['io.modelcontextprotocol/subscriptionId'], 'listen-1', JSON.stringify(changed));
    listen.abort();
  } finally {
    await kill(gw.child);
  }
  t.cleanup();
});
