import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpListener, type PostRefusal } from '../../src/http/mcp-listener.js';
import { onErrorAnswer } from '../../src/gateway/http-refusals.js';
import { FastServerTransport } from '../../src/gateway/fast-http.js';
import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { waitFor } from '../helpers/wait.js';

/**
 * A refused request is answered only once its audit record is written (docs/policy.md: the audit is
 * written before the answer): the refusal hook's promise, a networked store's write, holds the answer.
 * Checked on the server's own socket: nothing is written to it until the promise settles.
 */

/** Every turn of the event loop an early answer would need to reach the socket. */
async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

test('the MCP listener answers a POST it refuses only after the refusal hook has settled', async () => {
  const refusals: PostRefusal[] = [];
  let release: () => void = () => undefined;
  const listener = createMcpListener({
    host: '127.0.0.1', port: 0, grants: [], maxBodyBytes: 1 << 20, displayPath: '/mcp',
    mcpPath: (p) => (p === '/mcp' ? 'only' : undefined),
    onMcp: async ({ res }) => void res.end('{}'),
    onRefused: (r) => {
      refusals.push(r);
      return new Promise<void>((done) => (release = done));
    },
    log: () => undefined,
  });
  const url = await listener.listen();
  try {
    const answer = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":' });
    await waitFor(async () => refusals.length === 1 || undefined, 10_000, 5, 'the refusal hook');
    await turns();
    assert.equal(refusals[0]!.req.socket.bytesWritten, 0, 'nothing is answered while the record is being written');
    release();
    const res = await answer;
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Parse error/);
  } finally {
    await listener.close();
  }
});

test("an error the SDK's transport answers itself ends only after its audit hook has settled", async () => {
  let release: () => void = () => undefined;
  const heard: string[] = [];
  let request: IncomingMessage | undefined;
  const server = createServer((req, res) => {
    request = req;
    onErrorAnswer(res, (message) => {
      heard.push(message);
      return new Promise<void>((done) => (release = done));
    });
    // as the SDK's adapter (@hono/node-server) answers: the whole body with its length, then end()
    const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: unsupported protocol version' } });
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.write(body);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const answer = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { method: 'POST', body: '{}' });
    await waitFor(async () => heard.length === 1 || undefined, 10_000, 5, 'the audit hook');
    await turns();
    assert.equal(request!.socket.bytesWritten, 0, 'the answer waits for its record');
    assert.deepEqual(heard, ['Bad Request: unsupported protocol version']);
    release();
    const res = await answer;
    assert.equal(res.status, 400);
    assert.match(await res.text(), /unsupported protocol version/);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a request whose id is in flight on the session is refused on its own POST only after its record is written', async () => {
  const fast = new FastServerTransport({ sessionId: 'sid' } as unknown as NodeStreamableHTTPServerTransport);
  let release: () => void = () => undefined;
  const refused: string[] = [];
  let tracked = false;
  let second: IncomingMessage | undefined;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString())).on('end', () => {
      const body = JSON.parse(text) as unknown;
      if (req.headers['x-first']) {
        fast.track(res, body); // in flight: never answered here
        tracked = true;
        return;
      }
      second = req;
      fast.refuseDuplicate(res, body, (_m, message) => {
        refused.push(message);
        return new Promise<void>((done) => (release = done));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'x' } });
  const first = new AbortController();
  try {
    void fetch(url, { method: 'POST', headers: { 'x-first': '1' }, body: call, signal: first.signal }).catch(() => undefined);
    await waitFor(async () => tracked || undefined, 10_000, 5, 'the first request in flight');
    const answer = fetch(url, { method: 'POST', body: call });
    await waitFor(async () => refused.length === 1 || undefined, 10_000, 5, 'the refusal hook');
    await turns();
    assert.equal(second!.socket.bytesWritten, 0, 'the refusal waits for its record');
    release();
    const res = await answer;
    assert.equal(res.status, 200);
    assert.match(await res.text(), /id 7 is already in use by a request in flight/);
  } finally {
    first.abort();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a request past the 16 KiB header limit (a link on a very long stored name) gets 431, not a dropped connection', async () => {
  const listener = createMcpListener({
    host: '127.0.0.1', port: 0, grants: [], maxBodyBytes: 1 << 20, displayPath: '/mcp',
    mcpPath: (p) => (p === '/mcp' ? 'only' : undefined),
    onMcp: async ({ res }) => void res.end('{}'),
    log: () => undefined,
  });
  const url = await listener.listen();
  try {
    const res = await fetch(`${new URL(url).origin}/detections?process=${'x'.repeat(20_000)}`);
    assert.equal(res.status, 431);
    assert.equal(await res.text(), 'the request address and headers are longer than 16 KiB\n');
  } finally {
    await listener.close();
  }
});
