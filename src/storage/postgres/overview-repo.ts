import type { DetectionStatus } from '../../domain/types.js';
import { STATUS_NAME } from '../store.js';
import type { DetectionDayCount, OverviewCounts, OverviewReader, ProcessOpenCount } from '../overview-port.js';
import type { PgPool } from './pool.js';

/** The overview port (storage/overview-port.ts) on PostgreSQL, answering as SQLite's does (byte-wise name order). */
export class PgOverviewRepository implements OverviewReader {
  constructor(private readonly pool: PgPool) {}

  async counts(tenant: string): Promise<OverviewCounts> {
    const tid = (await this.pool.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant])).rows[0]?.tenant_id ?? -1;
    const one = async (sql: string, extra: unknown[] = []) => (await this.pool.query<{ n: number }>(sql, [tid, ...extra])).rows[0]?.n ?? 0;
    const learningRuns = Number((await this.pool.query<{ value: string }>("SELECT value FROM meta WHERE key = 'learning_runs'")).rows[0]?.value ?? 5);
    const [jobs, runs, learningJobs, rules, detections] = await Promise.all([
      one('SELECT count(*) AS n FROM jobs WHERE tenant_id = $1'),
      one('SELECT count(*) AS n FROM runs WHERE tenant_id = $1'),
      one('SELECT count(*) AS n FROM jobs WHERE tenant_id = $1 AND completed_runs < $2', [learningRuns]),
      one('SELECT count(*) AS n FROM rules WHERE tenant_id = $1 AND deleted_on IS NULL'),
      // the per-day rollup is an exact GROUP BY of the fine one (analysis-rollups.ts) with far fewer
      // rows (216 against 366,890 on the 1M bench store; docs/dashboard-data.md has the times)
      this.pool.query<{ type: string; status: number; count: number }>(
        `SELECT t.name AS type, r.status, sum(r.n)::bigint AS count FROM rollup_process_day r JOIN detection_types t ON t.id = r.type_id
         WHERE r.tenant_id = $1 GROUP BY t.name, r.status HAVING sum(r.n) > 0 ORDER BY t.name COLLATE "C", r.status`,
        [tid],
      ),
    ]);
    return {
      tenant,
      jobs,
      runs,
      learningJobs,
      detections: detections.rows.map((r) => ({ type: r.type, status: STATUS_NAME[r.status] as DetectionStatus, count: r.count })),
      rules,
    };
  }

  async detectionsByDay(tenant: string, q: { sinceDay?: number } = {}): Promise<DetectionDayCount[]> {
    const { rows } = await this.pool.query<{ day: number; type: string; status: number; n: number }>(
      `SELECT r.day, t.name AS type, r.status, sum(r.n)::bigint AS n
       FROM rollup_process_day r JOIN detection_types t ON t.id = r.type_id JOIN tenants tn ON tn.tenant_id = r.tenant_id
       WHERE tn.name = $1 AND r.day >= $2 GROUP BY r.day, t.name, r.status HAVING sum(r.n) > 0
       ORDER BY r.day, t.name COLLATE "C", r.status`,
      [tenant, q.sinceDay ?? -1e9],
    );
    return rows.map((r) => ({ day: r.day, type: r.type, status: STATUS_NAME[r.status] as DetectionStatus, n: r.n }));
  }

  async topOpenProcesses(tenant: string, limit: number): Promise<ProcessOpenCount[]> {
    const { rows } = await this.pool.query<ProcessOpenCount>(
      `SELECT p.norm_name AS process, sum(r.n)::bigint AS n
       FROM rollup_process_day r JOIN processes p ON p.tenant_id = r.tenant_id AND p.id = r.process_id
       JOIN tenants tn ON tn.tenant_id = r.tenant_id
       WHERE tn.name = $1 AND r.status = 0 GROUP BY p.norm_name HAVING sum(r.n) > 0
       ORDER BY n DESC, p.norm_name COLLATE "C" LIMIT $2`,
      [tenant, limit],
    );
    return rows;
  }
}
