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
import { answer, call, open, send, startGateway, startUpstream, stop, toolCall, type Proc } from './http-helpers.js';

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
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const id = 1000 + i + j;
          const ac = new AbortController();
          // an hour-long call: only its cancel ends it
          const sent = send(gw!.port, a, toolCall(id, 'slow', { ms: 3_600_000 }), {}, {}, '/mcp', ac.signal).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 20));
          await send(gw!.port, a, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'changed my mind' } });
          ac.abort();
          await sent;
        }),
      );
    }
    const t0 = Date.now();
    const r = answer(await call(gw.port, b, 1, 'echo', { text: 'still served' }));
    assert.equal(r?.error, undefined, JSON.stringify(r));
    assert.match(JSON.stringify(r?.result), /still served/);
    // not answered by the call's time-out: the upstream had a connection for it
    assert.ok(Date.now() - t0 < 15_000, `answered after ${Date.now() - t0} ms`);
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});
