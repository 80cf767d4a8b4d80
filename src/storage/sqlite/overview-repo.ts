import type { DetectionStatus } from '../../domain/types.js';
import { STATUS_NAME } from '../store.js';
import type { DetectionDayCount, OverviewCounts, OverviewReader, ProcessOpenCount } from '../overview-port.js';
import type { SqliteDatabase } from './db.js';

/** The overview port (storage/overview-port.ts) on SQLite, from the per-process-and-day rollup. */
export class SqliteOverviewRepository implements OverviewReader {
  constructor(private readonly db: SqliteDatabase) {}

  private tenantId(tenant: string): number {
    return (this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined) ?? -1;
  }

  async counts(tenant: string): Promise<OverviewCounts> {
    const tid = this.tenantId(tenant);
    const one = (sql: string, ...extra: unknown[]) => (this.db.prepare(sql).pluck().get(tid, ...extra) as number) ?? 0;
    const learningRuns = Number((this.db.prepare("SELECT value FROM meta WHERE key = 'learning_runs'").pluck().get() as string | undefined) ?? 5);
    const detections = (
      this.db
        .prepare(
          `SELECT t.name AS type, r.status, sum(r.n) AS count FROM rollup_process_day r JOIN detection_types t ON t.id = r.type_id
           WHERE r.tenant_id = ? GROUP BY t.name, r.status HAVING sum(r.n) > 0 ORDER BY t.name, r.status`,
        )
        .all(tid) as { type: string; status: number; count: number }[]
    ).map((r) => ({ type: r.type, status: STATUS_NAME[r.status] as DetectionStatus, count: r.count }));
    return {
      tenant,
      jobs: one('SELECT count(*) FROM jobs WHERE tenant_id = ?'),
      runs: one('SELECT count(*) FROM runs WHERE job_ref IN (SELECT id FROM jobs WHERE tenant_id = ?)'),
      learningJobs: one('SELECT count(*) FROM jobs WHERE tenant_id = ? AND completed_runs < ?', learningRuns),
      detections,
      rules: one('SELECT count(*) FROM rules WHERE tenant_id = ? AND deleted_on IS NULL'),
    };
  }

  async detectionsByDay(tenant: string, q: { sinceDay?: number } = {}): Promise<DetectionDayCount[]> {
    const rows = this.db
      .prepare(
        `SELECT r.day, t.name AS type, r.status, sum(r.n) AS n FROM rollup_process_day r JOIN detection_types t ON t.id = r.type_id
         WHERE r.tenant_id = ? AND r.day >= ? GROUP BY r.day, t.name, r.status HAVING sum(r.n) > 0 ORDER BY r.day, t.name, r.status`,
      )
      .all(this.tenantId(tenant), q.sinceDay ?? -1e9) as { day: number; type: string; status: number; n: number }[];
    return rows.map((r) => ({ day: r.day, type: r.type, status: STATUS_NAME[r.status] as DetectionStatus, n: r.n }));
  }

  async topOpenProcesses(tenant: string, limit: number): Promise<ProcessOpenCount[]> {
    return this.db
      .prepare(
        `SELECT p.norm_name AS process, sum(r.n) AS n FROM rollup_process_day r JOIN processes p ON p.id = r.process_id
         WHERE r.tenant_id = ? AND r.status = 0 GROUP BY p.norm_name HAVING sum(r.n) > 0 ORDER BY n DESC, process LIMIT ?`,
      )
      .all(this.tenantId(tenant), limit) as ProcessOpenCount[];
  }
}
