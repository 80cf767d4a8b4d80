import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CLI, FIXTURE, kill, spawnUntil, text, tmpDir, waitFor } from './helpers.js';

/**
 * Another process holding the SQLite store's write lock (an ingest, a rule change) delays only the
 * answers that wait for an audit row, and not the gateway: another session is served meanwhile.
 * A gateway that waited inside SQLite would stop every session until the lock was freed, or 15 s.
 */
test('HTTP gateway on a SQLite store whose write lock another connection holds: one session waits for its audit row, another is served', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ndefault: allow\n');
  const jsonl = join(t.dir, 'policy-audit.jsonl');
  const up = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', `http://127.0.0.1:${up.match[1]}/mcp`, '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+)/);
  const clients: Client[] = [];
  const holder = new Database(t.db);
  try {
    for (let i = 0; i < 2; i++) {
      const c = new Client({ name: `lock-test-${i}`, version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(gw.match[1]!)));
      clients.push(c);
    }
    const [waiting, other] = clients as [Client, Client];
    assert.equal(text(await waiting.callTool({ name: 'echo', arguments: { text: 'before' } })), 'before');
    holder.exec('BEGIN IMMEDIATE');
    let answered = false;
    const call = waiting.callTool({ name: 'echo', arguments: { text: 'during' } }).finally(() => (answered = true));
    // The JSONL line is written first: once it is there, the call has its answer and waits for its row.
    await waitFor(() => existsSync(jsonl) && readFileSync(jsonl, 'utf8').trim().split('\n').length === 2, 10_000, 10, 'the second audit line');
    assert.ok((await other.listTools()).tools.some((x) => x.name === 'echo'), 'the other session is served');
    await other.ping();
    assert.equal(answered, false, `the call is answered only once its audit row is in\n${gw.output()}`);
    holder.exec('COMMIT');
    assert.equal(text(await call), 'during');
    const rows = holder.prepare(`SELECT tool, decision FROM policy_audit ORDER BY seq`).all();
    assert.deepEqual(rows, [
      { tool: 'echo', decision: 'allow' },
      { tool: 'echo', decision: 'allow' },
    ]);
  } finally {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
    for (const c of clients) await c.close().catch(() => undefined);
    await kill(gw.child);
    await kill(up.child);
    t.cleanup();
  }
});
