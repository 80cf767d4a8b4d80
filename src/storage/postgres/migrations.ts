import { refuseDamagedStore, refuseMigrationOnLostTable, refuseNewerSchema } from '../schema-version.js';
import type { PgClient, PgPool } from './pool.js';
import { COARSE_ROLLUPS_MIGRATION } from './analysis-rollups.js';
import { LONG_KEYS_MIGRATION } from './long-keys-migration.js';
import { DETECTION_GROUPS_MIGRATION } from './detection-groups.js';
import { ANALYSIS_STAMPS_MIGRATION, OBSERVATION_STAMPS_MIGRATION } from './analysis-stamps.js';
import { valueKey } from './dictionaries.js';
import { asciiLower } from './ascii-nocase.js';
import { UNRECORDED_ACTOR } from '../rules-port.js';
import { normalizeProcessName } from '../../domain/process-name.js';

/**
 * A versioned schema change, applied once, in its own transaction: SQL, or a function given the
 * migrating client inside that transaction (for what only this program's code can compute).
 */
export interface PgMigration {
  version: number;
  name: string;
  up: string | ((c: PgClient) => Promise<void>);
}

/** JavaScript's white space and line terminators (what String.prototype.trim removes), as a regex class. */
const JS_SPACE = '[\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]';

/**
 * The PostgreSQL schema. It holds the same facts as the SQLite store (the SQLite backend's
 * core-migrations.ts, versions 1-6 as of this writing), laid out to be distributed by tenant:
 *
 * - tenant_id leads every primary key, unique key and foreign key of every table that holds a
 *   tenant's facts, so Citus can shard them all by tenant_id and co-locate them: every join and
 *   every write transaction stays on one shard. No query joins across tenants.
 * - Unlike SQLite, the value dictionaries (endpoints, ips, processes) are per tenant: they are
 *   written on the ingest hot path, which a replicated reference table would turn into a write on
 *   every node, and a tenant's ids then say nothing about another tenant's data.
 * - tenants, detection_types and meta are small, rarely written and read by every tenant: they are
 *   reference tables (docs/scale-out.md lists the Citus statements).
 * - Ids come from sequences (bigint); epoch-ms times are bigint; flags are boolean.
 * - SQLite's coarse rollups (its migration 2) are migration 4 here (analysis-rollups.ts), kept in
 *   step with detection_rollup by statement triggers.
 * - Migration 5 moves a detection's status and rule out of its row into its group
 *   (detection-groups.ts): `detections` is then a view over detection_rows and detection_groups.
 */
export const PG_MIGRATIONS: PgMigration[] = [
  {
    version: 1,
    name: 'core schema, keyed by tenant',
    up: `
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta (key, value) VALUES ('rules_version', '0');
CREATE TABLE tenants (
  tenant_id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  created_at bigint NOT NULL,
  -- bumped by writes to job or baseline state outside the ingest lease (store.ts contract)
  job_state_version bigint NOT NULL DEFAULT 0
);
CREATE TABLE detection_types (id serial PRIMARY KEY, name text NOT NULL UNIQUE);

CREATE TABLE jobs (
  tenant_id bigint NOT NULL REFERENCES tenants (tenant_id),
  id bigserial NOT NULL,
  owner text NOT NULL,
  repo text NOT NULL,
  workflow text NOT NULL,
  job text NOT NULL,
  completed_runs integer NOT NULL DEFAULT 0,
  open_run bigint,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, owner, repo, workflow, job)
);
-- owner and repo compare case-insensitively (GitHub names do)
CREATE INDEX jobs_by_name_nocase ON jobs (tenant_id, lower(owner), lower(repo));

-- one row per leg of a job run: matrix legs share job, run id and attempt, not the GitHub job id
CREATE TABLE runs (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  job_ref bigint NOT NULL,
  run_id text NOT NULL,
  run_attempt integer NOT NULL,
  gh_job_id text,
  first_ts bigint NOT NULL,
  last_ts bigint NOT NULL,
  completed boolean NOT NULL DEFAULT false,
  learning boolean NOT NULL DEFAULT false,
  expected_sample text NOT NULL DEFAULT '[]',
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, job_ref) REFERENCES jobs (tenant_id, id)
);
CREATE UNIQUE INDEX runs_by_leg ON runs (tenant_id, job_ref, run_id, run_attempt, coalesce(gh_job_id, ''));
CREATE INDEX runs_by_time ON runs (tenant_id, job_ref, first_ts);
CREATE INDEX runs_by_run_id ON runs (tenant_id, run_id);

CREATE TABLE endpoints (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  endpoint text NOT NULL,
  host text NOT NULL,
  port integer,
  is_ip boolean NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, endpoint)
);
CREATE INDEX endpoints_by_host ON endpoints (tenant_id, host, port);
CREATE TABLE ips (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  ip text NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, ip)
);
CREATE TABLE processes (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  variant_key text NOT NULL,
  name text NOT NULL,
  norm_name text NOT NULL,
  path text,
  sha256 text,
  parent_chain text NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, variant_key)
);
CREATE INDEX processes_by_norm ON processes (tenant_id, norm_name);

CREATE TABLE observations (
  tenant_id bigint NOT NULL,
  run_ref bigint NOT NULL,
  endpoint_id bigint NOT NULL,
  process_id bigint NOT NULL,
  blocked boolean NOT NULL,
  ip_id bigint,
  protocol text,
  first_ts bigint NOT NULL,
  PRIMARY KEY (tenant_id, run_ref, endpoint_id, process_id, blocked)
);
CREATE INDEX observations_by_endpoint ON observations (tenant_id, endpoint_id);
CREATE TABLE call_verdicts (
  tenant_id bigint NOT NULL,
  run_ref bigint NOT NULL,
  endpoint_id bigint NOT NULL,
  process_id bigint NOT NULL,
  blocked boolean NOT NULL,
  matched_policy text,
  reason text,
  PRIMARY KEY (tenant_id, run_ref, endpoint_id, process_id, blocked)
);
CREATE TABLE baseline (
  tenant_id bigint NOT NULL,
  job_ref bigint NOT NULL,
  endpoint_id bigint NOT NULL,
  runs_seen integer NOT NULL,
  first_ts bigint NOT NULL,
  last_ts bigint NOT NULL,
  in_baseline boolean NOT NULL,
  source text NOT NULL,
  PRIMARY KEY (tenant_id, job_ref, endpoint_id),
  FOREIGN KEY (tenant_id, job_ref) REFERENCES jobs (tenant_id, id)
);

CREATE TABLE detections (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  type_id integer NOT NULL,
  job_ref bigint NOT NULL,
  run_ref bigint NOT NULL,
  endpoint_id bigint NOT NULL,
  ip_id bigint NOT NULL DEFAULT 0,
  direct_ip boolean NOT NULL,
  port integer,
  protocol text,
  process_id bigint NOT NULL,
  ts bigint NOT NULL,
  status smallint NOT NULL,
  rule_id bigint NOT NULL DEFAULT 0,
  ext text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, run_ref, type_id, endpoint_id, process_id, ext)
);
CREATE INDEX detections_by_time ON detections (tenant_id, ts DESC, id DESC);
CREATE INDEX detections_by_process ON detections (tenant_id, process_id, ts);
CREATE INDEX detections_by_endpoint ON detections (tenant_id, endpoint_id);
CREATE INDEX detections_by_rule ON detections (tenant_id, rule_id) WHERE rule_id <> 0;
-- kept in step with detections by the writers; its key holds every dimension a rule can test
CREATE TABLE detection_rollup (
  tenant_id bigint NOT NULL,
  type_id integer NOT NULL,
  status smallint NOT NULL,
  rule_id bigint NOT NULL,
  day integer NOT NULL,
  job_ref bigint NOT NULL,
  process_id bigint NOT NULL,
  endpoint_id bigint NOT NULL,
  ip_id bigint NOT NULL,
  n bigint NOT NULL,
  first_ts bigint NOT NULL,
  last_ts bigint NOT NULL,
  PRIMARY KEY (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id)
);

CREATE TABLE rules (
  tenant_id bigint NOT NULL REFERENCES tenants (tenant_id),
  id bigserial NOT NULL,
  rule_uid text NOT NULL,
  detection_type text NOT NULL,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  conditions text NOT NULL,
  severity_action text NOT NULL,
  created_by text NOT NULL,
  created_on text NOT NULL,
  updated_on text NOT NULL,
  deleted_on text,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, rule_uid)
);
CREATE INDEX rules_by_tenant ON rules (tenant_id, deleted_on);
CREATE TABLE rule_audit (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  rule_uid text NOT NULL,
  action text NOT NULL,
  actor text NOT NULL,
  at text NOT NULL,
  before_json text,
  after_json text,
  affected bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, id)
);
CREATE TABLE ingest_sources (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  source text NOT NULL,
  format text NOT NULL,
  started_at text NOT NULL,
  finished_at text,
  lines_read bigint NOT NULL DEFAULT 0,
  accepted bigint NOT NULL DEFAULT 0,
  rejected bigint NOT NULL DEFAULT 0,
  detections bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, id)
);
CREATE TABLE suspected_impostors (
  tenant_id bigint NOT NULL,
  process text NOT NULL,
  "binary" text NOT NULL, -- quoted: a reserved word in PostgreSQL
  sha256 text,
  path text,
  reason text NOT NULL,
  PRIMARY KEY (tenant_id, process, "binary")
);

-- the per-tenant ingest lease (contract in src/storage/store.ts); a row is the current lease
CREATE TABLE ingest_leases (
  tenant_id bigint PRIMARY KEY REFERENCES tenants (tenant_id),
  token text NOT NULL,
  source text NOT NULL,
  pid integer NOT NULL,
  host text NOT NULL,
  since bigint NOT NULL,
  expires_at bigint NOT NULL,
  -- set on every lease of a holder (host, pid) while it waits for another tenant: deadlock detection
  waiting_for bigint
);
CREATE INDEX ingest_leases_by_holder ON ingest_leases (host, pid);

-- An ingest caches job state only while it holds the lease; 'baseline expect' / 'unexpect' write
-- baseline outside it, so they bump the tenant's job_state_version, whichever code path writes.
CREATE FUNCTION bump_job_state_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'INSERT' AND NEW.source = 'expected')
     OR (TG_OP = 'UPDATE' AND NEW.source = 'expected' AND (OLD.source <> 'expected' OR OLD.in_baseline <> NEW.in_baseline))
     OR (TG_OP = 'UPDATE' AND OLD.source = 'expected' AND NEW.source <> 'expected') THEN
    UPDATE tenants SET job_state_version = job_state_version + 1 WHERE tenant_id = NEW.tenant_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER baseline_expected AFTER INSERT OR UPDATE ON baseline FOR EACH ROW EXECUTE FUNCTION bump_job_state_version();
`,
  },
  {
    version: 2,
    name: 'baseline entries by endpoint, for IOC lookups',
    // the inventory asks "which jobs' baselines hold these endpoints?"; the primary key leads with job_ref
    up: 'CREATE INDEX baseline_by_endpoint ON baseline (tenant_id, endpoint_id);',
  },
  {
    version: 3,
    // Gateway-wide, not per tenant: a policy governs tool calls, whichever tenant they read. The keys
    // are therefore tenant-independent, and the tables stay on the Citus coordinator (distribution.ts).
    name: 'policy state: approvals, audit, argument-hash key',
    up: `
CREATE TABLE policy_meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE policy_approvals (
  id text PRIMARY KEY,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  status text NOT NULL CHECK (status IN ('pending','approved','denied','expired','consumed')),
  session text NOT NULL,
  identity text NOT NULL,
  tool text NOT NULL,
  args_hash text NOT NULL,
  args_preview text NOT NULL,
  rule text NOT NULL,
  decided_at bigint,
  decided_by text,
  reason text
);
CREATE INDEX policy_approvals_binding ON policy_approvals (session, tool, args_hash, status);
CREATE INDEX policy_approvals_status ON policy_approvals (status, expires_at);
CREATE TABLE policy_audit (
  seq bigserial PRIMARY KEY,
  ts text NOT NULL,
  session text NOT NULL,
  identity text NOT NULL,
  tool text NOT NULL,
  args_hash text NOT NULL,
  args text,
  decision text NOT NULL,
  rule text NOT NULL,
  reason text,
  latency_ms double precision NOT NULL,
  upstream text NOT NULL,
  policy_hash text,
  approval_id text
);
CREATE INDEX policy_audit_ts ON policy_audit (ts);
CREATE INDEX policy_audit_tool ON policy_audit (tool, ts);
`,
  },
  {
    version: 4,
    name: 'coarse analysis rollups (per process variant: by day, endpoint, job), kept by triggers',
    up: COARSE_ROLLUPS_MIGRATION,
  },
  {
    version: 5,
    name: 'detection status in groups of a key and state (a rule moves groups, not detections)',
    up: DETECTION_GROUPS_MIGRATION,
  },
  {
    version: 6,
    name: 'unique keys on values of any length: by the SHA-256 of the value',
    up: LONG_KEYS_MIGRATION,
  },
  {
    version: 7,
    name: 'a change counter per tenant (analysis_stamps), bumped by triggers: the rules port commit stamp',
    up: ANALYSIS_STAMPS_MIGRATION,
  },
  {
    version: 8,
    name: 'policy audit: the registered upstream each call was for (multi-upstream gateway)',
    up: 'ALTER TABLE policy_audit ADD COLUMN upstream_name text;',
  },
  {
    version: 9,
    name: 'policy state: live 2026-07-28 session handles per identity',
    up: `
CREATE TABLE policy_session_handles (
  identity text NOT NULL,
  handle text NOT NULL,
  last_used bigint NOT NULL,
  PRIMARY KEY (identity, handle)
);
CREATE INDEX policy_session_handles_last_used ON policy_session_handles (last_used);
`,
  },
  {
    version: 10,
    name: 'policy approvals: the registered upstream each held call is for (multi-upstream gateway)',
    up: 'ALTER TABLE policy_approvals ADD COLUMN upstream_name text;',
  },
  {
    version: 11,
    // The dashboard's Detections page drives a filtered page by the few job, endpoint or process ids
    // a filter names, one range per id in (ts, id) order (storage/detection-window.ts); a sha256
    // filter finds its process ids by index. detections_by_endpoint stays (other readers use it).
    name: 'detections by job and by endpoint in time order, processes by sha256 (dashboard paging)',
    up: `
CREATE INDEX detections_by_job_time ON detection_rows (tenant_id, job_ref, ts DESC, id DESC);
CREATE INDEX detections_by_endpoint_time ON detection_rows (tenant_id, endpoint_id, ts DESC, id DESC);
CREATE INDEX processes_by_sha256 ON processes (tenant_id, lower(sha256));
`,
  },
  {
    version: 12,
    // A policy_change record (the policy in force was replaced: from the dashboard, or a file reload)
    // carries the hash it replaced besides the new one (policy_hash).
    name: 'policy audit: the previous policy hash of a policy change',
    up: 'ALTER TABLE policy_audit ADD COLUMN previous_policy_hash text;',
  },
  {
    version: 13,
    // As SQLite's core migration 9: a run's expected endpoints (its job's baseline when it started)
    // are mostly shared by consecutive runs, so each sample is stored once per tenant and a run names
    // it by id (NULL: none, as for a learning run). Unique by the SHA-256 of the text, as the other
    // dictionaries of any length (valueKey in dictionaries.ts).
    name: 'expected endpoint samples stored once per tenant, runs name theirs by id',
    up: `
CREATE TABLE expected_samples (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  sample text NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX expected_samples_by_value ON expected_samples (tenant_id, (${valueKey('sample')}));
INSERT INTO expected_samples (tenant_id, sample)
  SELECT tenant_id, expected_sample FROM runs WHERE expected_sample <> '[]'
  GROUP BY tenant_id, expected_sample ORDER BY min(id);
ALTER TABLE runs ADD COLUMN expected_id bigint;
UPDATE runs r SET expected_id = es.id FROM expected_samples es
  WHERE es.tenant_id = r.tenant_id AND ${valueKey('es.sample')} = ${valueKey('r.expected_sample')} AND es.sample = r.expected_sample;
ALTER TABLE runs ADD FOREIGN KEY (tenant_id, expected_id) REFERENCES expected_samples (tenant_id, id);
ALTER TABLE runs DROP COLUMN expected_sample;
`,
  },
  {
    version: 14,
    name: "observations bump their tenant's change counter (a same-file link is read from them)",
    up: OBSERVATION_STAMPS_MIGRATION,
  },
  {
    version: 15,
    name: 'jobs are found by owner and repo without ASCII case only, whatever the database locale',
    // lower() on a UTF-8 locale folds other letters too: the index follows the queries (ascii-nocase.ts)
    up: `DROP INDEX jobs_by_name_nocase;
CREATE INDEX jobs_by_name_nocase ON jobs (tenant_id, ${asciiLower('owner')}, ${asciiLower('repo')});`,
  },
  {
    version: 16,
    // store-wide, as a config is: a command run where that config is not found still never silences them
    name: 'risky destinations remembered by the store (rules/risky-memory.ts)',
    up: `CREATE TABLE risky_destinations (
  entry text PRIMARY KEY,
  added_at timestamptz NOT NULL
);`,
  },
  {
    version: 17,
    // a configured risky range covers named calls: the analysis and the impostor verdict find the
    // detections that reached one by their recorded address, not by a scan of the tenant
    name: 'detections found by the address they reached',
    up: 'CREATE INDEX detections_by_ip ON detection_rows (tenant_id, ip_id);',
  },
  {
    version: 18,
    // As SQLite's policy migration 105: the tenant whose server held the call (ApprovalRow.tenant);
    // NULL on rows filed before, and on a stand-alone gateway's.
    name: 'policy approvals: the tenant whose server held each call',
    up: 'ALTER TABLE policy_approvals ADD COLUMN tenant text;',
  },
  {
    version: 19,
    // As SQLite's migration 12: who changed the store-wide risky list, and when; entries remembered
    // before get their row with the time they were remembered and no actor.
    name: 'risky-list audit (store-wide)',
    up: `CREATE TABLE risky_audit (
  id bigserial PRIMARY KEY,
  entry text NOT NULL,
  action text NOT NULL CHECK (action IN ('remember', 'forget')),
  actor text NOT NULL,
  at text NOT NULL
);
INSERT INTO risky_audit (entry, action, actor, at)
  SELECT entry, 'remember', '${UNRECORDED_ACTOR}', to_char(added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  FROM risky_destinations ORDER BY added_at, entry COLLATE "C";`,
  },
  {
    version: 20,
    // As SQLite's policy migration 106: the tenant whose server made each decision (AuditRecord.tenant);
    // NULL on rows written before, and on a stand-alone gateway's.
    name: 'policy audit: the tenant whose server made each decision',
    up: `ALTER TABLE policy_audit ADD COLUMN tenant text;
CREATE INDEX policy_audit_tenant ON policy_audit (tenant, seq);`,
  },
  {
    version: 21,
    // As SQLite's migration 13: normalizeProcessName now runs to a fixed point. A stored name is one
    // pass of it, so what a second pass would take is left: leading white space, then every trailing
    // run of white space and ".exe" (a stored name is a lower-case base name already). White space is
    // JavaScript's trim() set, written out for the regular expression.
    name: 'process names normalised to a fixed point ("tailscaled.exe.exe" is tailscaled)',
    up: `UPDATE processes SET norm_name = coalesce(nullif(regexp_replace(regexp_replace(norm_name, '^${JS_SPACE}+', ''), '(${JS_SPACE}|\\.exe)+$', ''), ''), 'unknown')
WHERE norm_name ~ '^${JS_SPACE}|(${JS_SPACE}|\\.exe)$';`,
  },
  {
    version: 22,
    // As SQLite's core migration 15: normalizeProcessName now also strips characters drawn blank,
    // private-use and unassigned code points and lone surrogates, and folds again after it strips.
    // No SQL can say which code points those are (Unicode properties), so the names are normalised
    // by the function itself; only names with a character outside printable ASCII can change.
    name: 'process names without characters drawn blank, private-use or unassigned ("tailscaled\\u2800" is tailscaled)',
    up: async (c) => {
      const rows = (await c.query<{ tenant_id: string; id: string; norm_name: string }>("SELECT tenant_id, id, norm_name FROM processes WHERE norm_name ~ '[^ -~]'")).rows;
      for (const p of rows) {
        const name = normalizeProcessName(p.norm_name);
        if (name !== p.norm_name) await c.query('UPDATE processes SET norm_name = $1 WHERE tenant_id = $2 AND id = $3', [name, p.tenant_id, p.id]);
      }
      // a flag is found by the binary's name (a hash-less binary by nothing else): under the old name
      // it would no longer meet the binary it flags
      const flags = (await c.query<{ tenant_id: string; process: string; binary: string }>(`SELECT tenant_id, process, "binary" FROM suspected_impostors WHERE process ~ '[^ -~]'`)).rows;
      for (const f of flags) {
        const name = normalizeProcessName(f.process);
        if (name === f.process) continue;
        await c.query(
          `INSERT INTO suspected_impostors (tenant_id, process, "binary", sha256, path, reason)
           SELECT tenant_id, $1, "binary", sha256, path, reason FROM suspected_impostors WHERE tenant_id = $2 AND process = $3 AND "binary" = $4
           ON CONFLICT DO NOTHING`,
          [name, f.tenant_id, f.process, f.binary],
        );
        await c.query('DELETE FROM suspected_impostors WHERE tenant_id = $1 AND process = $2 AND "binary" = $3', [f.tenant_id, f.process, f.binary]);
      }
    },
  },
];

/**
 * Every table and view PG_MIGRATIONS leave once all are applied: what an open store must have
 * (refuseDamagedStore). test/storage/damaged-store.test.ts keeps it equal to what they make.
 */
export const PG_TABLES: readonly string[] = [
  'analysis_stamps', 'baseline', 'call_verdicts', 'detection_groups', 'detection_rollup', 'detection_rows', 'detection_types',
  'detections', 'endpoints', 'expected_samples', 'ingest_leases', 'ingest_sources', 'ips', 'jobs', 'meta', 'observations',
  'policy_approvals', 'policy_audit', 'policy_meta', 'policy_session_handles', 'processes', 'risky_audit', 'risky_destinations',
  'rollup_process_day', 'rollup_process_endpoint', 'rollup_process_job', 'rule_audit', 'rules', 'runs', 'suspected_impostors',
  'tenants',
];

/**
 * The tables and views a query names without a schema would find: resolved through the whole
 * search_path, as the store's queries resolve them. Read from pg_class, not information_schema,
 * which hides what the role has no privilege on: a reader without grants on the policy tables
 * would see a damaged store where it only has a narrow one.
 */
export async function tableNames(pool: PgPool): Promise<string[]> {
  const r = await pool.query<{ name: string }>(
    "SELECT relname AS name FROM pg_class WHERE relkind IN ('r', 'p', 'v', 'm') AND pg_table_is_visible(oid) AND relnamespace <> 'pg_catalog'::regnamespace",
  );
  return r.rows.map((x) => x.name);
}

/** Refuses a fully migrated store that lacks one of PG_TABLES (schema-version.ts refuseDamagedStore). */
export async function refuseDamagedPgStore(pool: PgPool): Promise<void> {
  refuseDamagedStore(await tableNames(pool), PG_TABLES);
}

/** Any fixed number: every egress-triage migrator on one database takes the same advisory lock. */
const MIGRATION_LOCK = 0x65677472; // "egtr"

export interface PgSchemaStatus {
  applied: { version: number; name: string; appliedAt: string }[];
  pending: { version: number; name: string }[];
  /** versions recorded in the database that this build does not know: a newer build migrated it */
  unknown: number[];
}

async function hasMigrationsTable(c: PgClient | PgPool): Promise<boolean> {
  const r = await c.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  return r.rows[0]?.t != null;
}

export async function schemaStatus(pool: PgPool, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<PgSchemaStatus> {
  const rows = (await hasMigrationsTable(pool))
    ? (await pool.query<{ version: number; name: string; applied_at: Date }>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).rows
    : [];
  const done = new Set(rows.map((r) => r.version));
  const known = new Set(migrations.map((m) => m.version));
  return {
    applied: rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at.toISOString() })),
    pending: [...migrations].sort((a, b) => a.version - b.version).filter((m) => !done.has(m.version)).map((m) => ({ version: m.version, name: m.name })),
    unknown: rows.map((r) => r.version).filter((v) => !known.has(v)),
  };
}

/**
 * Applies pending migrations in version order, each in its own transaction together with its
 * schema_migrations row. A session advisory lock serialises migrators: a second process starting
 * at the same time waits, then finds nothing left to do. Returns the versions it applied.
 */
export async function migratePostgres(pool: PgPool, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  const c = await pool.connect();
  const applied: number[] = [];
  let broken: Error | undefined;
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      refuseNewerSchema([...done], migrations.map((m) => m.version));
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          if (typeof m.up === 'string') await c.query(m.up);
          else await m.up(c);
          await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          const lost = /^relation "([^"]+)" does not exist$/.exec((err as Error).message)?.[1];
          refuseMigrationOnLostTable(m, lost, PG_TABLES);
          throw new Error(`PostgreSQL migration ${m.version} (${m.name}) failed and was rolled back: ${(err as Error).message}`);
        }
        applied.push(m.version);
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    c.release(broken);
  }
  return applied;
}
