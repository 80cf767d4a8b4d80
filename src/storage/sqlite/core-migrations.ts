import type { Migration, SqliteDatabase } from './db.js';
import { UNRECORDED_ACTOR } from '../rules-port.js';
import { normalizeProcessName } from '../../domain/process-name.js';

/**
 * Core schema. Value dictionaries (endpoints, ips, processes, detection types) are shared by all
 * tenants because they hold no tenant data; every table holding facts carries a tenant, directly
 * or through its job, and every query filters on it.
 *
 * detection_rollup is kept in step with `detections` by the repositories (insert and status moves).
 * Its key contains every dimension a suppression condition can test, so a rule always matches a
 * whole rollup row or none of it: that keeps analysis and rule impact exact without rescanning rows.
 */
export const CORE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'core schema',
    up: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tenants (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  owner TEXT NOT NULL,
  repo TEXT NOT NULL,
  workflow TEXT NOT NULL,
  job TEXT NOT NULL,
  completed_runs INTEGER NOT NULL DEFAULT 0,
  open_run INTEGER,
  UNIQUE (tenant_id, owner, repo, workflow, job)
);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  job_ref INTEGER NOT NULL REFERENCES jobs(id),
  run_id TEXT NOT NULL,
  run_attempt INTEGER NOT NULL,
  gh_job_id TEXT,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0,
  learning INTEGER NOT NULL DEFAULT 0,
  expected_sample TEXT NOT NULL DEFAULT '[]',
  UNIQUE (job_ref, run_id, run_attempt)
);
CREATE INDEX runs_by_time ON runs (job_ref, first_ts);
CREATE TABLE endpoints (
  id INTEGER PRIMARY KEY,
  endpoint TEXT NOT NULL UNIQUE,
  host TEXT NOT NULL,
  port INTEGER,
  is_ip INTEGER NOT NULL
);
CREATE TABLE ips (id INTEGER PRIMARY KEY, ip TEXT NOT NULL UNIQUE);
CREATE TABLE processes (
  id INTEGER PRIMARY KEY,
  variant_key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  norm_name TEXT NOT NULL,
  path TEXT,
  sha256 TEXT,
  parent_chain TEXT NOT NULL
);
CREATE INDEX processes_by_norm ON processes (norm_name);
CREATE TABLE detection_types (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE observations (
  run_ref INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  process_id INTEGER NOT NULL,
  blocked INTEGER NOT NULL,
  ip_id INTEGER,
  protocol TEXT,
  first_ts INTEGER NOT NULL,
  PRIMARY KEY (run_ref, endpoint_id, process_id, blocked)
) WITHOUT ROWID;
CREATE INDEX observations_by_endpoint ON observations (endpoint_id);
CREATE TABLE baseline (
  job_ref INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  runs_seen INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  in_baseline INTEGER NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (job_ref, endpoint_id)
) WITHOUT ROWID;
CREATE TABLE detections (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  job_ref INTEGER NOT NULL,
  run_ref INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  ip_id INTEGER NOT NULL DEFAULT 0,
  direct_ip INTEGER NOT NULL,
  port INTEGER,
  protocol TEXT,
  process_id INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  status INTEGER NOT NULL,
  rule_id INTEGER NOT NULL DEFAULT 0,
  ext TEXT NOT NULL DEFAULT '',
  UNIQUE (run_ref, type_id, endpoint_id, process_id, ext)
);
CREATE INDEX detections_by_time ON detections (tenant_id, ts);
CREATE INDEX detections_by_process ON detections (tenant_id, process_id, ts);
CREATE INDEX detections_by_endpoint ON detections (tenant_id, endpoint_id);
CREATE INDEX detections_by_rule ON detections (rule_id) WHERE rule_id <> 0;
CREATE TABLE detection_rollup (
  tenant_id INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  status INTEGER NOT NULL,
  rule_id INTEGER NOT NULL,
  day INTEGER NOT NULL,
  job_ref INTEGER NOT NULL,
  process_id INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  ip_id INTEGER NOT NULL,
  n INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id)
) WITHOUT ROWID;
CREATE TABLE rules (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL REFERENCES tenants(id),
  rule_uid TEXT NOT NULL UNIQUE,
  detection_type TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  conditions TEXT NOT NULL,
  severity_action TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_on TEXT NOT NULL,
  updated_on TEXT NOT NULL,
  deleted_on TEXT
);
CREATE INDEX rules_by_tenant ON rules (tenant_id, deleted_on);
CREATE TABLE rule_audit (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  rule_uid TEXT NOT NULL,
  action TEXT NOT NULL,
  actor TEXT NOT NULL,
  at TEXT NOT NULL,
  before_json TEXT,
  after_json TEXT,
  affected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE ingest_sources (
  id INTEGER PRIMARY KEY,
  tenant_id INTEGER NOT NULL,
  source TEXT NOT NULL,
  format TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  lines_read INTEGER NOT NULL DEFAULT 0,
  accepted INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0,
  detections INTEGER NOT NULL DEFAULT 0
);
INSERT INTO meta (key, value) VALUES ('rules_version', '0');
`,
  },
  {
    version: 2,
    name: 'coarse rollups by process (endpoint, job, day), kept exact by triggers',
    up: (db) => db.exec(coarseRollupsSql()),
  },
  {
    version: 3,
    name: 'suspected impostor binaries flagged at ingest',
    // Evidence seen at ingest that may leave no detection behind (a learning run, a call already in
    // the baseline); the rest of the verdict is recomputed from detections. Binary = sha256, else path.
    up: `
CREATE TABLE suspected_impostors (
  tenant_id INTEGER NOT NULL,
  process TEXT NOT NULL,
  binary TEXT NOT NULL,
  sha256 TEXT,
  path TEXT,
  reason TEXT NOT NULL,
  PRIMARY KEY (tenant_id, process, binary)
) WITHOUT ROWID;`,
  },
  {
    version: 4,
    name: 'ingest leases and job-state versions (concurrent writers)',
    up: (db) => db.exec(ingestLeasesSql()),
  },
  {
    version: 5,
    name: 'producer policy verdicts on calls',
    // Harden-Runner says why it dropped (or allowed) a call: `matched_policy` and `reason`. Kept in a
    // side table, one row per stored call that carries them, so calls without them cost nothing.
    up: `
CREATE TABLE call_verdicts (
  run_ref INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  process_id INTEGER NOT NULL,
  blocked INTEGER NOT NULL,
  matched_policy TEXT,
  reason TEXT,
  PRIMARY KEY (run_ref, endpoint_id, process_id, blocked)
) WITHOUT ROWID;
`,
  },
  {
    version: 6,
    name: 'one run row per matrix leg (GitHub job id)',
    // The legs of a matrix job share job key, run id and attempt but each has its own GitHub job id:
    // a run row is one leg, so each leg's calls and detections keep their job id. A missing job id is
    // the leg ''. SQLite cannot change a UNIQUE constraint in place, hence the rebuild (runs is small:
    // one row per job run).
    up: `
CREATE TABLE runs_v6 (
  id INTEGER PRIMARY KEY,
  job_ref INTEGER NOT NULL REFERENCES jobs(id),
  run_id TEXT NOT NULL,
  run_attempt INTEGER NOT NULL,
  gh_job_id TEXT,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  completed INTEGER NOT NULL DEFAULT 0,
  learning INTEGER NOT NULL DEFAULT 0,
  expected_sample TEXT NOT NULL DEFAULT '[]'
);
INSERT INTO runs_v6 SELECT id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning, expected_sample FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v6 RENAME TO runs;
CREATE INDEX runs_by_time ON runs (job_ref, first_ts);
CREATE UNIQUE INDEX runs_by_leg ON runs (job_ref, run_id, run_attempt, coalesce(gh_job_id, ''));
`,
  },
  {
    version: 7,
    name: 'detection status in a narrow side table; fine rollup of every status, and of held (not new) detections by rule',
    up: (db) => db.exec(statusSideTableSql()),
  },
  {
    version: 8,
    // The dashboard's Detections page drives a filtered page by the few process, endpoint or job ids
    // a filter names, one range per id in time order (storage/detection-window.ts): the job and
    // endpoint indexes end in ts (and the rowid) for that; detections_by_endpoint stays because the
    // rules repository names it. A sha256 or bare-host filter finds its ids by index. A store that
    // was ANALYZEd gets statistics for the new indexes too: an index without them looks perfectly
    // selective to the planner, which would then prefer it to detections_by_time and sort.
    name: 'detections by job and by endpoint in time order; processes by sha256, endpoints by host (dashboard paging)',
    up: (db) => {
      db.exec(`
CREATE INDEX detections_by_job_time ON detections (tenant_id, job_ref, ts);
CREATE INDEX detections_by_endpoint_time ON detections (tenant_id, endpoint_id, ts);
CREATE INDEX processes_by_sha256 ON processes (sha256 COLLATE NOCASE);
CREATE INDEX endpoints_by_host ON endpoints (host, port);
`);
      if (db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").get()) {
        db.exec('ANALYZE detections_by_job_time; ANALYZE detections_by_endpoint_time; ANALYZE processes_by_sha256; ANALYZE endpoints_by_host;');
      }
    },
  },
  {
    version: 9,
    // A run's expected endpoints (the sample its detections show) are its job's baseline when it
    // started, so consecutive runs of a job mostly share one: stored once each, a run names it by id
    // (NULL: none, as for a learning run). On the 1M benchmark file 25,000 runs had 2,139 distinct
    // samples, and their JSON text was 5.4 of the store's 32.6 MiB.
    name: 'expected endpoint samples stored once, runs name theirs by id',
    up: `
CREATE TABLE expected_samples (
  id INTEGER PRIMARY KEY,
  sample TEXT NOT NULL UNIQUE
);
INSERT INTO expected_samples (sample)
  SELECT expected_sample FROM runs WHERE expected_sample <> '[]' GROUP BY expected_sample ORDER BY min(id);
ALTER TABLE runs ADD COLUMN expected_id INTEGER REFERENCES expected_samples(id);
UPDATE runs SET expected_id = (SELECT id FROM expected_samples WHERE sample = runs.expected_sample) WHERE expected_sample <> '[]';
ALTER TABLE runs DROP COLUMN expected_sample;
`,
  },
  {
    version: 10,
    // Every risky destination a config has named, kept with the store, so a command run where that
    // config is not found still never silences them (rules/risky-memory.ts).
    name: 'risky destinations remembered by the store',
    up: `
CREATE TABLE risky_destinations (
  entry TEXT PRIMARY KEY,
  added_at TEXT NOT NULL
) WITHOUT ROWID;
`,
  },
  {
    version: 11,
    // A configured risky range covers named calls: the analysis and the impostor verdict find the
    // detections that reached one by their recorded address, not by a scan of the tenant. A store
    // that was ANALYZEd gets statistics for it at once, as in migration 8: without them the planner
    // takes it for perfectly selective and lists detections through it, then sorts (30x slower on a
    // 100k-detection store).
    name: 'detections found by the address they reached',
    up: (db) => {
      db.exec('CREATE INDEX detections_by_ip ON detections (tenant_id, ip_id);');
      if (db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").get()) db.exec('ANALYZE detections_by_ip;');
    },
  },
  {
    version: 12,
    // Forgetting a risky destination lets every tenant's rules hide calls to it again: who did it, and
    // when, is kept. Entries remembered before this version get their row, with the time they were
    // remembered and no actor, since none was recorded.
    name: 'risky-list audit (store-wide)',
    up: `
CREATE TABLE risky_audit (
  id INTEGER PRIMARY KEY,
  entry TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('remember', 'forget')),
  actor TEXT NOT NULL,
  at TEXT NOT NULL
);
INSERT INTO risky_audit (entry, action, actor, at)
  SELECT entry, 'remember', '${UNRECORDED_ACTOR}', added_at FROM risky_destinations ORDER BY added_at, entry;
`,
  },
  {
    version: 13,
    // normalizeProcessName now runs to a fixed point. A name stored by its old single pass, such as
    // "tailscaled.exe" from "tailscaled.exe.exe", was judged as tailscaled where it was read and
    // normalised again, but the store's own daemon checks select the stored name as it is and missed
    // it. Normalising a stored name again gives what the new function gives for the raw name.
    name: 'process names normalised to a fixed point ("tailscaled.exe.exe" is tailscaled)',
    up: (db) => normaliseStoredNames(db, 'SELECT id, norm_name FROM processes'),
  },
  {
    version: 14,
    // Ingest finds a job by owner and repo without ASCII case (domain/github-name.ts): one job
    // reported as Acme/Web and as acme/web was two jobs, and the second spelling's learning runs took
    // new endpoints into its baseline without a detection.
    name: 'jobs found by owner and repo without case',
    up: 'CREATE INDEX jobs_by_name_nocase ON jobs (tenant_id, owner COLLATE NOCASE, repo COLLATE NOCASE, workflow, job);',
  },
  {
    version: 15,
    // normalizeProcessName now also strips characters drawn blank (U+2800, U+1D159), private-use and
    // unassigned code points and lone surrogates, and folds again after it strips. A name stored before
    // ("tailscaled\u2800") was judged as tailscaled where it was read and normalised again, but no
    // filter could name it any more (filters are normalised) and the store's own daemon checks select
    // the stored name as it is. Only names with a character outside printable ASCII can change.
    name: 'process names without characters drawn blank, private-use or unassigned ("tailscaled\\u2800" is tailscaled)',
    up: (db) => {
      normaliseStoredNames(db, "SELECT id, norm_name FROM processes WHERE norm_name GLOB '*[^ -~]*'");
      // a flag is found by the binary's name (a hash-less binary by nothing else): under the old name
      // it would no longer meet the binary it flags
      const flags = db.prepare("SELECT tenant_id, process, binary FROM suspected_impostors WHERE process GLOB '*[^ -~]*'").all() as { tenant_id: number; process: string; binary: string }[];
      const copy = db.prepare(
        'INSERT OR IGNORE INTO suspected_impostors (tenant_id, process, binary, sha256, path, reason) SELECT tenant_id, ?, binary, sha256, path, reason FROM suspected_impostors WHERE tenant_id = ? AND process = ? AND binary = ?',
      );
      const drop = db.prepare('DELETE FROM suspected_impostors WHERE tenant_id = ? AND process = ? AND binary = ?');
      for (const f of flags) {
        const name = normalizeProcessName(f.process);
        if (name === f.process) continue;
        copy.run(name, f.tenant_id, f.process, f.binary);
        drop.run(f.tenant_id, f.process, f.binary);
      }
    },
  },
];

/**
 * Every table CORE_MIGRATIONS leave once all are applied: what an open store must have
 * (refuseDamagedStore). test/storage/damaged-store.test.ts keeps it equal to what they make.
 */
export const CORE_TABLES: readonly string[] = [
  'baseline', 'call_verdicts', 'detection_rollup', 'detection_rollup_held', 'detection_status', 'detection_types', 'detections',
  'endpoints', 'expected_samples', 'ingest_leases', 'ingest_sources', 'ips', 'jobs', 'meta', 'observations', 'processes',
  'risky_audit', 'risky_destinations', 'rollup_process_day', 'rollup_process_endpoint', 'rollup_process_job', 'rule_audit',
  'rules', 'runs', 'suspected_impostors', 'tenants',
];

/** Each stored process name (`select`: id and norm_name) set to what normalizeProcessName makes of it now. */
function normaliseStoredNames(db: SqliteDatabase, select: string): void {
  const update = db.prepare('UPDATE processes SET norm_name = ? WHERE id = ?');
  for (const p of db.prepare(select).all() as { id: number; norm_name: string }[]) {
    const name = normalizeProcessName(p.norm_name);
    if (name !== p.norm_name) update.run(name, p.id);
  }
}

/**
 * Version 4: concurrent writers (contract in ../store.ts).
 * - ingest_leases: at most one ingest writes a tenant at a time; a row is the current lease, deleted
 *   on release; expires_at (epoch ms) lets a writer take over from a killed holder; waiting_for lets
 *   a holder of several tenants see that waiting would close a cycle.
 * - tenants.job_state_version: bumped when job or baseline state changes outside the ingest lease, so
 *   an ingest drops its cached job state. The only such writers are `baseline expect` and
 *   `baseline unexpect` (an endpoint becomes, or stops being, expected); triggers catch them whichever
 *   code path writes them. An ingest never turns a row
 *   into 'expected' itself, so its own writes do not bump the version.
 */
function ingestLeasesSql(): string {
  const bumpJobState = `UPDATE tenants SET job_state_version = job_state_version + 1
    WHERE id = (SELECT tenant_id FROM jobs WHERE id = NEW.job_ref);`;
  return `
CREATE TABLE ingest_leases (
  tenant_id INTEGER PRIMARY KEY REFERENCES tenants(id),
  token TEXT NOT NULL,
  source TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  since INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  -- set on every lease of a holder (pid, host) while it waits for another tenant: deadlock detection
  waiting_for INTEGER
);
ALTER TABLE tenants ADD COLUMN job_state_version INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER baseline_expected_ins AFTER INSERT ON baseline WHEN NEW.source = 'expected'
BEGIN
  ${bumpJobState}
END;
CREATE TRIGGER baseline_expected_upd AFTER UPDATE ON baseline
WHEN NEW.source = 'expected' AND (OLD.source <> 'expected' OR OLD.in_baseline <> NEW.in_baseline)
BEGIN
  ${bumpJobState}
END;
-- baseline unexpect: an ingest holding the endpoint as expected in its cache must drop it
CREATE TRIGGER baseline_unexpected_upd AFTER UPDATE ON baseline
WHEN OLD.source = 'expected' AND NEW.source <> 'expected'
BEGIN
  ${bumpJobState}
END;
`;
}

const COARSE_KEYS: Record<string, string> = {
  rollup_process_endpoint: 'endpoint_id',
  rollup_process_job: 'job_ref',
  rollup_process_day: 'day',
};

function coarseTable(table: string, col: string): string {
  return `
CREATE TABLE ${table} (
  tenant_id INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  status INTEGER NOT NULL,
  rule_id INTEGER NOT NULL,
  process_id INTEGER NOT NULL,
  ${col} INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, type_id, status, rule_id, process_id, ${col})
) WITHOUT ROWID;
INSERT INTO ${table} (tenant_id, type_id, status, rule_id, process_id, ${col}, n)
  SELECT tenant_id, type_id, status, rule_id, process_id, ${col}, sum(n) FROM detection_rollup
  GROUP BY tenant_id, type_id, status, rule_id, process_id, ${col} HAVING sum(n) <> 0;`;
}

/** Statements adding (sign +) or removing (sign -) one fine rollup row (alias R = NEW or OLD) to the coarse tables. */
function coarseDelta(r: 'NEW' | 'OLD', sign: '+' | '-'): string {
  return Object.entries(COARSE_KEYS)
    .map(([table, col]) =>
      sign === '+'
        ? `  INSERT INTO ${table} (tenant_id, type_id, status, rule_id, process_id, ${col}, n)
    VALUES (${r}.tenant_id, ${r}.type_id, ${r}.status, ${r}.rule_id, ${r}.process_id, ${r}.${col}, ${r}.n)
    ON CONFLICT (tenant_id, type_id, status, rule_id, process_id, ${col}) DO UPDATE SET n = n + excluded.n;`
        : `  UPDATE ${table} SET n = n - ${r}.n WHERE tenant_id = ${r}.tenant_id AND type_id = ${r}.type_id AND status = ${r}.status
    AND rule_id = ${r}.rule_id AND process_id = ${r}.process_id AND ${col} = ${r}.${col};
  DELETE FROM ${table} WHERE tenant_id = ${r}.tenant_id AND type_id = ${r}.type_id AND status = ${r}.status
    AND rule_id = ${r}.rule_id AND process_id = ${r}.process_id AND ${col} = ${r}.${col} AND n = 0;`,
    )
    .join('\n');
}

const SAME_KEY = ['tenant_id', 'type_id', 'status', 'rule_id', 'day', 'job_ref', 'process_id', 'endpoint_id', 'ip_id']
  .map((c) => `NEW.${c} = OLD.${c}`)
  .join(' AND ');

/**
 * Version 2: coarse rollups, marginals of detection_rollup that drop the dimensions the default
 * (unwindowed, unscoped) analysis does not need:
 *  - rollup_process_endpoint: counts, distinct endpoints / direct IPs, risky counts, VPN evidence;
 *  - rollup_process_job: distinct repos / owners;
 *  - rollup_process_day: totals per variant and the first / last day seen (the exact first/last
 *    timestamps are then probed in that day only, through detections_by_process).
 * They hold sums only (sums stay exact under deltas; min/max would not under status moves). SQLite
 * triggers on detection_rollup apply every insert / n change / key change / delete as a delta and
 * drop coarse rows whose n reaches 0, so every write path (ingest upserts, rule moves, restores)
 * keeps them equal to GROUP BYs of detections. A bulk writer may instead maintain them set-based:
 * while the meta row 'coarse_rollup_bulk' exists (inside its own transaction only) the triggers
 * do nothing.
 */
function coarseRollupsSql(): string {
  return `
${Object.entries(COARSE_KEYS)
  .map(([t, c]) => coarseTable(t, c))
  .join('\n')}
CREATE TRIGGER detection_rollup_coarse_ins AFTER INSERT ON detection_rollup
WHEN NOT EXISTS (SELECT 1 FROM meta WHERE key = 'coarse_rollup_bulk')
BEGIN
${coarseDelta('NEW', '+')}
END;
CREATE TRIGGER detection_rollup_coarse_n AFTER UPDATE OF n ON detection_rollup
WHEN ${SAME_KEY} AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'coarse_rollup_bulk')
BEGIN
${Object.entries(COARSE_KEYS)
  .map(
    ([table, col]) => `  UPDATE ${table} SET n = n + (NEW.n - OLD.n) WHERE tenant_id = NEW.tenant_id AND type_id = NEW.type_id
    AND status = NEW.status AND rule_id = NEW.rule_id AND process_id = NEW.process_id AND ${col} = NEW.${col};
  DELETE FROM ${table} WHERE NEW.n < OLD.n AND tenant_id = NEW.tenant_id AND type_id = NEW.type_id AND status = NEW.status
    AND rule_id = NEW.rule_id AND process_id = NEW.process_id AND ${col} = NEW.${col} AND n = 0;`,
  )
  .join('\n')}
END;
CREATE TRIGGER detection_rollup_coarse_key AFTER UPDATE ON detection_rollup
WHEN NOT (${SAME_KEY}) AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'coarse_rollup_bulk')
BEGIN
${coarseDelta('OLD', '-')}
${coarseDelta('NEW', '+')}
END;
CREATE TRIGGER detection_rollup_coarse_del AFTER DELETE ON detection_rollup
WHEN NOT EXISTS (SELECT 1 FROM meta WHERE key = 'coarse_rollup_bulk')
BEGIN
${coarseDelta('OLD', '-')}
END;
`;
}

/**
 * Version 7: a rule change over a thin, scattered match (say every `Unknown`-process call, 8% of the
 * store, on every page) used to rewrite the wide detections rows, and delete + insert one fine rollup
 * row per matched key all over the rollup (its key began with status and rule). Now:
 *  - detection_status holds the status of detections that are not `new` (suppressed by a rule, or
 *    resolved at the source): a move writes these narrow rows only. A detection without a row is new.
 *    detections loses its status and rule_id columns (and the by-rule index), so nothing can read a
 *    stale copy; the by-rule index of the side table finds a rule's suppressions for restores.
 *  - detection_rollup counts every detection of a key, whatever its status, so no move touches it.
 *  - detection_rollup_held counts the detections that are not new, keyed (status, rule) first like
 *    the old rollup: a move from new appends a contiguous run of rows under the rule, a restore
 *    deletes that run. New detections of a key = detection_rollup.n - the key's held rows.
 *  - the coarse rollups keep (status, rule) in their key (a thin match moves few of their rows); the
 *    writers (ingest, rule moves) now maintain them directly, so their triggers go.
 */
function statusSideTableSql(): string {
  return `
CREATE TABLE detection_status (
  id INTEGER PRIMARY KEY,
  status INTEGER NOT NULL,
  rule_id INTEGER NOT NULL
);
INSERT INTO detection_status (id, status, rule_id) SELECT id, status, rule_id FROM detections WHERE status <> 0;
CREATE INDEX detection_status_by_rule ON detection_status (rule_id);
DROP TRIGGER detection_rollup_coarse_ins;
DROP TRIGGER detection_rollup_coarse_n;
DROP TRIGGER detection_rollup_coarse_key;
DROP TRIGGER detection_rollup_coarse_del;
CREATE TABLE detection_rollup_held (
  tenant_id INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  status INTEGER NOT NULL,
  rule_id INTEGER NOT NULL,
  day INTEGER NOT NULL,
  job_ref INTEGER NOT NULL,
  process_id INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  ip_id INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id)
) WITHOUT ROWID;
INSERT INTO detection_rollup_held
  SELECT tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n FROM detection_rollup WHERE status <> 0;
CREATE TABLE detection_rollup_v7 (
  tenant_id INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  day INTEGER NOT NULL,
  job_ref INTEGER NOT NULL,
  process_id INTEGER NOT NULL,
  endpoint_id INTEGER NOT NULL,
  ip_id INTEGER NOT NULL,
  n INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id)
) WITHOUT ROWID;
INSERT INTO detection_rollup_v7
  SELECT tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id, sum(n), min(first_ts), max(last_ts)
  FROM detection_rollup GROUP BY tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id ORDER BY 1, 2, 3, 4, 5, 6, 7;
DROP TABLE detection_rollup;
ALTER TABLE detection_rollup_v7 RENAME TO detection_rollup;
DROP INDEX detections_by_rule;
ALTER TABLE detections DROP COLUMN status;
ALTER TABLE detections DROP COLUMN rule_id;
DELETE FROM meta WHERE key = 'coarse_rollup_bulk';
`;
}
