import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemoryTransport, McpServer, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod/v4';
import { EraSwitch, UNDECIDED_CODE } from '../../../src/gateway/era/index.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * EraSwitch on its own, between raw JSON-RPC messages (as the policy proxy sends them) and an upstream on the
 * other end of an in-memory wire: a scripted one where the test answers by hand, or a real one-revision server.
 */

type Msg = Record<string, unknown> & { id?: unknown; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { code: number; message: string } };

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'switch-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const modern = (id: number | string, method: string, params: Record<string, unknown> = {}): JSONRPCMessage =>
  ({ jsonrpc: '2.0', id, method, params: { ...params, _meta: ENVELOPE } }) as JSONRPCMessage;
const INITIALIZE = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'switch-test', version: '1' } } } as JSONRPCMessage;

/** An upstream the test answers by hand; `starts` counts how often the switch started it. */
async function scripted(o: { decideTimeoutMs?: number } = {}) {
  const [upSide, serverSide] = InMemoryTransport.createLinkedPair();
  let starts = 0;
  const start = upSide.start.bind(upSide);
  upSide.start = async () => {
    starts++;
    return start();
  };
  const seen: Msg[] = [];
  serverSide.onmessage = (m) => void seen.push(m as unknown as Msg);
  await serverSide.start();
  const sw = new EraSwitch(upSide, { decideTimeoutMs: o.decideTimeoutMs });
  const got: Msg[] = [];
  sw.onmessage = (m) => void got.push(m as unknown as Msg);
  let closed = false;
  sw.onclose = () => void (closed = true);
  await sw.start();
  return {
    sw,
    seen,
    got,
    starts: () => starts,
    closed: () => closed,
    answer: (m: Record<string, unknown>) => serverSide.send({ jsonrpc: '2.0', ...m } as JSONRPCMessage),
    closeUpstream: () => serverSide.close(),
    reply: (id: unknown) => waitFor(() => got.find((m) => m.id === id && ('result' in m || 'error' in m)), 10_000, 10, `the answer to ${String(id)}`),
  };
}

/** A real server of one revision behind serveStdio (the same code path as over a pipe), on an in-memory wire. */
function oneRevision(revision: 'modern' | 'legacy'): { transport: Transport; close: () => Promise<void> } {
  const [upSide, serverSide] = InMemoryTransport.createLinkedPair();
  const make = () => {
    const s = new McpServer({ name: `${revision}-only`, version: '1.0.0' }, revision === 'legacy' ? { supportedProtocolVersions: ['2025-11-25'] } : {});
    s.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, ({ text }) => ({ content: [{ type: 'text', text }] }));
    return s;
  };
  if (revision === 'modern') {
    const handle = serveStdio(make, { transport: serverSide, legacy: 'reject' });
    return { transport: upSide, close: () => handle.close() };
  }
  const s = make();
  void s.connect(serverSide);
  return { transport: upSide, close: () => s.close() };
}

test('a 2026 downstream in front of a 2026 upstream: the switch asks server/discover, buffers in order, then forwards as is', async () => {
  const u = await scripted();
  await u.sw.send(modern(1, 'tools/list'));
  await u.sw.send(modern(2, 'tools/call', { name: 'a', arguments: {} }));
  await u.sw.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } } as JSONRPCMessage);
  await u.sw.send(modern('x', 'tools/call', { name: 'b', arguments: {} }));
  await waitFor(() => u.seen.length > 0 || undefined, 10_000, 10, 'the question upstream');
  // Nothing but the question went up while deciding.
  assert.equal(u.seen.length, 1);
  const q = u.seen[0]!;
  assert.equal(q.method, 'server/discover');
  assert.equal((q.params?._meta as Record<string, unknown>)['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
  assert.deepEqual((q.params?._meta as Record<string, unknown>)['io.modelcontextprotocol/clientInfo'], ENVELOPE['io.modelcontextprotocol/clientInfo']);
  await u.answer({ id: q.id, result: { supportedVersions: ['2026-07-28'], capabilities: {} } });
  await waitFor(() => u.seen.length === 5 || undefined, 10_000, 10, 'the buffered messages upstream');
  // In order, unchanged (ids and envelopes included).
  assert.deepEqual(u.seen.slice(1).map((m) => [m.method, m.id]), [['tools/list', 1], ['tools/call', 2], ['notifications/cancelled', undefined], ['tools/call', 'x']]);
  assert.deepEqual(u.seen[1], modern(1, 'tools/list'));
  assert.equal(u.sw.upstreamEra, 'modern');
  // The switch's own question is not answered downstream; later traffic passes straight through both ways.
  assert.deepEqual(u.got, []);
  await u.answer({ id: 1, result: { tools: [] } });
  assert.deepEqual((await u.reply(1)).result, { tools: [] });
  assert.equal(u.starts(), 1);
  await u.sw.close();
});

test('a 2025 downstream whose initialize the upstream answers: passed as is, the answer goes down unchanged', async () => {
  const u = await scripted();
  await u.sw.send(INITIALIZE);
  await waitFor(() => u.seen.length > 0 || undefined, 10_000, 10, 'initialize upstream');
  assert.deepEqual(u.seen, [INITIALIZE]);
  const result = { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'x', version: '1' } };
  await u.answer({ id: 0, result });
  assert.deepEqual((await u.reply(0)).result, result);
  assert.equal(u.sw.upstreamEra, 'legacy');
  await u.sw.close();
});

test('fail closed: the upstream closes while deciding; every waiting request gets an error naming why, none is forwarded', async () => {
  const u = await scripted();
  await u.sw.send(modern(1, 'tools/call', { name: 'a', arguments: {} }));
  await u.sw.send(modern(2, 'tools/list'));
  await u.sw.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } } as JSONRPCMessage);
  await waitFor(() => u.seen.length > 0 || undefined, 10_000, 10, 'the question upstream');
  await u.closeUpstream();
  for (const id of [1, 2]) {
    const r = await u.reply(id);
    assert.equal(r.error?.code, UNDECIDED_CODE);
    assert.match(r.error!.message, /could not tell which protocol revision the upstream speaks \(the upstream closed the connection\); the request was not forwarded/);
  }
  assert.equal(u.got.length, 2, 'a notification gets no answer');
  assert.ok(u.closed(), 'the close is passed on after the waiting requests were failed');
  assert.deepEqual(u.seen.map((m) => m.method), ['server/discover']);
});

test('fail closed: no answer within the bound; the waiting and every later request fail, nothing is forwarded untranslated', async () => {
  const u = await scripted({ decideTimeoutMs: 50 });
  await u.sw.send(INITIALIZE);
  await u.sw.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' } as JSONRPCMessage);
  const r0 = await u.reply(0);
  assert.match(r0.error!.message, /the upstream did not answer initialize within 50 ms/);
  assert.match((await u.reply(1)).error!.message, /could not tell which protocol revision/);
  await u.sw.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'a', arguments: {} } } as JSONRPCMessage);
  assert.match((await u.reply(2)).error!.message, /could not tell which protocol revision/);
  // A late answer decides nothing any more.
  await u.answer({ id: 0, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'x', version: '1' } } });
  await u.sw.send({ jsonrpc: '2.0', id: 3, method: 'tools/list' } as JSONRPCMessage);
  assert.equal((await u.reply(3)).error?.code, UNDECIDED_CODE);
  assert.deepEqual(u.seen.map((m) => m.method), ['initialize']);
  await u.sw.close();
});

test('fail closed: an upstream that refuses server/discover and then initialize too', async () => {
  const u = await scripted();
  await u.sw.send(modern(1, 'tools/list'));
  await waitFor(() => u.seen.length > 0 || undefined, 10_000, 10, 'the question upstream');
  await u.answer({ id: u.seen[0]!.id, error: { code: -32601, message: 'Method not found' } });
  await waitFor(() => u.seen.find((m) => m.method === 'initialize'), 10_000, 10, 'the adapter handshake');
  await u.answer({ id: u.seen.find((m) => m.method === 'initialize')!.id, error: { code: -32600, message: 'go away' } });
  const r = await u.reply(1);
  assert.match(r.error!.message, /refused server\/discover \(Method not found\) and the 2025-11-25 upstream refused initialize.*go away/);
  assert.ok(!u.seen.some((m) => m.method === 'tools/list'), 'the request never went up');
  await u.sw.close();
});

test('a 2026 downstream in front of a real 2025-only server: translated on the same connection, started once', async () => {
  const up = oneRevision('legacy');
  let starts = 0;
  const start = up.transport.start.bind(up.transport);
  up.transport.start = async () => void (starts++, await start());
  const sw = new EraSwitch(up.transport);
  const got: Msg[] = [];
  sw.onmessage = (m) => void got.push(m as unknown as Msg);
  await sw.start();
  try {
    await sw.send(modern(1, 'tools/list'));
    await sw.send(modern(2, 'tools/call', { name: 'echo', arguments: { text: 'hi' } }));
    const list = await waitFor(() => got.find((m) => m.id === 1), 10_000, 10, 'tools/list');
    assert.equal(list.result?.resultType, 'complete', 'a 2026 result shape');
    assert.deepEqual((list.result?.tools as { name: string }[]).map((x) => x.name), ['echo']);
    const call = await waitFor(() => got.find((m) => m.id === 2), 10_000, 10, 'tools/call');
    assert.deepEqual(call.result?.content, [{ type: 'text', text: 'hi' }]);
    assert.equal(sw.upstreamEra, 'legacy');
    assert.equal(starts, 1, 'the adapter did not start the upstream again');
  } finally {
    await sw.close();
    await up.close();
  }
});

test('a 2025 downstream in front of a real 2026-only server: the refused initialize is replayed through the translation', async () => {
  const up = oneRevision('modern');
  const sw = new EraSwitch(up.transport);
  const got: Msg[] = [];
  sw.onmessage = (m) => void got.push(m as unknown as Msg);
  await sw.start();
  try {
    await sw.send(INITIALIZE);
    const init = await waitFor(() => got.find((m) => m.id === 0), 10_000, 10, 'initialize');
    assert.equal(init.error, undefined, JSON.stringify(init));
    assert.equal(init.result?.protocolVersion, '2025-11-25');
    assert.deepEqual(init.result?.serverInfo, { name: 'modern-only', version: '1.0.0' });
    assert.equal(got.length, 1, 'the refusal itself never reached the downstream');
    await sw.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
    await sw.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } } as JSONRPCMessage);
    const call = await waitFor(() => got.find((m) => m.id === 1), 10_000, 10, 'tools/call');
    assert.deepEqual(call.result?.content, [{ type: 'text', text: 'hi' }]);
    assert.equal(call.result?.resultType, undefined, 'a 2025 result shape');
    assert.equal(sw.upstreamEra, 'modern');
  } finally {
    await sw.close();
    await up.close();
  }
});
