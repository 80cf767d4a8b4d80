import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cliResult, tempDir } from '../helpers.js';
import { usePostgres } from '../helpers/postgres.js';
import { sameDataOnBothStores } from '../helpers/both-stores.js';
import type { AnalyzeResult } from '../../src/analysis/types.js';

/**
 * `egress-triage analyze` as a real process on SQLite and on PostgreSQL (`--db postgres://...` and
 * EGRESS_TRIAGE_DB): the same data ingested into each gives the same --json analysis, pages and
 * cursors, suggested rules and their impact included, all but the sample ids; the table output works; a bad cursor, a missing database and an unreachable server get
 * their documented exit codes.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();
let sqlite = '';
let pgUrl = '';

const cli = cliResult;

before(async () => {
  ({ sqlite, pgUrl } = await sameDataOnBothStores(tmp.dir, await server(), { database: 'analyze', seed: 5, events: 8000, learningRuns: 2 }));
});

/** Sample ids as '#': each store numbers its own rows. Everything else must be equal. */
function withoutIds(r: AnalyzeResult): AnalyzeResult {
  const c = JSON.parse(JSON.stringify(r)) as AnalyzeResult;
  for (const g of c.processes) for (const s of g.sample_detections) s.id = '#';
  return c;
}

async function analyze(db: string, args: string[]): Promise<AnalyzeResult> {
  const r = await cli(['analyze', '--db', db, '--json', ...args]);
  assert.equal(r.status, 0, `${args.join(' ')} on ${db === sqlite ? 'SQLite' : 'PostgreSQL'}: ${r.stderr}`);
  return JSON.parse(r.stdout) as AnalyzeResult;
}

test('analyze --db postgres://: the same analysis as on SQLite, paged by cursor, filtered and windowed', async () => {
  let suggested = 0;
  // a window over the middle third of the data, at odd times (partial days at both edges)
  const all = await analyze(sqlite, ['--min-count', '1', '--limit', '100']);
  const first = Math.min(...all.processes.map((g) => Date.parse(g.first_seen)));
  const last = Math.max(...all.processes.map((g) => Date.parse(g.last_seen)));
  const since = new Date(first + Math.floor((last - first) / 3) + 12_345).toISOString();
  const until = new Date(first + Math.floor((2 * (last - first)) / 3) + 67_890).toISOString();
  for (const args of [[], ['--min-count', '1', '--status', 'all', '--samples', '2'], ['--since', since, '--until', until, '--min-count', '1']]) {
    let sCursor: string | null = null;
    let pCursor: string | null = null;
    let pagesSeen = 0;
    // pages of 4 groups: 3-4 pages per listing of this tenant (pages of 2 took twice the processes)
    do {
      const s = await analyze(sqlite, [...args, '--limit', '4', ...(sCursor ? ['--cursor', sCursor] : [])]);
      const p = await analyze(pgUrl, [...args, '--limit', '4', ...(pCursor ? ['--cursor', pCursor] : [])]);
      assert.ok(s.total_anomalies_scanned > 0);
      suggested += s.processes.filter((g) => g.suggested_rule).length;
      assert.deepEqual(withoutIds(p), withoutIds(s), args.join(' '));
      sCursor = s.next_cursor;
      pCursor = p.next_cursor;
      pagesSeen++;
    } while (sCursor && pagesSeen < 20);
    assert.ok(pagesSeen > 1, 'more than one page');
  }
  assert.ok(suggested > 0, 'the pages include suggested rules, with their impact on each store');
  // EGRESS_TRIAGE_DB selects PostgreSQL too
  const viaEnv = await cli(['analyze', '--min-count', '1'], { EGRESS_TRIAGE_DB: pgUrl });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.match(viaEnv.stdout, /tailscaled/);
});

test('analyze on PostgreSQL: bad input and a missing or unreachable store get their exit codes', async () => {
  const bad = await cli(['analyze', '--db', pgUrl, '--cursor', 'not-a-cursor']);
  assert.equal(bad.status, 2, bad.stderr);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  const missing = await cli(['analyze', '--db', pgUrl.replace(/\/([^/]+)$/, '/no_such_db')]);
  assert.equal(missing.status, 3, missing.stderr);
  const down = await cli(['analyze', '--db', 'postgres://postgres:pw@127.0.0.1:1/egress']);
  assert.equal(down.status, 5, down.stderr);
  assert.match(down.stderr, /cannot reach the server/);
});
