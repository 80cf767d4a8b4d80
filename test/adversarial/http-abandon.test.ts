/**
 * A call the gateway gives up on frees its upstream connection (found by review). Every session
 * shares one pool of 256 connections to an upstream; an SDK server does not answer a cancelled
 * request, so each cancelled call's POST stayed open, and one client's 260 cancels left no connection
 * for any other session: their calls timed out, for good.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { answer, call, eventually, open, send, startGateway, startScriptedUpstream, startUpstream, stop, toolCall, upstreamCounts, type Proc } from './http-helpers.js';
import { MAX_INFLIGHT_CALLS_PER_IDENTITY } from '../../src/gateway/proxy.js';
import { waitFor } from '../helpers/wait.js';

const tmp = tempDir('egress-adv-abandon-');
after(() => tmp.cleanup());

test('HTTP gateway (2025-11-25): 300 calls cancelled by one session, whose upstream never answers them, leave the other sessions served', async () => {
  const policy = join(tmp.dir, 'gw.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\ncall_timeout: 20\n');
  const db = join(tmp.dir, 'gw.db');
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, upstream.port);
    const a = (await open('legacy', gw.port)).conn!;
    const b = (await open('legacy', gw.port)).conn!;
    for (let i = 0; i < 300; i += 50) {
      const ids = Array.from({ length: 50 }, (_, j) => 1000 + i + j);
      const aborts = ids.map(() => new AbortController());
      // hour-long calls: only their cancels end them
      const sent = ids.map((id, j) => send(gw!.port, a, toolCall(id, 'slow', { ms: 3_600_000 }), {}, {}, '/mcp', aborts[j]!.signal).catch(() => undefined));
      // cancelled once the upstream has them (the pool was full from the 257th on, before the fix)
      await eventually(async () => ((await upstreamCounts(upstream.port)).slow === i + 50 ? true : undefined), `calls ${i + 1}-${i + 50} to reach the upstream`, 20_000);
      await Promise.all(ids.map((id) => send(gw!.port, a, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'changed my mind' } })));
      for (const ac of aborts) ac.abort();
      await Promise.all(sent);
    }
    // answered, not failed at the call time-out (20 s) for want of a connection to the upstream
    const r = answer(await call(gw.port, b, 1, 'echo', { text: 'still served' }));
    assert.equal(r?.error, undefined, JSON.stringify(r));
    assert.match(JSON.stringify(r?.result), /still served/);
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});

/** Opens a 2026-07-28 subscriptions/listen stream; resolves with its status once acknowledged (or refused). */
async function listen(port: number, id: string, signal: AbortSignal): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    signal,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
    body: JSON.stringify({
      jsonrpc: '2.0', id, method: 'subscriptions/listen',
      params: { notifications: { toolsListChanged: true }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} } },
    }),
  });
  if (res.status !== 200) return { status: res.status, text: await res.text() };
  const reader = res.body!.getReader();
  let seen = '';
  while (!seen.includes('notifications/subscriptions/acknowledged')) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += Buffer.from(value).toString('utf8');
  }
  return { status: res.status, text: seen };
}

test('HTTP gateway (2026-07-28): open subscriptions/listen streams are capped per identity as sessions are; closing one lets the next in', async () => {
  const policy = join(tmp.dir, 'listen.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\nsessions:\n  max_http_sessions: 2\n');
  const db = join(tmp.dir, 'listen.db');
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  const streams = [new AbortController(), new AbortController(), new AbortController()];
  try {
    gw = await startGateway(policy, db, upstream.port);
    for (const [i, ac] of streams.slice(0, 2).entries()) assert.equal((await listen(gw.port, `l${i}`, ac.signal)).status, 200);
    const third = await listen(gw.port, 'l2', streams[2]!.signal);
    assert.equal(third.status, 429, third.text);
    const refusal = (JSON.parse(third.text) as { error: { code: number; message: string } }).error;
    assert.equal(refusal.code, -32000);
    assert.match(refusal.message, /^Too many open subscriptions\/listen streams: "anonymous" has 2, the most the policy allows \(sessions.max_http_sessions: 2\)/);
    streams[0]!.abort();
    const again = new AbortController();
    streams.push(again);
    await waitFor(async () => ((await listen(gw!.port, 'l3', again.signal)).status === 200 ? true : undefined), 10_000, 50, 'a listen after one closed');
  } finally {
    for (const ac of streams) ac.abort();
    await stop(gw);
    await stop(upstream);
  }
});

test('HTTP gateway (2025-11-25): an identity\'s calls in flight upstream are capped across its sessions; the next is denied at once, and served again once one ends', async () => {
  const policy = join(tmp.dir, 'inflight.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'inflight.db');
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  const held: { ac: AbortController; sent: Promise<unknown> }[] = [];
  try {
    gw = await startGateway(policy, db, upstream.port);
    // two sessions of one identity share the cap
    const [a, b] = [(await open('legacy', gw.port)).conn!, (await open('legacy', gw.port)).conn!];
    for (let i = 0; i < MAX_INFLIGHT_CALLS_PER_IDENTITY; i++) {
      const ac = new AbortController();
      held.push({ ac, sent: send(gw.port, i % 2 ? a : b, toolCall(2000 + i, 'slow', { ms: 600_000 }), {}, {}, '/mcp', ac.signal).catch(() => undefined) });
    }
    await eventually(async () => ((await upstreamCounts(upstream.port)).slow === MAX_INFLIGHT_CALLS_PER_IDENTITY ? true : undefined), 'every held call to reach the upstream', 20_000);
    const past = answer(await call(gw.port, b, 1, 'echo', { text: 'one more' }));
    assert.match(JSON.stringify(past?.result), new RegExp(`${MAX_INFLIGHT_CALLS_PER_IDENTITY} calls of anonymous are already in flight upstream \\(at most ${MAX_INFLIGHT_CALLS_PER_IDENTITY}\\)`), JSON.stringify(past));
    // one ends (its client cancels it): its slot comes back
    await send(gw.port, a, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2001, reason: 'done waiting' } });
    const again = answer(await call(gw.port, b, 2, 'echo', { text: 'served again' }));
    assert.match(JSON.stringify(again?.result), /served again/, JSON.stringify(again));
  } finally {
    for (const h of held) h.ac.abort();
    await Promise.all(held.map((h) => h.sent));
    await stop(gw);
    await stop(upstream);
  }
});

test('HTTP gateway (2025-11-25): a tools/list or prompts/list its client cancels while the upstream holds it has its upstream POST closed (abandon)', async () => {
  const policy = join(tmp.dir, 'lists.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'lists.db');
  // holds every list request: no answer, its POST open, as an SDK server leaves a cancelled request's
  const up = await startScriptedUpstream((m) => m.method === 'tools/list' || m.method === 'prompts/list');
  let gw: Proc | undefined;
  const held: { ac: AbortController; sent: Promise<unknown> }[] = [];
  try {
    gw = await startGateway(policy, db, up.port);
    const a = (await open('legacy', gw.port)).conn!;
    // tools/list: its late answer would be dropped (droppedIds); prompts/list: passed on (cancelledOpen). Both are
    // abandoned. The first is sent right after the handshake: it must take the path that can abandon it.
    for (const [id, method] of [[11, 'tools/list'], [12, 'prompts/list']] as const) {
      const ac = new AbortController();
      held.push({ ac, sent: send(gw.port, a, { jsonrpc: '2.0', id, method, params: {} }, {}, {}, '/mcp', ac.signal).catch(() => undefined) });
      await eventually(async () => (up.received.some((m) => m.id === id && m.method === method) ? true : undefined), `${method} to reach the upstream`);
      assert.equal(up.closedEarly.has(id), false);
      await send(gw.port, a, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'changed my mind' } });
      await eventually(async () => (up.closedEarly.has(id) ? true : undefined), `the gateway to close the upstream POST of the cancelled ${method}`);
    }
    // the session goes on
    const r = await send(gw.port, a, { jsonrpc: '2.0', id: 13, method: 'ping' });
    assert.deepEqual(answer(r)?.result, {}, r.text);
  } finally {
    for (const h of held) h.ac.abort();
    await Promise.all(held.map((h) => h.sent));
    await stop(gw);
    await up.close();
  }
});
