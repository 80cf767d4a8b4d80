import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { RecentIds } from '../../src/gateway/recent-ids.js';
import { limitBody, readSseEvents } from '../../src/gateway/fast-http.js';
import { refusalSubject } from '../../src/gateway/refusal.js';

test('the ids a connection gave up on are bounded in number and in total length, oldest forgotten first', () => {
  const ids = new RecentIds(3, 100);
  for (const id of ['a', 'b', 'c', 'd']) ids.add(id);
  assert.deepEqual(['a', 'b', 'c', 'd'].map((id) => ids.has(id)), [false, true, true, true]);
  assert.equal(ids.delete('c'), true);
  assert.equal(ids.delete('c'), false);
  // one id longer than the whole budget is not kept, nor does it keep the others out for ever
  ids.add('x'.repeat(101));
  assert.equal(ids.size, 0);
  ids.add(7);
  ids.add('y'.repeat(60));
  ids.add('z'.repeat(60));
  assert.deepEqual([ids.has(7), ids.has('y'.repeat(60)), ids.has('z'.repeat(60))], [false, false, true]);
});

function sse(chunks: string[], max?: number): Promise<{ events: string[]; error: string | null }> {
  const res = new PassThrough() as unknown as IncomingMessage;
  const events: string[] = [];
  return new Promise((resolve) => {
    readSseEvents(res, (ev) => events.push(ev), () => resolve({ events, error: null }), max);
    res.on('error', (e) => resolve({ events, error: e.message }));
    for (const c of chunks) (res as unknown as PassThrough).write(c);
    (res as unknown as PassThrough).end();
  });
}

test('an upstream SSE stream: events found across chunk edges, and one event past the size limit ends the stream', async () => {
  // the blank line that ends an event split between chunks, in both line-end styles
  assert.deepEqual((await sse(['data: a\n', '\ndata: b\r\n\r', '\ndata: c\n\n'])).events, ['data: a', 'data: b', 'data: c']);
  assert.deepEqual((await sse(['data: 1\n\ndata: 2\n\n'])).events, ['data: 1', 'data: 2']);
  // an event that never ends: the stream is closed once it passes the limit, not read for ever
  const flood = await sse(['data: ' + 'x'.repeat(600), 'x'.repeat(600)], 1000);
  assert.deepEqual(flood.events, []);
  assert.match(flood.error ?? '', /upstream sent an SSE event of more than .* MiB: its stream was closed/);
  // complete events of any number pass, each under the limit
  assert.equal((await sse(Array.from({ length: 50 }, () => `data: ${'y'.repeat(500)}\n\n`), 1000)).events.length, 50);
});

test('a refused tools/call is audited with its tool name clipped past the longest a name may be, as the policy path does', () => {
  const long = 'd'.repeat(5_000_000);
  const s = refusalSubject({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: long, arguments: {} } }, 'tools/call', 'id null');
  assert.equal(s.tool, `${'d'.repeat(64)}… (5000000 characters)`);
  assert.equal(refusalSubject({ method: 'tools/call', params: { name: 'delete_repo' } }, 'tools/call', 'x').tool, 'delete_repo');
});

test('stdio: while the agent reads nothing of what it was sent, nothing more is read from it; reading again resumes both', async () => {
  const { LineStdioServerTransport } = await import('../../src/gateway/stdio-transport.js');
  const input = new PassThrough();
  const output = new PassThrough({ highWaterMark: 1024 });
  const t = new LineStdioServerTransport(input, output);
  await t.start();
  const big = { jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(4096) } } as never;
  const first = t.send(big);
  assert.equal(input.isPaused(), true, 'the agent\'s input is paused while its output is full');
  const second = t.send(big);
  // one wait shared by every send meanwhile, not one drain listener each
  assert.equal(output.listenerCount('drain'), 1);
  output.resume(); // the agent reads
  await Promise.all([first, second]);
  assert.equal(input.isPaused(), false);
  await t.close();
});

test('an upstream JSON answer past the size limit ends its response with an error; one within it is read whole', async () => {
  const read = (chunks: string[], max: number) =>
    new Promise<{ bytes: number; error: string | null }>((resolve) => {
      const res = new PassThrough() as unknown as IncomingMessage;
      let bytes = 0;
      limitBody(res, max);
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ bytes, error: null }));
      res.on('error', (e) => resolve({ bytes, error: e.message }));
      for (const c of chunks) (res as unknown as PassThrough).write(c);
      (res as unknown as PassThrough).end();
    });
  assert.deepEqual(await read(['x'.repeat(600), 'x'.repeat(400)], 1000), { bytes: 1000, error: null });
  const over = await read(['x'.repeat(600), 'x'.repeat(600), 'x'.repeat(600)], 1000);
  assert.match(over.error ?? '', /upstream sent a message of more than .* MiB: its response was closed/);
  assert.ok(over.bytes <= 1200, `read ${over.bytes} bytes past the limit`);
});
