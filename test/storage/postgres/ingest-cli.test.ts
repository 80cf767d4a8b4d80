import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { CLI, nativeEvent, ndjson, tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';

/**
 * `egress-triage ingest` on PostgreSQL, through the built CLI: rejected records and --strict give
 * the summary and exit code they give on SQLite, and with no rules on PostgreSQL nothing is
 * suppressed, not even by a rule row put there by hand.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG']) delete e[k];
  const child = spawn(process.execPath, [CLI, ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

function file(name: string, text: string): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, text);
  return f;
}

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

test('on PostgreSQL nothing is suppressed on ingest, even with a rule row that would match', async () => {
  const url = await (await server()).createDatabase('norules');
  const m = await cli(['db', 'migrate', '--db', url]);
  assert.equal(m.status, 0, m.stderr);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // What a rule matching every new outbound call would look like, were rules on PostgreSQL.
    const t = await c.query<{ tenant_id: string }>("INSERT INTO tenants (name, created_at) VALUES ('default', 0) RETURNING tenant_id");
    await c.query(
      `INSERT INTO rules (tenant_id, rule_uid, detection_type, name, conditions, severity_action, created_by, created_on, updated_on)
       VALUES ($1, 'r1', 'New-Outbound-Network-Call', 'everything', '{"process":"*"}', 'suppress', 'test', '2026-10-01', '2026-10-01')`,
      [t.rows[0]!.tenant_id],
    );
    await c.query("UPDATE meta SET value = '1' WHERE key = 'rules_version'");
  } finally {
    await c.end();
  }
  const r = await cli(['ingest', file('runs.ndjson', RUNS), '--db', url, '--learning-runs', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const s = (JSON.parse(r.stdout) as Summary & { totals: { suppressedOnIngest: number } });
  assert.equal(s.sources[0]!.detections, 1);
  assert.equal(s.totals.suppressedOnIngest, 0);
  const list = await cli(['detections', 'list', '--db', url, '--json']);
  assert.deepEqual((JSON.parse(list.stdout) as { detections: { status: string; endpoint: string }[] }).detections.map((d) => [d.endpoint, d.status]), [['exfil.example:443', 'new']]);
});
