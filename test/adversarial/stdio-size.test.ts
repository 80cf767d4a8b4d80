import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, cli } from '../gateway/helpers.js';
import { ERAS, REVISION, call, resultText, startGateway, type Msg } from './stdio-helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';

const MiB = 1024 * 1024;

for (const era of ERAS) test(`stdio size (${REVISION[era]}): one limit both ways; an oversize message gets an error with its id and the gateway stays up`, async () => {
  const g = await startGateway(
    `version: 1
tools:
  big: { rate_limit: { max: 2, window: 600 } }
`,
    { args: ['--max-message-bytes', '1MiB'], era },
  );
  try {
    await g.init();
    // Agent -> gateway, id first (as written by hand) and id last (as the SDK serializes a request).
    g.send(call('in-head', 'echo', { text: 'h'.repeat(2 * MiB) }));
    assert.equal((await g.reply('in-head')).error?.code, -32600);
    await g.raw(`{"method":"tools/call","params":{"name":"echo","arguments":{"text":"${'t'.repeat(2 * MiB)}"}},"jsonrpc":"2.0","id":"in-tail"}\n`);
    const tail = await g.reply('in-tail');
    assert.equal(tail.error?.code, -32600);
    assert.match(tail.error!.message, /exceeds the limit of 1048576 bytes/);
    await g.raw(`{"jsonrpc":"2.0","method":"tools/call","params":{"text":"${'n'.repeat(2 * MiB)}"}}\n`);
    assert.ok(await g.reply(null), 'no id to recover: answered with id null');
    assert.equal(g.upstreamCalls().length, 0, 'nothing oversize reached the upstream');

    // Just under the limit passes both ways.
    const under = 'u'.repeat(MiB - 400); // room for the envelope of 2026-07-28
    g.send(call('under', 'echo', { text: under }));
    assert.equal(resultText(await g.reply('under')), under);

    // Upstream -> gateway: a reply over the limit becomes an error for that id; the call counts.
    g.send(call('out-head', 'big', { bytes: 2 * MiB }));
    const oh = await g.reply('out-head');
    assert.equal(oh.error?.code, -32603);
    assert.match(oh.error!.message, /upstream message of \d+ bytes exceeds the limit of 1048576 bytes/);
    g.send(call('out-tail', 'big', { bytes: 2 * MiB, idLast: true }));
    assert.equal((await g.reply('out-tail')).error?.code, -32603);
    g.send(call('out-3', 'big', { bytes: 10 }));
    assert.match(resultText(await g.reply('out-3')), /^\[POLICY DENIED\] rate limit/, 'the upstream ran both oversize calls: quota kept');

    // An oversize request from the upstream is answered to the upstream with -32600 for its id.
    g.send(call('ask', 'ask_big', { bytes: 2 * MiB }));
    const ask = await g.reply('ask');
    assert.match(resultText(ask), /-32600/);
    assert.ok(g.upstream().some((m) => m.id === 'up-ask' && (m as Msg).error?.code === -32600));

    g.send(call('alive', 'echo', { text: 'alive' }));
    assert.equal(resultText(await g.reply('alive')), 'alive');
    assert.equal(g.child.exitCode, null);
    const audit = g.auditFile().filter((r) => r.tool === 'big');
    assert.deepEqual(audit.map((r) => r.upstream), ['rpc_error', 'rpc_error', 'not_forwarded']);
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio size (${REVISION[era]}): a 10 MiB reply passes with the default limit (16 MiB) and a 17 MiB message is refused`, async () => {
  const g = await startGateway('version: 1\n', { era });
  try {
    await g.init();
    g.send(call('ten', 'big', { bytes: 10 * MiB }));
    const r = await g.reply('ten', 60_000);
    assert.equal(resultText(r).length, 10 * MiB - 80);
    g.send(call('seventeen', 'echo', { text: 's'.repeat(17 * MiB) }));
    assert.equal((await g.reply('seventeen', 60_000)).error?.code, -32600);
    g.send(call('alive', 'echo', { text: 'alive' }));
    assert.equal(resultText(await g.reply('alive')), 'alive');
    assert.equal(g.upstreamCalls().length, 2);
  } finally {
    await g.close();
  }
});

test('size setting: the environment variable applies, a bad value is a usage error naming its source', async () => {
  const g = await startGateway('version: 1\n', { env: { EGRESS_TRIAGE_MAX_MESSAGE_BYTES: '65536' } });
  try {
    await g.init();
    g.send(call('x', 'echo', { text: 'x'.repeat(70_000) }));
    assert.match((await g.reply('x')).error!.message, /exceeds the limit of 65536 bytes/);
  } finally {
    await g.close();
  }
  const bad = await cli(['gateway', '--policy', '/nonexistent.yaml', '--max-message-bytes', '12 parsecs', '--', process.execPath, '-e', '0']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--max-message-bytes: "12 parsecs" is not a size/);
  assert.ok(!/\n\s+at /.test(bad.stderr), 'no stack trace');
});

test('plain `egress-triage mcp` on stdio has the same cap: error with the id, still serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'adv-mcp-'));
  SqliteStore.open(join(dir, 's.db')).close(); // mcp serves existing stores only
  const child = spawn(process.execPath, [CLI, 'mcp', '--db', join(dir, 's.db'), '--max-message-bytes', '1MiB'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let buf = '';
  const out: Msg[] = [];
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      out.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const wait = async (id: unknown) => {
    const end = Date.now() + 15_000;
    for (;;) {
      const m = out.find((x) => x.id === id);
      if (m) return m;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`no answer for ${String(id)}: ${JSON.stringify(out)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 'huge', method: 'tools/call', params: { name: 'x', arguments: { t: 'x'.repeat(2 * MiB) } } }) + '\n');
    assert.equal((await wait('huge')).error?.code, -32600);
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: null, method: 'ping' }) + '\n');
    assert.equal((await wait(null)).error?.code, -32600, 'invalid ids are refused by the plain server too');
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }) + '\n');
    assert.deepEqual((await wait(2)).result, {});
  } finally {
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});
