/**
 * A 2025-11-25 session translated for a 2026-07-28-only URL upstream (LegacyOverModern): the adapter
 * sends each call under an id of its own (1, 2, ... shared with its own requests), so the gateway's
 * abandon of a cancelled call's POST by the client's id (FastClientTransport.abandon) must not apply
 * there (http.ts: only while EraSwitch.passesIdsThrough); the adapter cancels a call by closing its
 * own request stream, which is how 2026-07-28 cancels.
 *
 * Mutation-checked 2026-12: dropping that passesIdsThrough condition does not fail this test. In a
 * translated session FastClientTransport never takes its fast path (it does after notifications/initialized
 * is forwarded, and the adapter forwards none), so no POST is known by id and abandon does nothing: the
 * condition guards against a change there, not today's code.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import * as z from 'zod/v4';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { tempDir } from '../helpers.js';
import { answer, eventually, listenOnLoopback, open, send, startGateway, stop, toolCall, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-translated-cancel-');
after(() => tmp.cleanup());

/** A 2026-07-28-only server: `hold {tag}` runs until its request ends (recorded in `ended`), `echo` answers. */
async function modernOnlyUpstream() {
  const holding: string[] = [];
  const ended: string[] = [];
  const handler = createMcpHandler(() => {
    const s = new McpServer({ name: 'modern-only', version: '1' });
    s.registerTool('hold', { inputSchema: z.object({ tag: z.string() }) }, async ({ tag }, ctx) => {
      holding.push(tag);
      await new Promise((r) => ctx.mcpReq.signal.addEventListener('abort', r, { once: true }));
      ended.push(tag);
      return { content: [] };
    });
    s.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, ({ text }) => ({ content: [{ type: 'text', text }] }));
    return s;
  }, { legacy: 'reject' });
  const node = toNodeHandler(handler);
  const server = createServer((req, res) => void node(req, res));
  const listening = await listenOnLoopback(server);
  return {
    port: listening.port,
    holding,
    ended,
    close: async () => {
      await handler.close();
      await listening.close();
    },
  };
}

test('HTTP gateway, a 2025-11-25 session translated for a 2026-07-28-only upstream: a cancelled call ends upstream, and only that call', async () => {
  const policy = join(tmp.dir, 'gw.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'gw.db');
  const up = await modernOnlyUpstream();
  let gw: Proc | undefined;
  const held: { ac: AbortController; sent: Promise<unknown> }[] = [];
  try {
    gw = await startGateway(policy, db, up.port);
    const a = (await open('legacy', gw.port)).conn!;
    // Client ids 1-4: the adapter's own ids for them are others (its server/discover took 1), so the
    // client's 3 is the adapter's id of another call: abandoning by the client's id would end that one.
    for (const id of [1, 2, 3, 4]) {
      const ac = new AbortController();
      held.push({ ac, sent: send(gw.port, a, toolCall(id, 'hold', { tag: `c${id}` }), {}, {}, '/mcp', ac.signal).catch(() => undefined) });
      await eventually(async () => (up.holding.length === id ? true : undefined), `call ${id} to reach the upstream`);
    }
    await send(gw.port, a, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3, reason: 'changed my mind' } });
    await eventually(async () => (up.ended.length > 0 ? true : undefined), 'the cancelled call to end upstream');
    // a round trip through the same session and upstream after the cancel: anything else it ended has ended by now
    const r = answer(await send(gw.port, a, toolCall(5, 'echo', { text: 'after' })));
    assert.match(JSON.stringify(r?.result), /after/, JSON.stringify(r));
    assert.deepEqual(up.ended, ['c3'], 'the cancelled call ended, and no other');
  } finally {
    for (const h of held) h.ac.abort();
    await Promise.all(held.map((h) => h.sent));
    await stop(gw);
    await up.close();
  }
});
