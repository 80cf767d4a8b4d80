import { openSqlite, migrate } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';

/**
 * Writes the data of a current store into a new store file built with the core migrations up to
 * `version` only (1-6: detections carry status and rule_id, the fine rollup is keyed by them), as an
 * older release would have stored it. `resolved` detection ids get status 2, as a source may give.
 * Opening the result with SqliteStore.open then runs the later migrations over real data.
 */
export function writeLegacyStore(srcPath: string, destPath: string, version: number, resolved: number[] = []): void {
  const db = openSqlite(destPath);
  try {
    migrate(db, CORE_MIGRATIONS.filter((m) => m.version <= version));
    db.prepare('ATTACH DATABASE ? AS src').run(srcPath);
    db.transaction(() => {
      db.exec(`
        INSERT INTO tenants (id, name, created_at) SELECT id, name, created_at FROM src.tenants;
        INSERT INTO jobs (id, tenant_id, owner, repo, workflow, job, completed_runs, open_run)
          SELECT id, tenant_id, owner, repo, workflow, job, completed_runs, open_run FROM src.jobs;
        INSERT INTO runs (id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning, expected_sample)
          SELECT r.id, r.job_ref, r.run_id, r.run_attempt, r.gh_job_id, r.first_ts, r.last_ts, r.completed, r.learning, coalesce(es.sample, '[]')
          FROM src.runs r LEFT JOIN src.expected_samples es ON es.id = r.expected_id;
        INSERT INTO endpoints SELECT * FROM src.endpoints;
        INSERT INTO ips SELECT * FROM src.ips;
        INSERT INTO processes SELECT * FROM src.processes;
        INSERT INTO detection_types SELECT * FROM src.detection_types;
        INSERT INTO rules SELECT * FROM src.rules;
        INSERT INTO rule_audit SELECT * FROM src.rule_audit;
        UPDATE meta SET value = (SELECT value FROM src.meta WHERE key = 'rules_version') WHERE key = 'rules_version';
        INSERT INTO detections (id, tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, status, rule_id, ext)
          SELECT d.id, d.tenant_id, d.type_id, d.job_ref, d.run_ref, d.endpoint_id, d.ip_id, d.direct_ip, d.port, d.protocol, d.process_id, d.ts,
                 coalesce(s.status, 0), coalesce(s.rule_id, 0), d.ext
          FROM src.detections d LEFT JOIN src.detection_status s ON s.id = d.id;
      `);
      const res = db.prepare('UPDATE detections SET status = 2, rule_id = 0 WHERE id = ?');
      for (const id of resolved) res.run(id);
      // the version-1 rollup; from version 2 on its triggers fill the coarse rollups
      db.exec(`
        INSERT INTO detection_rollup (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
          SELECT tenant_id, type_id, status, rule_id, ts / 86400000, job_ref, process_id, endpoint_id, ip_id, count(*), min(ts), max(ts)
          FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;`);
    })();
    db.exec('DETACH DATABASE src');
  } finally {
    db.close();
  }
}
