import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cliResult, nativeEvent, ndjson, tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';

/**
 * `egress-triage ingest` on PostgreSQL, through the built CLI: rejected records and --strict give
 * the summary and exit code they give on SQLite (rules on PostgreSQL: rules-cli.test.ts).
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

const cli = cliResult;

const file = tmp.file;

/** Two learning runs of one job, then a run calling somewhere new: one New-Outbound-Network-Call. */
const RUNS = ndjson([
  ...[1, 2].map((run) => nativeEvent({ run, domain: 'github.com' })),
  nativeEvent({ run: 3, domain: 'github.com' }),
  nativeEvent({ run: 3, domain: 'exfil.example', t: 1 }),
  nativeEvent({ run: 4, domain: 'github.com' }),
]);

type Summary = { sources: { records: number; accepted: number; rejected: number; stored: boolean; detections: number; elapsedMs: number; source: string }[] };
const comparable = (out: string) => (JSON.parse(out) as Summary).sources.map(({ elapsedMs: _, source: __, ...s }) => s);

test('rejected records and --strict: the same summaries and exit codes as on SQLite', async () => {
  const bad = file('bad.ndjson', RUNS + '{"owner": "acme", not json\n');
  for (const strict of [false, true]) {
    const outs: unknown[] = [];
    for (const db of [await (await server()).createDatabase('strict'), join(tmp.dir, `strict-${strict}.db`)]) {
      const r = await cli(['ingest', bad, '--db', db, '--learning-runs', '2', '--json', ...(strict ? ['--strict'] : [])]);
      assert.equal(r.status, 1, r.stderr);
      const [s] = comparable(r.stdout) as Summary['sources'];
      assert.equal(s!.rejected, 1);
      assert.equal(s!.stored, !strict);
      const stats = await cli(['stats', '--db', db, '--json']);
      assert.equal(stats.status, 0, stats.stderr);
      assert.equal((JSON.parse(stats.stdout) as { jobs: number }).jobs, strict ? 0 : 1, strict ? '--strict stored nothing' : 'the good records were stored');
      outs.push(comparable(r.stdout));
    }
    assert.deepEqual(outs[0], outs[1]);
  }
});
