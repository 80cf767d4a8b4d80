/**
 * A client that stops reading the SSE stream of its call while the upstream keeps sending on it: the
 * gateway would keep in memory all the upstream sends for it (1.8 GB in 25 s of an upstream's progress
 * notices). Past MAX_UPSTREAM_MESSAGE_BYTES buffered, the stream is closed (FastServerTransport.send).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tempDir } from '../helpers.js';
import { eventually, open, policyAudit, send, startGateway, startScriptedUpstream, stop, type Proc } from './http-helpers.js';
import { MAX_UPSTREAM_MESSAGE_BYTES } from '../../src/gateway/fast-http.js';

const tmp = tempDir('egress-adv-unread-');
after(() => tmp.cleanup());

const NOTICE_CHARS = 1024 * 1024;
/** 2.5 times the limit: without it, every byte and the answer would wait in the gateway for the client */
const NOTICES = Math.ceil((2.5 * MAX_UPSTREAM_MESSAGE_BYTES) / NOTICE_CHARS);

test('HTTP gateway (2025-11-25): the SSE stream of a client that does not read it is closed once more than 16 MiB wait for it; the rest is not kept', async () => {
  const policy = join(tmp.dir, 'gw.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'gw.db');
  // `flood`: NOTICES progress notices of 1 MiB on the call's SSE stream, then the answer
  const up = await startScriptedUpstream((m, res) => {
    if (m.method !== 'tools/call' || m.params?.name !== 'flood') return false;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'scripted' });
    let i = 0;
    const pump = (): void => {
      while (i < NOTICES) {
        const notice = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: m.id, progress: ++i, total: NOTICES, message: 'n'.repeat(NOTICE_CHARS) } };
        if (!res.write(`event: message\ndata: ${JSON.stringify(notice)}\n\n`)) return void res.once('drain', pump);
      }
      res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'flood done' }] } })}\n\n`);
    };
    pump();
    return true;
  });
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, up.port);
    const { sessionId } = (await open('legacy', gw.port)).conn!;
    // The call on a socket of its own that reads nothing until the gateway has had the whole flood.
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'flood', arguments: {}, _meta: { progressToken: 7 } } });
    const sock = connect(gw.port, '127.0.0.1');
    sock.pause();
    sock.write(
      ['POST /mcp HTTP/1.1', `host: 127.0.0.1:${gw.port}`, 'content-type: application/json', 'accept: application/json, text/event-stream',
        `mcp-session-id: ${sessionId!}`, 'mcp-protocol-version: 2025-06-18', 'connection: close', `content-length: ${Buffer.byteLength(body)}`, '', body].join('\r\n'),
    );
    // The upstream's answer came after every notice on its stream: once it is audited, the gateway has read them all.
    await eventually(async () => ((await policyAudit(db)).find((r) => r.tool === 'flood' && r.upstream === 'ok') ? true : undefined), 'the flood call to be answered upstream and audited', 30_000);
    let received = 0;
    let tail = '';
    const ended = new Promise<void>((resolve) => {
      sock.on('data', (c: Buffer) => {
        received += c.length;
        tail = (tail + c.toString('latin1')).slice(-4096);
      });
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
    });
    sock.resume();
    await ended;
    const sent = NOTICES * NOTICE_CHARS;
    assert.ok(!tail.includes('flood done'), 'the answer never reached a client that stopped reading');
    assert.ok(received < sent * 0.8, `the client got ${received} bytes of the ${sent} sent: the rest was not kept for it`);
    // the session is served as before
    const r = await send(gw.port, { era: 'legacy', sessionId }, { jsonrpc: '2.0', id: 8, method: 'ping' });
    assert.deepEqual(r.messages.at(-1)?.result, {}, r.text);
  } finally {
    await stop(gw);
    await up.close();
  }
});
