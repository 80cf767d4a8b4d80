import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from '../../helpers/postgres.js';
import { createPool, type PgPool } from '../../../src/storage/postgres/pool.js';
import { migratePostgres, PG_MIGRATIONS } from '../../../src/storage/postgres/migrations.js';
import { PgRulesRepo } from '../../../src/storage/postgres/rules-repo.js';
import { riskyDestinations } from '../../../src/analysis/risky-destinations.js';

/**
 * Migration 5 on a populated version-4 store: a detection's status and rule move from its row into
 * its group (detection-groups.ts). Every detection must keep its status and rule, the rollups must
 * not change, and the migrated store must then behave as one built by the current code: a rule move
 * on it keeps every rollup equal to a count of the detections.
 */

const server = usePostgres();
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 1);

/** A version-4 store with two tenants, several days, and keys holding detections in mixed states. */
async function seedV4(pool: PgPool): Promise<void> {
  await migratePostgres(pool, PG_MIGRATIONS.filter((m) => m.version <= 4));
  await pool.query(`
    INSERT INTO tenants (name, created_at) VALUES ('acme', 0), ('other', 0);
    INSERT INTO detection_types (name) VALUES ('New-Outbound-Network-Call'), ('Domain-Blocked');
    INSERT INTO jobs (tenant_id, owner, repo, workflow, job) VALUES (1, 'o', 'r1', 'ci.yml', 'build'), (1, 'o', 'r2', 'ci.yml', 'build'), (2, 'x', 'y', 'ci.yml', 'build');
    INSERT INTO runs (tenant_id, job_ref, run_id, run_attempt, first_ts, last_ts) VALUES (1, 1, '1', 1, 0, 0), (1, 2, '2', 1, 0, 0), (2, 3, '3', 1, 0, 0);
    INSERT INTO endpoints (tenant_id, endpoint, host, port, is_ip) VALUES (1, 'a.example:443', 'a.example', 443, false), (1, 'b.example:443', 'b.example', 443, false), (2, 'a.example:443', 'a.example', 443, false);
    INSERT INTO processes (tenant_id, variant_key, name, norm_name, parent_chain) VALUES (1, 'vpnd', 'vpnd', 'vpnd', '[]'), (1, 'curl', 'curl', 'curl', '[]'), (2, 'vpnd', 'vpnd', 'vpnd', '[]');
    INSERT INTO rules (tenant_id, rule_uid, detection_type, name, conditions, severity_action, created_by, created_on, updated_on, deleted_on) VALUES
      (1, 'r-live', 'New-Outbound-Network-Call', 'live', '{"process":"vpnd"}', '{"type":"ignore"}', 't', 'x', 'x', NULL),
      (1, 'r-gone', 'New-Outbound-Network-Call', 'gone', '{"process":"vpnd"}', '{"type":"ignore"}', 't', 'x', 'x', 'y'),
      (2, 'r-other', 'New-Outbound-Network-Call', 'other', '{"process":"vpnd"}', '{"type":"ignore"}', 't', 'x', 'x', NULL);
  `);
  // Per tenant 1 job/run, endpoint, process and day: detections in several states, so that one key
  // holds new ones, ones suppressed by the live rule and by the deleted rule, and resolved ones.
  const rows: string[] = [];
  let ext = 0;
  const states: [status: number, rule: number][] = [[0, 0], [1, 1], [1, 2], [2, 0], [0, 0], [1, 1]];
  for (const job of [1, 2]) {
    for (const endpoint of [1, 2]) {
      for (const processId of [1, 2]) {
        for (const day of [0, 1, 2]) {
          states.forEach(([status, rule], i) => {
            if ((job + endpoint + processId + day + i) % 4 === 0) return; // not every key holds every state
            const type = (endpoint + i) % 5 === 0 ? 2 : 1;
            rows.push(`(1, ${type}, ${job}, ${job}, ${endpoint}, 0, false, 443, 'tcp', ${processId}, ${T0 + day * DAY + i * 1000}, ${status}, ${rule}, 'e${ext++}')`);
          });
        }
      }
    }
  }
  for (const [status, rule] of [[0, 0], [1, 3], [1, 3]]) rows.push(`(2, 1, 3, 3, 3, 0, false, 443, 'tcp', 3, ${T0 + ext * 1000}, ${status}, ${rule}, 'e${ext++}')`);
  await pool.query(`INSERT INTO detections (tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, status, rule_id, ext) VALUES ${rows.join(',\n')}`);
  // the rollup as the version-4 writers keep it: exact counts of the detections (the coarse tables follow by trigger)
  await pool.query(`
    INSERT INTO detection_rollup (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
    SELECT tenant_id, type_id, status, rule_id, floor(ts / ${DAY}.0)::int, job_ref, process_id, endpoint_id, ip_id, count(*), min(ts), max(ts)
    FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`);
}

const ROLLUP_FROM_DETECTIONS = `
  SELECT tenant_id, type_id, status, rule_id, floor(ts / ${DAY}.0)::int AS day, job_ref, process_id, endpoint_id, ip_id, count(*)::bigint AS n, min(ts) AS first_ts, max(ts) AS last_ts
  FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9`;
const ROLLUP = 'SELECT * FROM detection_rollup ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9';
const COARSE = ['rollup_process_day', 'rollup_process_endpoint', 'rollup_process_job'];
const coarseFromRollup = (table: string, col: string) =>
  `SELECT tenant_id, type_id, status, rule_id, process_id, ${col}, sum(n)::bigint AS n FROM detection_rollup GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6`;
const coarseRows = (table: string, col: string) => `SELECT tenant_id, type_id, status, rule_id, process_id, ${col}, n FROM ${table} ORDER BY 1, 2, 3, 4, 5, 6`;
const COARSE_COL: Record<string, string> = { rollup_process_day: 'day', rollup_process_endpoint: 'endpoint_id', rollup_process_job: 'job_ref' };

async function rows(pool: PgPool, sql: string): Promise<unknown[]> {
  return (await pool.query(sql)).rows;
}

/** Every rollup equals a count of the detections, as the store's writers promise. */
async function assertRollupsExact(pool: PgPool): Promise<void> {
  assert.deepEqual(await rows(pool, ROLLUP), await rows(pool, ROLLUP_FROM_DETECTIONS), 'detection_rollup counts the detections');
  for (const t of COARSE) assert.deepEqual(await rows(pool, coarseRows(t, COARSE_COL[t]!)), await rows(pool, coarseFromRollup(t, COARSE_COL[t]!)), `${t} sums detection_rollup`);
}

test('migration 5 keeps every detection status and rule, and the rollups, of a populated version-4 store', async () => {
  const pool = createPool(await (await server()).createDatabase('mig5'));
  try {
    await seedV4(pool);
    const statuses = 'SELECT tenant_id, id, status, rule_id FROM detections ORDER BY tenant_id, id';
    const before = { statuses: await rows(pool, statuses), rollup: await rows(pool, ROLLUP), coarse: await Promise.all(COARSE.map((t) => rows(pool, coarseRows(t, COARSE_COL[t]!)))) };
    assert.ok(before.statuses.length > 100);
    await assertRollupsExact(pool);

    assert.deepEqual(await migratePostgres(pool), PG_MIGRATIONS.filter((m) => m.version > 4).map((m) => m.version));
    assert.deepEqual(await rows(pool, statuses), before.statuses, 'each detection keeps its status and rule');
    assert.deepEqual(await rows(pool, ROLLUP), before.rollup);
    assert.deepEqual(await Promise.all(COARSE.map((t) => rows(pool, coarseRows(t, COARSE_COL[t]!)))), before.coarse);
    // each detection's group is of its own key; one group per (key, state) the store held
    const foreign = await rows(
      pool,
      `SELECT d.id FROM detection_rows d JOIN detection_groups g ON g.tenant_id = d.tenant_id AND g.id = d.gid
       WHERE (g.type_id, g.job_ref, g.process_id, g.endpoint_id, g.ip_id) <> (d.type_id, d.job_ref, d.process_id, d.endpoint_id, d.ip_id)`,
    );
    assert.deepEqual(foreign, []);
    const keysAndStates = 'SELECT DISTINCT tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id, status, rule_id FROM detection_rollup';
    assert.equal(Number((await pool.query('SELECT count(*) AS n FROM detection_groups')).rows[0].n), (await rows(pool, keysAndStates)).length);
    await assertRollupsExact(pool);

    // the migrated store under the current code: restore the live rule, then suppress again with a new one
    const repo = new PgRulesRepo(pool, riskyDestinations());
    const suppressedBy1 = before.statuses.filter((s) => (s as { rule_id: number }).rule_id === 1).length;
    const restored = await repo.write((tx) => tx.move(1, { kind: 'all' }, { status: 1, rule: 1 }, { status: 0, rule: 0 }));
    assert.equal(restored, suppressedBy1);
    await assertRollupsExact(pool);
    const newOfVpnd = Number((await pool.query('SELECT count(*) AS n FROM detections WHERE tenant_id = 1 AND process_id = 1 AND type_id = 1 AND status = 0')).rows[0].n);
    const moved = await repo.write((tx) => tx.move(1, { kind: 'all' }, { status: 0, rule: 0 }, { status: 1, rule: 9 }));
    assert.equal(Number((await pool.query('SELECT count(*) AS n FROM detections WHERE tenant_id = 1 AND rule_id = 9')).rows[0].n), moved);
    assert.ok(moved >= newOfVpnd && moved > 0);
    assert.equal(Number((await pool.query('SELECT count(*) AS n FROM detections WHERE tenant_id = 1 AND status = 0')).rows[0].n), 0);
    await assertRollupsExact(pool);
    // the deleted rule's and the other tenant's detections did not move
    const untouched = (await rows(pool, 'SELECT tenant_id, id, status, rule_id FROM detections WHERE rule_id IN (2, 3) OR status = 2 ORDER BY tenant_id, id')) as { tenant_id: number; rule_id: number; status: number }[];
    assert.deepEqual(
      untouched,
      (before.statuses as typeof untouched).filter((s) => s.rule_id === 2 || s.rule_id === 3 || s.status === 2),
    );
  } finally {
    await pool.end();
  }
});
