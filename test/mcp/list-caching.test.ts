/**
 * tools/list caching and change notifications, against the built CLI with SDK v2 clients:
 * - 2026-07-28: tools/list carries `ttlMs`, and the v2 client answers repeats from its cache (counted in
 *   POSTs on the wire); 2025-11-25 results carry no hint and every list is a request.
 * - The server declares `tools.listChanged` only where its tool list can change: under a policy, whose
 *   hot reload may hide tools (the gateway then notifies); without one the list is fixed, and a client
 *   that asks for change notifications keeps no subscriptions/listen stream open for nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { Client, StreamableHTTPClientTransport, type Tool } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { LIST_TTL_MS } from '../../src/mcp/server.js';
import { CLI, tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { TENANT, buildDemoDb, cleanEnv, killChild, startServe } from './helpers.js';

type Revision = '2026-07-28' | '2025-11-25';

/** The JSON-RPC methods of every POST a client sent, in order. */
function countingFetch(methods: string[]): typeof fetch {
  return async (input, init) => {
    if (init?.method === 'POST' && typeof init.body === 'string') {
      const body = JSON.parse(init.body) as { method?: string } | { method?: string }[];
      for (const m of Array.isArray(body) ? body : [body]) if (m.method) methods.push(m.method);
    }
    return fetch(input, init);
  };
}

function clientAt(revision: Revision, onToolsChanged?: (tools: Tool[] | null) => void): Client {
  return new Client(
    { name: `egress-triage-caching-${revision}`, version: '1.0.0' },
    {
      ...(revision === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : { supportedProtocolVersions: ['2025-11-25'] }),
      ...(onToolsChanged ? { listChanged: { tools: { debounceMs: 0, onChanged: (_e: Error | null, tools: Tool[] | null) => onToolsChanged(tools) } } } : {}),
    },
  );
}

describe('tools/list caching (ttlMs) and list-change notifications', () => {
  const tmp = tempDir('egress-mcp-list-caching-');
  const servers: ChildProcessWithoutNullStreams[] = [];
  let template: string;
  let n = 0;
  const freshDb = () => {
    const db = join(tmp.dir, `copy-${++n}.db`);
    copyFileSync(template, db);
    return db;
  };
  const serve = async (extraArgs: string[] = []): Promise<URL> => {
    const s = await startServe(freshDb(), extraArgs);
    servers.push(s.child);
    return s.url;
  };

  before(async () => {
    template = await buildDemoDb(tmp.dir, { events: 3000, runs: 6 });
  });
  after(async () => {
    await Promise.all(servers.map(killChild));
    tmp.cleanup();
  });

  it('2026-07-28: tools/list carries ttlMs and the v2 client serves repeats from its cache', async () => {
    const url = await serve();
    const methods: string[] = [];
    const client = clientAt('2026-07-28');
    await client.connect(new StreamableHTTPClientTransport(url, { fetch: countingFetch(methods) }));
    try {
      const first = (await client.listTools()) as { ttlMs?: number; cacheScope?: string; tools: Tool[] };
      assert.equal(first.ttlMs, LIST_TTL_MS);
      assert.equal(first.cacheScope, 'private');
      await client.listTools();
      await client.listTools();
      assert.equal(methods.filter((m) => m === 'tools/list').length, 1, `three lists, one request: ${methods.join(', ')}`);
      // an explicit refresh still asks the server
      await client.listTools(undefined, { cacheMode: 'refresh' });
      assert.equal(methods.filter((m) => m === 'tools/list').length, 2);
    } finally {
      await client.close();
    }
  });

  it('2025-11-25: no cache hint, every tools/list is a request', async () => {
    const url = await serve();
    const methods: string[] = [];
    const client = clientAt('2025-11-25');
    await client.connect(new StreamableHTTPClientTransport(url, { fetch: countingFetch(methods) }));
    try {
      const first = (await client.listTools()) as { ttlMs?: number };
      assert.equal(first.ttlMs, undefined);
      await client.listTools();
      await client.listTools();
      assert.equal(methods.filter((m) => m === 'tools/list').length, 3);
    } finally {
      await client.close();
    }
  });

  it('without a policy the tool list is fixed: listChanged is not declared, and a client asking for changes opens no listen stream', async () => {
    const url = await serve();
    const methods: string[] = [];
    const client = clientAt('2026-07-28', () => undefined);
    await client.connect(new StreamableHTTPClientTransport(url, { fetch: countingFetch(methods) }));
    try {
      assert.equal(client.getServerCapabilities()?.tools?.listChanged, false);
      assert.equal(client.getServerCapabilities()?.prompts?.listChanged, false);
      await client.callTool({ name: 'ping', arguments: {} });
      assert.deepEqual(methods.filter((m) => m === 'subscriptions/listen'), []);
    } finally {
      await client.close();
    }
  });

  const transports: Record<string, (policy: string) => Promise<{ connect: (c: Client) => Promise<void> }>> = {
    'stdio (mcp --policy)': async (policy) => ({
      connect: (c) =>
        c.connect(
          new StdioClientTransport({
            command: process.execPath,
            args: [CLI, 'mcp', '--db', freshDb(), '--tenant', TENANT, '--policy', policy],
            env: cleanEnv(),
            stderr: 'pipe',
          }),
        ),
    }),
    'HTTP (serve --policy)': async (policy) => {
      const url = await serve(['--policy', policy]);
      return { connect: (c) => c.connect(new StreamableHTTPClientTransport(url)) };
    },
  };
  // 2025-11-25 gets the notification unsolicited; 2026-07-28 on the subscriptions/listen stream the client opens.
  for (const [name, open] of Object.entries(transports)) for (const revision of ['2025-11-25', '2026-07-28'] as const) {
    it(`${name}, ${revision}: listChanged is declared, and a hot reload that hides a tool reaches the client's onChanged`, async () => {
      const policy = join(tmp.dir, `policy-${++n}.yaml`);
      writeFileSync(policy, 'version: 1\ndefault: allow\n');
      const seen: (Tool[] | null)[] = [];
      const client = clientAt(revision, (tools) => seen.push(tools));
      await (await open(policy)).connect(client);
      try {
        assert.equal(client.getServerCapabilities()?.tools?.listChanged, true);
        assert.ok((await client.listTools()).tools.some((t) => t.name === 'ping'));
        writeFileSync(policy, 'version: 1\ndefault: allow\nhide: [ping]\n');
        const tools = await waitFor(() => seen.find((t) => t !== null && !t.some((x) => x.name === 'ping')), 15_000, 25, 'a refreshed tool list without ping');
        assert.ok(tools.some((t) => t.name === 'analyze_anomalous_calls_by_process'));
      } finally {
        await client.close();
      }
    });
  }
});
