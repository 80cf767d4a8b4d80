#!/usr/bin/env node
/**
 * Counts and checksums of every table of a SQLite store, by value: each id is replaced by what it
 * names (an endpoint id by its endpoint, a run id by its job's key and the run's leg, ...), and rows
 * are sorted before hashing, so two ingests of the same file compare equal even when dictionary ids
 * were handed out in another order. Times of the ingest itself (when a source started, a lease
 * expires, a migration ran) are left out: they differ between any two runs.
 *
 *   node scripts/store-digest.mjs A.db [B.db]
 *
 * With one store it prints its digest; with two it prints the tables that differ and exits 1 if any do.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

/** Columns that record when the ingest ran, not what it stored. */
const VOLATILE = {
  tenants: ['created_at'],
  ingest_sources: ['started_at', 'finished_at'],
  schema_migrations: ['applied_at'],
  ingest_leases: ['token', 'pid', 'host', 'since', 'expires_at', 'source'],
  rule_audit: ['at'],
};

function digest(file) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const all = (sql) => db.prepare(sql).all();
  const map = (sql) => new Map(all(sql).map((r) => [r.id, r.v]));
  const hasTable = (name) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  const tenants = map('SELECT id, name AS v FROM tenants');
  const jobs = new Map(all('SELECT id, tenant_id, owner, repo, workflow, job FROM jobs').map((r) => [r.id, `${tenants.get(r.tenant_id)}/${r.owner}/${r.repo}/${r.workflow}/${r.job}`]));
  const runs = new Map(all('SELECT id, job_ref, run_id, run_attempt, gh_job_id FROM runs').map((r) => [r.id, `${jobs.get(r.job_ref)}#${r.run_id}.${r.run_attempt}.${r.gh_job_id ?? ''}`]));
  const endpoints = map('SELECT id, endpoint AS v FROM endpoints');
  const ips = map('SELECT id, ip AS v FROM ips');
  const processes = map('SELECT id, variant_key AS v FROM processes');
  const types = map('SELECT id, name AS v FROM detection_types');
  const rules = map('SELECT id, rule_uid AS v FROM rules');
  const samples = hasTable('expected_samples') ? map('SELECT id, sample AS v FROM expected_samples') : new Map();
  const detections = new Map(
    all('SELECT id, run_ref, type_id, endpoint_id, process_id, ext FROM detections').map((r) => [
      r.id,
      `${runs.get(r.run_ref)}|${types.get(r.type_id)}|${endpoints.get(r.endpoint_id)}|${processes.get(r.process_id)}|${r.ext}`,
    ]),
  );
  const resolve = (m, v) => (v === null || v === 0 ? v : (m.get(v) ?? `?${v}`));
  const byColumn = {
    tenant_id: tenants,
    job_ref: jobs,
    open_run: runs,
    run_ref: runs,
    endpoint_id: endpoints,
    ip_id: ips,
    process_id: processes,
    type_id: types,
    rule_id: rules,
    expected_id: samples,
  };
  const out = {};
  const tables = all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map((r) => r.name);
  for (const t of tables) {
    const skip = new Set(VOLATILE[t] ?? []);
    const rows = all(`SELECT * FROM "${t}"`);
    const lines = rows.map((row) => {
      const o = {};
      for (const [k, v] of Object.entries(row)) {
        if (skip.has(k)) continue;
        // a row's own id is a name only for what points to it (resolved above), so it is left out
        if (k === 'id') o[k] = t === 'detection_status' ? resolve(detections, v) : null;
        else o[k] = byColumn[k] ? resolve(byColumn[k], v) : v;
      }
      return JSON.stringify(o);
    });
    lines.sort();
    const h = createHash('sha256');
    for (const l of lines) h.update(l).update('\n');
    out[t] = { count: rows.length, sha256: h.digest('hex').slice(0, 16) };
  }
  db.close();
  return out;
}

const [a, b] = process.argv.slice(2);
if (!a) {
  process.stderr.write('usage: node scripts/store-digest.mjs A.db [B.db]\n');
  process.exit(2);
}
const da = digest(a);
if (!b) {
  process.stdout.write(JSON.stringify(da, null, 1) + '\n');
} else {
  const db2 = digest(b);
  let differ = 0;
  for (const t of new Set([...Object.keys(da), ...Object.keys(db2)])) {
    const x = da[t];
    const y = db2[t];
    const same = x && y && x.count === y.count && x.sha256 === y.sha256;
    if (!same) differ++;
    process.stdout.write(`${same ? 'same   ' : 'DIFFERS'} ${t}: ${x ? `${x.count} ${x.sha256}` : '-'} / ${y ? `${y.count} ${y.sha256}` : '-'}\n`);
  }
  process.stdout.write(differ ? `${differ} table(s) differ\n` : 'stores are identical by value\n');
  process.exit(differ ? 1 : 0);
}
