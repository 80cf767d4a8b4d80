/**
 * Concurrent connects must not over-admit. Many raw sessions initialize at the same moment, then all
 * fire their calls at once: a global limit admits exactly `max` in the whole process, the rest get
 * `[POLICY DENIED]`, and the upstream and the audit log agree with that count.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { callTool, eventually, openSession, policyAudit, startGateway, startServe, startUpstream, stop, upstreamCounts, type Proc, type RawReply } from './http-helpers.js';

const tmp = tempDir('egress-adv-conc-');
after(() => tmp.cleanup());

const SESSIONS = 40;
const CALLS = 3;
const MAX = 50;

async function flood(port: number, tool: string, args: Record<string, unknown>): Promise<{ admitted: number; denied: number }> {
  const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => openSession(port)));
  for (const s of sessions) assert.ok(s.sessionId, s.reply.text.slice(0, 200));
  const replies: RawReply[] = await Promise.all(
    sessions.flatMap((s, i) => Array.from({ length: CALLS }, (_, j) => callTool(port, s.sessionId!, 100 + i * CALLS + j, tool, args))),
  );
  let admitted = 0;
  let denied = 0;
  for (const r of replies) {
    const result = r.messages.at(-1)?.result;
    assert.ok(result, `every call is answered: ${r.status} ${r.text.slice(0, 200)}`);
    if (result.isError) {
      assert.match(result.content[0].text, /^\[POLICY DENIED\] rate limit exceeded/);
      denied++;
    } else admitted++;
  }
  return { admitted, denied };
}

const audited = (db: string, tool: string, n: number) =>
  eventually(async () => {
    const rows = (await policyAudit(db)).filter((r) => r.tool === tool);
    return rows.length >= n ? rows : undefined;
  }, `${n} audit records`);

test('serve --policy: raw sessions connecting at once share one global limit', async () => {
  const policy = join(tmp.dir, 'serve.yaml');
  writeFileSync(policy, `version: 1\ndefault: allow\ntools:\n  ping:\n    rate_limit: { max: ${MAX}, window: 3600, scope: global }\n`);
  const db = join(tmp.dir, 'serve.db');
  SqliteStore.open(db).close();
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--policy', policy]);
    assert.deepEqual(await flood(serve.port, 'ping', {}), { admitted: MAX, denied: SESSIONS * CALLS - MAX });
    const rows = await audited(db, 'ping', SESSIONS * CALLS);
    assert.equal(rows.filter((r) => r.decision === 'allow').length, MAX);
    assert.equal(rows.filter((r) => r.decision === 'rate_limited').length, SESSIONS * CALLS - MAX);
  } finally {
    await stop(serve);
  }
});

test('HTTP gateway: raw sessions connecting at once share one global limit; the upstream ran exactly max calls', async () => {
  const policy = join(tmp.dir, 'gw.yaml');
  writeFileSync(policy, `version: 1\ndefault: allow\ntools:\n  echo:\n    rate_limit: { max: ${MAX}, window: 3600, scope: global }\n`);
  const db = join(tmp.dir, 'gw.db');
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, upstream.port);
    assert.deepEqual(await flood(gw.port, 'echo', { text: 'x' }), { admitted: MAX, denied: SESSIONS * CALLS - MAX });
    assert.deepEqual(await upstreamCounts(upstream.port), { echo: MAX });
    const rows = await audited(db, 'echo', SESSIONS * CALLS);
    assert.equal(rows.filter((r) => r.decision === 'allow' && r.upstream === 'ok').length, MAX);
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});
