import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { cliResult, nativeEvent, ndjson, tempDir } from '../helpers.js';
import { usePostgres } from '../helpers/postgres.js';
import { PgStore } from '../../src/storage/postgres/pg-store.js';
import { RulesService } from '../../src/rules/service.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import type { AnalyzeInput, AnalyzeResult } from '../../src/analysis/types.js';

/**
 * On PostgreSQL the analysis keeps the impostor verdict and each suggestion's exact impact per
 * tenant under the tenant's change counter (analysis_stamps, migration 7). A long-lived rules
 * service (MCP, serve) must never answer from them after another process changed what they were
 * computed from: each step below changes the store from a separate CLI process, and the next
 * analysis through the same, warm rules service must equal one through a fresh service, and show
 * the change.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

const TS = { name: 'tailscaled', path: '/usr/sbin/tailscaled', sha256: 'ab'.repeat(32), parent: { name: 'sudo', path: '/usr/bin/sudo', parent: { name: 'bash', path: '/usr/bin/bash' } } };

/** A native event of job `repo`/build; run numbers are per job. */
function ev(repo: string, run: number, t: number, dest: { domain?: string; ip?: string; port?: number }, proc?: typeof TS): Record<string, unknown> {
  const e = nativeEvent({ repo, run, t, jobId: `${repo}-${run}`, ...dest });
  if (proc) e.process = proc;
  return e;
}

const learning = (repo: string) => [1, 2].map((run) => ev(repo, run, 0, { domain: 'github.com' }));

/** Job api: tailscaled to three tailnet peers (runs 3-4). Job web: nothing new yet. */
const FIRST = ndjson([
  ...learning('api'),
  ...learning('web'),
  ...[3, 4].flatMap((run) => [1, 2, 3].map((i) => ev('api', run, i, { ip: `100.64.0.${i}`, port: 41641 }, TS))),
  ev('web', 3, 1, { domain: 'github.com' }),
]);

/** Job web: the same tailscaled binary fetches from a domain no tailscale daemon calls. */
const IMPOSTOR = ndjson([ev('web', 4, 1, { domain: 'gist.githubusercontent.com', port: 443 }, TS)]);

const VIEW: AnalyzeInput = { tenant: 'acme', repo: 'api', status: 'all', minCount: 1, samples: 0 };

function tailscaled(r: AnalyzeResult) {
  const g = r.processes.find((p) => p.process === 'tailscaled');
  assert.ok(g, `a tailscaled group in ${JSON.stringify(r.processes.map((p) => p.process))}`);
  return g;
}

test('a warm rules service follows rule creates and impostor ingests made by other processes', async () => {
  const url = await (await server()).createDatabase('stamp');
  const cli = async (args: string[]) => {
    const r = await cliResult([...args, '--db', url]);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  };
  await cli(['ingest', tmp.file('first.ndjson', FIRST), '--learning-runs', '2', '--tenant', 'acme']);
  const store = PgStore.connect(url);
  try {
    const warm = new RulesService(store);
    const analyze = async () => {
      const cached = await analyzeAnomalousCallsByProcess(store, VIEW, { rules: warm });
      const fresh = await analyzeAnomalousCallsByProcess(store, VIEW, { rules: new RulesService(store) });
      assert.deepEqual(cached, fresh, 'the warm rules service answers as a fresh one');
      return cached;
    };
    const first = tailscaled(await analyze());
    assert.equal(first.count, 6);
    assert.equal(first.suggested_rule?.impact.would_suppress, 6, JSON.stringify(first.suggested_rule));
    assert.equal(first.suggested_rule?.blocked_reason, null);
    tailscaled(await analyze()); // a second call answers from the cache

    // 1. a rule suppresses the calls to one peer: the view still counts them (status all), the
    //    suggestion's impact (new detections only) loses them
    await cli(['rules', 'create', '--condition', 'process=tailscaled', '--condition', 'ip_address=100.64.0.1', '--yes', '--tenant', 'acme']);
    const second = tailscaled(await analyze());
    assert.equal(second.count, 6);
    assert.equal(second.suggested_rule?.impact.would_suppress, 4, 'the suggestion no longer counts the suppressed calls');

    // 2. the same binary, ingested in another job calling a foreign domain: the view holds none of
    //    that evidence, the tenant's verdict does, so the binary is an impostor here too
    await cli(['ingest', tmp.file('impostor.ndjson', IMPOSTOR), '--learning-runs', '2', '--tenant', 'acme']);
    const third = tailscaled(await analyze());
    assert.equal(third.count, 6);
    assert.equal(third.vpn_evidence.binaries[0]?.verdict, 'impostor', JSON.stringify(third.vpn_evidence));
    assert.notEqual(third.suggested_rule?.blocked_reason ?? 'no rule', null, 'no rule is offered for an impostor');
  } finally {
    await store.close();
  }
});

test('the change counter moves with every write the cached answers read, per tenant only', async () => {
  const url = await (await server()).createDatabase('stamp_triggers');
  await cliResult(['db', 'migrate', '--db', url]);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql)).rows;
    await q("INSERT INTO tenants (name, created_at) VALUES ('a', 0), ('b', 0)");
    const [a, b] = (await q('SELECT tenant_id FROM tenants ORDER BY name')).map((r: { tenant_id: string }) => Number(r.tenant_id));
    const stamp = async (t: number) => Number((await q(`SELECT coalesce((SELECT stamp FROM analysis_stamps WHERE tenant_id = ${t}), 0) AS s`))[0].s);
    await q("INSERT INTO detection_types (name) VALUES ('T')");
    await q(`INSERT INTO jobs (tenant_id, owner, repo, workflow, job) VALUES (${a}, 'o', 'r', 'w', 'j'), (${b}, 'o', 'r', 'w', 'j')`);
    await q(`INSERT INTO endpoints (tenant_id, endpoint, host, port, is_ip) VALUES (${a}, 'h:1', 'h', 1, false)`);
    await q(`INSERT INTO processes (tenant_id, variant_key, name, norm_name, path, sha256, parent_chain) VALUES (${a}, 'k', 'p', 'p', null, null, '[]')`);
    const steps: [what: string, sql: string, bumps: 'a' | 'both' | 'none'][] = [
      ['rollup insert', `INSERT INTO detection_rollup SELECT ${a}, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0`, 'a'],
      ['rollup move', `UPDATE detection_rollup SET status = 1, rule_id = 7 WHERE tenant_id = ${a}`, 'a'],
      ['rollup delete', `DELETE FROM detection_rollup WHERE tenant_id = ${a}`, 'a'],
      ['impostor flag', `INSERT INTO suspected_impostors VALUES (${a}, 'p', 'k', null, null, 'test')`, 'a'],
      ['impostor unflag', `DELETE FROM suspected_impostors WHERE tenant_id = ${a}`, 'a'],
      ['rule insert', `INSERT INTO rules (tenant_id, rule_uid, detection_type, name, conditions, severity_action, created_by, created_on, updated_on) VALUES (${a}, 'u', 'T', 'n', '{}', '{}', 'x', 'x', 'x')`, 'a'],
      ['rule soft delete', `UPDATE rules SET deleted_on = 'x' WHERE tenant_id = ${a}`, 'a'],
      ['observation insert', `INSERT INTO observations VALUES (${a}, 1, 1, 1, false, null, 'tcp', 0)`, 'a'],
      ['observation delete', `DELETE FROM observations WHERE tenant_id = ${a}`, 'a'],
      ['endpoint appended', `INSERT INTO endpoints (tenant_id, endpoint, host, port, is_ip) VALUES (${a}, 'h:2', 'h', 2, false)`, 'none'],
      ['job run counters', `UPDATE jobs SET completed_runs = 3 WHERE tenant_id = ${a}`, 'none'],
      ['process rewritten', `UPDATE processes SET sha256 = 'x' WHERE tenant_id = ${a}`, 'both'],
      ['endpoint deleted', `DELETE FROM endpoints WHERE tenant_id = ${a} AND port = 2`, 'a'],
      ['type renamed', "UPDATE detection_types SET name = 'U'", 'both'],
      ['rollup truncated', 'TRUNCATE detection_rollup', 'both'],
    ];
    for (const [what, sql, bumps] of steps) {
      const before = [await stamp(a), await stamp(b)];
      await q(sql);
      const after = [await stamp(a), await stamp(b)];
      assert.deepEqual(
        [after[0]! > before[0]!, after[1]! > before[1]!],
        [bumps !== 'none', bumps === 'both'],
        `${what}: stamps ${before.join(',')} -> ${after.join(',')}`,
      );
    }
    // a rolled-back change leaves the stamp as it was
    const before = await stamp(a);
    await q('BEGIN');
    await q(`INSERT INTO suspected_impostors VALUES (${a}, 'p', 'k2', null, null, 'test')`);
    await q('ROLLBACK');
    assert.equal(await stamp(a), before);
  } finally {
    await c.end();
  }
});

test('a warm verdict follows a same-file link that only an observation shows (an ingest stopped before it recorded the link)', async () => {
  const url = await (await server()).createDatabase('stamp_links');
  const PATH = '/usr/local/bin/tailscaled';
  const hashed = { ...TS, path: PATH, sha256: 'f'.repeat(64) };
  const deleted = { ...TS, path: PATH, sha256: `open ${PATH}: no such file or directory` };
  // run 3: the hashed binary contradicts the daemon (flagged); run 4: the file's hash-less identity
  // calls like the daemon, in a run where the hash did not call (so not linked)
  const events = ndjson([
    ...learning('api'),
    ev('api', 3, 1, { domain: 'evil.example.com', port: 443 }, hashed),
    ...[1, 2].map((i) => ev('api', 4, i, { ip: `100.64.0.${i}`, port: 41641 }, deleted)),
  ]);
  const r = await cliResult(['ingest', tmp.file('links.ndjson', events), '--learning-runs', '2', '--tenant', 'acme', '--db', url]);
  assert.equal(r.status, 0, r.stderr);
  const store = PgStore.connect(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const warm = new RulesService(store);
    const analyzeWith = (rules: RulesService) => analyzeAnomalousCallsByProcess(store, { tenant: 'acme', status: 'all', minCount: 1, samples: 0 }, { rules });
    const verdicts = (r: AnalyzeResult) => tailscaled(r).vpn_evidence.binaries.map((b) => `${b.sha256 ?? `path:${b.path}`} ${b.verdict}`).sort();
    const before = await analyzeWith(warm);
    assert.deepEqual(verdicts(before), [`${'f'.repeat(64)} impostor`, `path:${PATH} genuine`], 'the hash-less identity is not linked yet');
    // the write of an ingest that then stopped: the hash-less identity in the run where the hash called
    const moved = await c.query(
      `INSERT INTO observations (tenant_id, run_ref, endpoint_id, process_id, blocked, ip_id, protocol, first_ts)
       SELECT o.tenant_id, r3.id, o.endpoint_id, o.process_id, o.blocked, o.ip_id, o.protocol, o.first_ts
       FROM observations o JOIN processes p ON p.tenant_id = o.tenant_id AND p.id = o.process_id
       JOIN runs r3 ON r3.tenant_id = o.tenant_id AND r3.run_id = '1003'
       WHERE p.sha256 IS NULL AND p.path = $1 LIMIT 1`,
      [PATH],
    );
    assert.equal(moved.rowCount, 1);
    const fresh = await analyzeWith(new RulesService(store));
    assert.deepEqual(verdicts(fresh), [`${'f'.repeat(64)} impostor`, `path:${PATH} impostor`], 'a fresh analysis links the file');
    assert.deepEqual(await analyzeWith(warm), fresh, 'the warm rules service does not answer from before the write');
  } finally {
    await c.end();
    await store.close();
  }
});
