import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import { upstreamHttp } from '../../src/gateway/fast-http.js';
import { probeStdioEra, probeUpstreamEra, SharedStdioChild } from '../../src/gateway/modern-http.js';
import { probeUpstreamEra as probeEra } from '../../src/gateway/era/index.js';

/**
 * SEP-2575 version negotiation on the gateway's upstream side: an upstream that refuses the gateway's first
 * `server/discover` with UnsupportedProtocolVersion (-32022) while listing 2026-07-28 as supported is asked
 * again (the conformance client scenario `request-metadata` does exactly this), and found to speak 2026-07-28
 * rather than being mistaken for a 2025-11-25 server and translated. A refusal that does not list 2026-07-28
 * stays a 2025-11-25 verdict, asked once. An answer streamed as SSE counts as much as a JSON one.
 */

const DISCOVER_RESULT = { resultType: 'complete', supportedVersions: ['2026-07-28'], capabilities: {}, serverInfo: { name: 'picky', version: '1' } };
const refusal = (id: unknown, supported: string[]) => ({ jsonrpc: '2.0', id, error: { code: -32022, message: 'Unsupported protocol version', data: { supported, requested: '2026-07-28' } } });

/** An HTTP upstream that refuses its first request with -32022 (listing `supported`) and answers the rest. */
async function pickyHttpUpstream(supported: string[]) {
  const seen: { headers: IncomingHttpHeaders; body: { id?: unknown; method?: string } }[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c));
    req.on('end', () => {
      const body = JSON.parse(text) as { id?: unknown; method?: string };
      seen.push({ headers: req.headers, body });
      const answer = seen.length === 1 ? refusal(body.id, supported) : { jsonrpc: '2.0', id: body.id, result: DISCOVER_RESULT };
      res.writeHead(seen.length === 1 ? 400 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The same upstream as a message transport (a stdio child, or the era adapter's throwaway connection). */
function pickyTransport(supported: string[], seen: string[]): Transport {
  const t: Transport = {
    async start() {},
    async send(m: JSONRPCMessage) {
      const msg = m as { id?: string | number; method?: string };
      if (msg.id === undefined) return;
      seen.push(msg.method ?? '');
      const answer = seen.length === 1 ? refusal(msg.id, supported) : { jsonrpc: '2.0', id: msg.id, result: msg.method === 'initialize' ? { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'legacy', version: '1' } } : DISCOVER_RESULT };
      queueMicrotask(() => t.onmessage?.(answer as unknown as JSONRPCMessage));
    },
    async close() {
      t.onclose?.();
    },
  };
  return t;
}

test('an HTTP upstream refusing the first server/discover with -32022 that lists 2026-07-28 is asked again and speaks 2026-07-28', async () => {
  const up = await pickyHttpUpstream(['2026-07-28']);
  const http = upstreamHttp(up.url, {});
  try {
    assert.equal(await probeUpstreamEra(http), 'modern');
    assert.deepEqual(up.seen.map((s) => s.body.method), ['server/discover', 'server/discover']);
    // The retry carries the version the upstream listed, in the header as in the envelope.
    assert.equal(up.seen[1]!.headers['mcp-protocol-version'], '2026-07-28');
  } finally {
    http.agent.destroy();
    await up.close();
  }
});

test('an HTTP upstream refusing with -32022 that does not list 2026-07-28 is a 2025-11-25 server, asked once', async () => {
  const up = await pickyHttpUpstream(['2025-11-25']);
  const http = upstreamHttp(up.url, {});
  try {
    assert.equal(await probeUpstreamEra(http), 'legacy');
    assert.equal(up.seen.length, 1);
  } finally {
    http.agent.destroy();
    await up.close();
  }
});

test('an HTTP upstream answering server/discover on an SSE stream is found to speak 2026-07-28', async () => {
  // The answer comes as an event after the response headers, as a server that streams its answers sends it.
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c));
    req.on('end', () => {
      const body = JSON.parse(text) as { id?: unknown };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': the answer follows\n\n');
      // Later than the loop turn that reads the headers (this server shares the test's event loop).
      setTimeout(() => res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, result: DISCOVER_RESULT })}\n\n`), 100);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const http = upstreamHttp(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, {});
  try {
    assert.equal(await probeUpstreamEra(http), 'modern');
  } finally {
    http.agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('an HTTP upstream whose SSE stream never answers server/discover fails the probe instead of being guessed at', async () => {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': nothing follows\n\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const http = upstreamHttp(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, {});
  try {
    await assert.rejects(probeUpstreamEra(http, 200), /did not answer server\/discover within 200 ms/);
  } finally {
    http.agent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a stdio upstream and the era adapter probe renegotiate the same way', async () => {
  for (const [supported, era, asked] of [[['2026-07-28'], 'modern', 2], [['2025-11-25'], 'legacy', 1]] as const) {
    const seen: string[] = [];
    const shared = new SharedStdioChild(() => pickyTransport([...supported], seen));
    try {
      assert.equal(await probeStdioEra(shared), era);
      assert.equal(seen.length, asked, `stdio probe, supported ${supported}`);
    } finally {
      await shared.close();
    }
  }
  const seen: string[] = [];
  const probe = await probeEra(() => pickyTransport(['2026-07-28'], seen), { clientInfo: { name: 't', version: '1' } });
  assert.equal(probe.era, 'modern');
  assert.deepEqual(seen, ['server/discover', 'server/discover']);
});
