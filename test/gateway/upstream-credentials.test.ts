import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CLI, ERAS, kill, newClient, spawnUntil, tmpDir } from './helpers.js';

/** A 2025-11-25 SDK client's error on connecting through the gateway. */
async function legacyFailure(url: string): Promise<string> {
  const c = newClient('legacy');
  try {
    await c.connect(new StreamableHTTPClientTransport(new URL(url)));
    await c.listTools();
  } catch (e) {
    return (e as Error).message;
  } finally {
    await c.close().catch(() => undefined);
  }
  return assert.fail('legacy: the call went through an upstream that answers 401');
}

/**
 * The gateway's answer to a 2026-07-28 request, read raw: the SDK client reports only the HTTP status of a
 * failed connect, and the gateway's message is in the JSON-RPC error.
 */
async function modernFailure(url: string): Promise<string> {
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } }),
  });
  const body = (await res.json()) as { error?: { message?: string } };
  assert.equal(res.status, 502, `modern: ${JSON.stringify(body)}`);
  return body.error?.message ?? assert.fail(`modern: no JSON-RPC error in ${JSON.stringify(body)}`);
}

/**
 * An HTTP upstream that wants credentials the gateway was not given answers 401. That is no statement about
 * the protocol revision it speaks: the gateway must neither take it for a refusal of 2025-11-25 (and translate,
 * sending server/discover after it) nor for a refusal of 2026-07-28 (and open a 2025-11-25 session instead).
 * The agent is told it is a matter of credentials and where the gateway's come from, for both revisions.
 * (The conformance auth/* client scenarios answer exactly this way; see docs/conformance.md.)
 */
test('an upstream that answers 401 is reported to the agent as wanting credentials, and gets no revision guessed at it', async () => {
  const methods: string[] = [];
  const upstream = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c));
    req.on('end', () => {
      try {
        methods.push(String((JSON.parse(text) as { method?: unknown }).method));
      } catch {
        methods.push(`${req.method} (no JSON)`);
      }
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"' });
      res.end(JSON.stringify({ error: 'invalid_token', error_description: 'Missing Authorization header' }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const t = tmpDir('gw-credentials-');
  const policy = t.file('policy.yaml', 'version: 1\ndefault: allow\n');
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', url, '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+)/);
  try {
    for (const era of ERAS) {
      methods.length = 0;
      const failure = era === 'legacy' ? await legacyFailure(gw.match[1]!) : await modernFailure(gw.match[1]!);
      assert.match(failure, /HTTP 401: it wants credentials/, `${era}: ${failure}`);
      assert.match(failure, /--upstream-token-env/, `${era}: ${failure}`);
      // The agent's own revision was asked for, and nothing else was tried after the 401.
      const asked = era === 'legacy' ? 'initialize' : 'server/discover';
      assert.deepEqual([...new Set(methods)], [asked], `${era}: the upstream saw ${methods.join(', ')}`);
    }
  } finally {
    await kill(gw.child);
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    t.cleanup();
  }
});
