import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { cliResult, runCli, tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';
import { storeState } from '../../ingest/store-state.js';
import { pgSourcesInOrder, pgStoreState } from './store-state.js';

/**
 * Concurrent ingest workers on one PostgreSQL store, with real processes: three `ingest` processes
 * given parts of one generated tenant (runs of the same jobs span the parts) give exactly the store
 * of a sequential ingest of the parts in the order the store serialised them, on PostgreSQL and on
 * SQLite, and each part's summary is the one a sequential SQLite ingest prints for it.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();
const LEARNING_RUNS = 4;

let parts: string[] = [];
before(() => {
  const input = join(tmp.dir, 'tenant.ndjson');
  const g = runCli(['generate', '--runs', '10', '--seed', '5', '--events', '12000', '--out', input]);
  assert.equal(g.status, 0, g.stderr);
  const lines = readFileSync(input, 'utf8').split('\n').filter((l) => l !== '');
  // Cut by position, not by job: every part continues runs the previous one started.
  const cuts = [0, Math.floor(lines.length * 0.3), Math.floor(lines.length * 0.65), lines.length];
  parts = [0, 1, 2].map((i) => {
    const f = join(tmp.dir, `part-${i}.ndjson`);
    writeFileSync(f, lines.slice(cuts[i], cuts[i + 1]).join('\n') + '\n');
    return f;
  });
});


function ingestArgs(file: string, db?: string): string[] {
  return ['ingest', file, ...(db ? ['--db', db] : []), '--format', 'native', '--learning-runs', String(LEARNING_RUNS), '--json'];
}

const start = cliResult;

interface Summary {
  sources: { source: string; elapsedMs: number }[];
}

/** A source's summary without what depends on the machine (its time). */
function comparable(stdout: string): unknown {
  const r = JSON.parse(stdout) as Summary;
  return r.sources.map(({ elapsedMs: _, ...s }) => s);
}

test('three ingest processes on one PostgreSQL store, touching the same jobs, give the sequential result', async () => {
  const pgServer = await server();
  const url = await pgServer.createDatabase('concurrent');
  // All start at once, on a database without the schema yet: the first to migrate wins, the others
  // wait for its advisory lock. One worker finds the store through EGRESS_TRIAGE_DB.
  const runs = await Promise.all(parts.map((f, i) => (i === 0 ? start(ingestArgs(f), { EGRESS_TRIAGE_DB: url }) : start(ingestArgs(f, url)))));
  for (const r of runs) assert.equal(r.status, 0, r.stderr);
  const byPart = new Map(parts.map((f, i) => [f, runs[i]!]));

  const order = await pgSourcesInOrder(url);
  assert.deepEqual(order.map((s) => s.source).sort(), [...parts].sort(), 'each part was recorded once');
  // A worker that started while another held the tenant said whom it waited for.
  let overlapping = 0;
  for (let i = 1; i < order.length; i++) {
    const prev = order[i - 1]!;
    const cur = order[i]!;
    if (cur.startedAt < prev.finishedAt) {
      overlapping++;
      const esc = prev.source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(byPart.get(cur.source)!.stderr, new RegExp(`waiting for the ingest of ${esc} \\(pid ${byPart.get(prev.source)!.pid} on `));
    }
  }
  assert.ok(overlapping >= 1, 'the workers really ran at once');

  // The same parts, one after the other in that order: into another PostgreSQL database, and into SQLite.
  const seqUrl = await pgServer.createDatabase('sequential');
  const sqlite = join(tmp.dir, 'sequential.db');
  for (const { source } of order) {
    const p = await start(ingestArgs(source, seqUrl));
    assert.equal(p.status, 0, p.stderr);
    const s = await start(ingestArgs(source, sqlite));
    assert.equal(s.status, 0, s.stderr);
    assert.deepEqual(comparable(byPart.get(source)!.stdout), comparable(s.stdout), `the summary of ${source} is SQLite's`);
    assert.deepEqual(comparable(p.stdout), comparable(s.stdout));
  }

  const concurrent = await pgStoreState(url);
  assert.ok(concurrent.detections.length > 0, 'the data raises detections');
  assert.ok(concurrent.baseline.some((b) => / in=1 /.test(b)), 'and teaches baselines');
  assert.ok(concurrent.runs.some((r) => / learning=0 /.test(r)), 'past the learning window');
  assert.deepEqual(concurrent, await pgStoreState(seqUrl), 'concurrent equals sequential on PostgreSQL');
  assert.deepEqual(concurrent, storeState(sqlite), 'and equals SQLite');
});
