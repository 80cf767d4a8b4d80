/**
 * The PostgreSQL side of the analysis bench: the SQLite store bulkLoad() built, copied row for row
 * (same ids) into a PostgreSQL database, so both backends hold exactly the same detections; the fine
 * rollup is then built on the server from the detections (a GROUP BY), and its statement triggers
 * fill the coarse rollups (migration 4) as an ingest would.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { migratePostgres } from '../src/storage/postgres/migrations.js';

const BATCH = 50_000;

interface Table {
  name: string;
  /** SELECT from SQLite, in PostgreSQL column order after tenant_id (when `tenant`) */
  select: string;
  cols: [name: string, type: string][];
  tenant: boolean;
}

const TABLES: Table[] = [
  { name: 'tenants', select: 'SELECT id, name, created_at FROM tenants ORDER BY id', cols: [['tenant_id', 'bigint'], ['name', 'text'], ['created_at', 'bigint']], tenant: false },
  { name: 'detection_types', select: 'SELECT id, name FROM detection_types ORDER BY id', cols: [['id', 'int'], ['name', 'text']], tenant: false },
  {
    name: 'processes', select: 'SELECT id, variant_key, name, norm_name, path, sha256, parent_chain FROM processes ORDER BY id', tenant: true,
    cols: [['id', 'bigint'], ['variant_key', 'text'], ['name', 'text'], ['norm_name', 'text'], ['path', 'text'], ['sha256', 'text'], ['parent_chain', 'text']],
  },
  {
    name: 'endpoints', select: 'SELECT id, endpoint, host, port, is_ip = 1 FROM endpoints ORDER BY id', tenant: true,
    cols: [['id', 'bigint'], ['endpoint', 'text'], ['host', 'text'], ['port', 'int'], ['is_ip', 'boolean']],
  },
  { name: 'ips', select: 'SELECT id, ip FROM ips ORDER BY id', tenant: true, cols: [['id', 'bigint'], ['ip', 'text']] },
  {
    name: 'jobs', select: 'SELECT id, owner, repo, workflow, job, completed_runs FROM jobs ORDER BY id', tenant: true,
    cols: [['id', 'bigint'], ['owner', 'text'], ['repo', 'text'], ['workflow', 'text'], ['job', 'text'], ['completed_runs', 'int']],
  },
  {
    name: 'runs', select: 'SELECT id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed = 1 FROM runs ORDER BY id', tenant: true,
    cols: [['id', 'bigint'], ['job_ref', 'bigint'], ['run_id', 'text'], ['run_attempt', 'int'], ['gh_job_id', 'text'], ['first_ts', 'bigint'], ['last_ts', 'bigint'], ['completed', 'boolean']],
  },
  {
    // staged, then split into detection groups and rows (PostgreSQL migration 5) by stageDetections
    name: 'detections_stage',
    select: `SELECT d.id, d.type_id, d.job_ref, d.run_ref, d.endpoint_id, d.ip_id, d.direct_ip = 1, d.port, d.protocol, d.process_id, d.ts,
               coalesce(s.status, 0), coalesce(s.rule_id, 0), d.ext FROM detections d LEFT JOIN detection_status s ON s.id = d.id ORDER BY d.id`,
    tenant: true,
    cols: [
      ['id', 'bigint'], ['type_id', 'int'], ['job_ref', 'bigint'], ['run_ref', 'bigint'], ['endpoint_id', 'bigint'], ['ip_id', 'bigint'], ['direct_ip', 'boolean'],
      ['port', 'int'], ['protocol', 'text'], ['process_id', 'bigint'], ['ts', 'bigint'], ['status', 'smallint'], ['rule_id', 'bigint'], ['ext', 'text'],
    ],
  },
];

/**
 * A detection's status lives in its group on PostgreSQL (src/storage/postgres/detection-groups.ts):
 * one group per key and state, and each stored row points to its group.
 */
async function splitStagedDetections(c: pg.PoolClient): Promise<void> {
  const key = 'tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id';
  await c.query(`INSERT INTO detection_groups (${key}, status, rule_id)
    SELECT DISTINCT ${key}, status, rule_id FROM detections_stage ORDER BY ${key}, status, rule_id`);
  const same = ['tenant_id', 'type_id', 'job_ref', 'process_id', 'endpoint_id', 'ip_id', 'status', 'rule_id'].map((x) => `g.${x} = s.${x}`).join(' AND ');
  await c.query(`INSERT INTO detection_rows (tenant_id, id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, ext, gid)
    SELECT s.tenant_id, s.id, s.type_id, s.job_ref, s.run_ref, s.endpoint_id, s.ip_id, s.direct_ip, s.port, s.protocol, s.process_id, s.ts, s.ext, g.id
    FROM detections_stage s JOIN detection_groups g ON ${same}`);
  await c.query(`SELECT setval(pg_get_serial_sequence('detection_rows', 'id'), coalesce((SELECT max(id) FROM detection_rows), 1))`);
  await c.query('DROP TABLE detections_stage');
}

/** Copies the bench store (one tenant) into an empty, migrated PostgreSQL database at `url`. */
export async function copyToPostgres(sqlitePath: string, url: string): Promise<{ ms: number; rollupRows: number }> {
  const t0 = performance.now();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    await migratePostgres(pool);
    const db = new Database(sqlitePath, { readonly: true });
    const tenantId = db.prepare('SELECT id FROM tenants').pluck().get() as number;
    try {
      const c = await pool.connect();
      try {
        await c.query(`CREATE TEMP TABLE detections_stage (tenant_id bigint, id bigint, type_id int, job_ref bigint, run_ref bigint, endpoint_id bigint,
          ip_id bigint, direct_ip boolean, port int, protocol text, process_id bigint, ts bigint, status smallint, rule_id bigint, ext text)`);
        for (const t of TABLES) {
          const cols = t.tenant ? [['tenant_id', 'bigint'] as [string, string], ...t.cols] : t.cols;
          const sql = `INSERT INTO ${t.name} (${cols.map((x) => x[0]).join(', ')}) SELECT * FROM unnest(${cols.map((x, i) => `$${i + 1}::${x[1]}[]`).join(', ')})`;
          let buf: unknown[][] = [];
          const flush = async () => {
            if (!buf.length) return;
            const arrays = cols.map((_, i) => (t.tenant ? (i === 0 ? buf.map(() => tenantId) : buf.map((r) => r[i - 1])) : buf.map((r) => r[i])));
            await c.query(sql, arrays);
            buf = [];
          };
          for (const row of db.prepare(t.select).raw().iterate() as Iterable<unknown[]>) {
            buf.push(row);
            if (buf.length === BATCH) await flush();
          }
          await flush();
          if (t.name === 'detections_stage') continue;
          // later ids continue after the copied ones
          const idCol = t.name === 'tenants' ? 'tenant_id' : 'id';
          await c.query(`SELECT setval(pg_get_serial_sequence('${t.name}', '${idCol}'), coalesce((SELECT max(${idCol}) FROM ${t.name}), 1))`);
        }
        await splitStagedDetections(c);
        await c.query(
          `INSERT INTO detection_rollup (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
           SELECT tenant_id, type_id, status, rule_id, floor(ts / 86400000.0)::int, job_ref, process_id, endpoint_id, ip_id, count(*), min(ts), max(ts)
           FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`,
        );
        await c.query('VACUUM ANALYZE');
        const rollupRows = Number((await c.query('SELECT count(*) AS n FROM detection_rollup')).rows[0].n);
        return { ms: Math.round(performance.now() - t0), rollupRows };
      } finally {
        c.release();
      }
    } finally {
      db.close();
    }
  } finally {
    await pool.end();
  }
}

