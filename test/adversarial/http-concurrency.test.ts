/**
 * Concurrent connects must not over-admit, at either revision. On 2025-11-25 many raw sessions
 * initialize at the same moment, then all fire their calls at once; on 2026-07-28 there is nothing to
 * open, so all the calls go at once, with and without session handles
 * (`_meta["egress-triage/session"]`). A global limit admits exactly `max` in the whole process, the
 * rest get `[POLICY DENIED]`, and the upstream and the audit log agree with that count. Flooding
 * session handles buys no quota: a 2025-11-25 session is its own key whatever handles it sends, and
 * a 2026-07-28 identity holds at most `sessions.max_handles` of them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { ERAS, HANDLE_KEY, answer, call, eventually, open, policyAudit, startGateway, startServe, startUpstream, stop, upstreamCounts, type Conn, type Era, type Proc, type RawReply } from './http-helpers.js';

const tmp = tempDir('egress-adv-conc-');
after(() => tmp.cleanup());

const SESSIONS = 40;
const CALLS = 3;
const MAX = 50;

/**
 * The ways a flood arrives: 2025-11-25 sessions; 2026-07-28 without handles (all one identity's
 * session), and with a handle per simulated session.
 */
const FLOODS: { era: Era; handles: boolean }[] = [
  { era: 'legacy', handles: false },
  { era: 'modern', handles: false },
  { era: 'modern', handles: true },
];
/** Room for a handle per session: the cap itself is the handle-flooding test's. */
const ROOM = `sessions: { max_handles: ${SESSIONS} }\n`;
const floodLabel = (f: { era: Era; handles: boolean }) => `${f.era}${f.handles ? ', a session handle per session' : ''}`;

interface Tally {
  admitted: number;
  rateLimited: number;
  handleRefused: number;
}

function tally(replies: RawReply[]): Tally {
  const t: Tally = { admitted: 0, rateLimited: 0, handleRefused: 0 };
  for (const r of replies) {
    const result = answer(r)?.result;
    assert.ok(result, `every call is answered: ${r.status} ${r.text.slice(0, 200)}`);
    if (!result.isError) t.admitted++;
    else if (/^\[POLICY DENIED\] rate limit exceeded/.test(result.content[0].text)) t.rateLimited++;
    else if (/^\[POLICY DENIED\] session identity refused: session handle refused: identity "[^"]+" already holds \d+ live session handles/.test(result.content[0].text)) t.handleRefused++;
    else assert.fail(`unexpected answer: ${r.text.slice(0, 300)}`);
  }
  return t;
}

/** SESSIONS sessions (or, on 2026-07-28, as many callers) of CALLS calls each, all at once. */
async function flood(port: number, f: { era: Era; handles: boolean }, tool: string, args: Record<string, unknown>): Promise<Tally> {
  const opened = await Promise.all(Array.from({ length: SESSIONS }, () => open(f.era, port)));
  for (const s of opened) assert.ok(s.conn, s.reply.text.slice(0, 200));
  const replies = await Promise.all(
    opened.flatMap((s, i) =>
      Array.from({ length: CALLS }, (_, j) => call(port, s.conn!, 100 + i * CALLS + j, tool, args, {}, f.handles ? { [HANDLE_KEY]: `conversation-${i}` } : {})),
    ),
  );
  return tally(replies);
}

const audited = (db: string, tool: string, n: number) =>
  eventually(async () => {
    const rows = (await policyAudit(db)).filter((r) => r.tool === tool);
    return rows.length >= n ? rows : undefined;
  }, `${n} audit records`);

for (const f of FLOODS) {
  test(`serve --policy (${floodLabel(f)}): calls arriving at once share one global limit`, async () => {
    const policy = join(tmp.dir, `serve-${f.era}-${f.handles}.yaml`);
    writeFileSync(policy, `version: 1\ndefault: allow\n${ROOM}tools:\n  ping:\n    rate_limit: { max: ${MAX}, window: 3600, scope: global }\n`);
    const db = join(tmp.dir, `serve-${f.era}-${f.handles}.db`);
    SqliteStore.open(db).close();
    let serve: Proc | undefined;
    try {
      serve = await startServe(db, ['--policy', policy]);
      assert.deepEqual(await flood(serve.port, f, 'ping', {}), { admitted: MAX, rateLimited: SESSIONS * CALLS - MAX, handleRefused: 0 });
      const rows = await audited(db, 'ping', SESSIONS * CALLS);
      assert.equal(rows.filter((r) => r.decision === 'allow').length, MAX);
      assert.equal(rows.filter((r) => r.decision === 'rate_limited').length, SESSIONS * CALLS - MAX);
    } finally {
      await stop(serve);
    }
  });

  test(`HTTP gateway (${floodLabel(f)}): calls arriving at once share one global limit; the upstream ran exactly max calls`, async () => {
    const policy = join(tmp.dir, `gw-${f.era}-${f.handles}.yaml`);
    writeFileSync(policy, `version: 1\ndefault: allow\n${ROOM}tools:\n  echo:\n    rate_limit: { max: ${MAX}, window: 3600, scope: global }\n`);
    const db = join(tmp.dir, `gw-${f.era}-${f.handles}.db`);
    const upstream = await startUpstream();
    let gw: Proc | undefined;
    try {
      gw = await startGateway(policy, db, upstream.port);
      assert.deepEqual(await flood(gw.port, f, 'echo', { text: 'x' }), { admitted: MAX, rateLimited: SESSIONS * CALLS - MAX, handleRefused: 0 });
      assert.deepEqual(await upstreamCounts(upstream.port), { echo: MAX });
      const rows = await audited(db, 'echo', SESSIONS * CALLS);
      assert.equal(rows.filter((r) => r.decision === 'allow' && r.upstream === 'ok').length, MAX);
    } finally {
      await stop(gw);
      await stop(upstream);
    }
  });
}

/** Per-session limit and handle cap of the handle-flooding test. */
const PER_SESSION = 2;
const MAX_HANDLES = 4;
const FLOOD_HANDLES = 40;

/**
 * One caller sends FLOOD_HANDLES x CALLS calls at once, each under a different handle, then calls
 * with none. What it may get: 2025-11-25: one session's bucket, handles or not. 2026-07-28: the
 * buckets of MAX_HANDLES handles (the rest refused for the cap) plus the identity's own bucket.
 */
const HANDLE_FLOOD: Record<Era, { flood: Tally; thenWithout: number }> = {
  legacy: { flood: { admitted: PER_SESSION, rateLimited: FLOOD_HANDLES * CALLS - PER_SESSION, handleRefused: 0 }, thenWithout: 0 },
  modern: { flood: { admitted: MAX_HANDLES * PER_SESSION, rateLimited: MAX_HANDLES * (CALLS - PER_SESSION), handleRefused: (FLOOD_HANDLES - MAX_HANDLES) * CALLS }, thenWithout: PER_SESSION },
};

for (const era of ERAS) {
  test(`HTTP gateway (${era}): flooding session handles at once never buys more than the cap allows`, async () => {
    const policy = join(tmp.dir, `gw-handles-${era}.yaml`);
    writeFileSync(
      policy,
      `version: 1\ndefault: allow\nsessions: { max_handles: ${MAX_HANDLES} }\ntools:\n  echo:\n    rate_limit: { max: ${PER_SESSION}, window: 3600, scope: session }\n`,
    );
    const db = join(tmp.dir, `gw-handles-${era}.db`);
    const upstream = await startUpstream();
    let gw: Proc | undefined;
    try {
      gw = await startGateway(policy, db, upstream.port);
      const { conn } = await open(era, gw.port);
      assert.ok(conn);
      const c: Conn = conn;
      const replies = await Promise.all(
        Array.from({ length: FLOOD_HANDLES * CALLS }, (_, i) => call(gw!.port, c, 1000 + i, 'echo', { text: 'x' }, {}, { [HANDLE_KEY]: `h-${i % FLOOD_HANDLES}` })),
      );
      const expected = HANDLE_FLOOD[era];
      assert.deepEqual(tally(replies), expected.flood);
      const without = tally(await Promise.all(Array.from({ length: 5 }, (_, i) => call(gw!.port, c, 5000 + i, 'echo', { text: 'y' }))));
      assert.equal(without.admitted, expected.thenWithout);
      const ran = expected.flood.admitted + expected.thenWithout;
      assert.deepEqual(await upstreamCounts(upstream.port), { echo: ran });
      const rows = await audited(db, 'echo', FLOOD_HANDLES * CALLS + 5);
      assert.equal(rows.filter((r) => r.decision === 'allow' && r.upstream === 'ok').length, ran);
    } finally {
      await stop(gw);
      await stop(upstream);
    }
  });
}
