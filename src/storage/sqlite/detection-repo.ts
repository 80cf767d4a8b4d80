import type { SqliteDatabase } from './db.js';
// The cursor is shared by every backend: one format, one error class (CursorError).
import { decodeDetectionCursor, detectionQueryKey, encodeDetectionCursor } from '../detection-cursor.js';
import {
  STATUS_CODE,
  type BaselineView,
  type DetectionFilter,
  type DetectionPage,
  type DetectionRepository,
  type TenantStats,
} from '../store.js';
import type { Detection, DetectionStatus } from '../../domain/types.js';
import { rowToDetection, type DetectionRow } from '../detection-row.js';
import { statusOf } from './rollups.js';
import { SqliteOverviewRepository } from './overview-repo.js';

export const DETECTION_SELECT = `
SELECT d.id, t.name AS type, j.owner, j.repo, j.workflow, j.job, r.run_id, r.run_attempt, r.gh_job_id, coalesce(es.sample, '[]') AS expected_sample,
       d.ts, e.endpoint, e.host, e.is_ip, i.ip, d.direct_ip, d.port, d.protocol,
       p.name AS pname, p.norm_name, p.path, p.sha256, p.parent_chain, coalesce(ds.status, 0) AS status, ru.rule_uid, d.ext,
       cv.matched_policy, cv.reason
FROM detections d
JOIN detection_types t ON t.id = d.type_id
JOIN jobs j ON j.id = d.job_ref
JOIN runs r ON r.id = d.run_ref
LEFT JOIN expected_samples es ON es.id = r.expected_id
JOIN endpoints e ON e.id = d.endpoint_id
JOIN processes p ON p.id = d.process_id
LEFT JOIN ips i ON i.id = d.ip_id
LEFT JOIN detection_status ds ON ds.id = d.id
LEFT JOIN rules ru ON ru.id = ds.rule_id
LEFT JOIN call_verdicts cv ON cv.run_ref = d.run_ref AND cv.endpoint_id = d.endpoint_id AND cv.process_id = d.process_id
  AND cv.blocked = (t.name = 'Domain-Blocked')`;


export class SqliteDetectionRepository implements DetectionRepository {
  constructor(private readonly db: SqliteDatabase) {}

  tenantId(tenant: string): number | undefined {
    return this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
  }

  /**
   * Exact total for a filter. The rollup holds every dimension except run and exact time, so when
   * neither is filtered the total is a sum over far fewer rows than a count of detections.
   */
  private total(tenantId: number, f: DetectionFilter): number {
    if (f.runId === undefined && f.since === undefined && f.until === undefined) {
      // detection_rollup counts every status of a key, detection_rollup_held the ones not new
      const w = this.where(tenantId, { ...f, statuses: undefined });
      const sql = w.sql.replace(/\bd\.(tenant_id|type_id|job_ref|process_id|endpoint_id)\b/g, 'r.$1');
      const codes = new Set((f.statuses?.length ? f.statuses : (['new', 'suppressed', 'resolved'] as DetectionStatus[])).map((s) => STATUS_CODE[s]));
      const sum = (from: string, cond = '') =>
        (this.db.prepare(`SELECT coalesce(sum(r.n), 0) FROM ${from} r WHERE ${sql}${cond}`).pluck().get(...w.params) as number) ?? 0;
      const held = [1, 2].filter((c) => codes.has(c) !== codes.has(0));
      const heldSum = held.length ? sum('detection_rollup_held', ` AND r.status IN (${held.join(',')})`) : 0;
      return codes.has(0) ? sum('detection_rollup') - heldSum : heldSum;
    }
    const w = this.where(tenantId, f);
    return this.db.prepare(`SELECT count(*) FROM detections d WHERE ${w.sql}`).pluck().get(...w.params) as number;
  }

  /** Builds the WHERE clause shared by list and count. Table alias d (+ j, r, p via subqueries). */
  where(tenantId: number, f: DetectionFilter): { sql: string; params: unknown[] } {
    const parts = ['d.tenant_id = ?'];
    const params: unknown[] = [tenantId];
    if (f.types?.length) {
      parts.push(`d.type_id IN (SELECT id FROM detection_types WHERE name IN (${f.types.map(() => '?').join(',')}))`);
      params.push(...f.types);
    }
    if (f.statuses?.length) {
      parts.push(`${statusOf('d')} IN (${f.statuses.map(() => '?').join(',')})`);
      params.push(...f.statuses.map((s) => STATUS_CODE[s]));
    }
    // owner and repo compare case-insensitively (GitHub names are); workflow and job exactly.
    const jobConds: string[] = [];
    for (const [col, v, nocase] of [['owner', f.owner, true], ['repo', f.repo, true], ['workflow', f.workflow, false], ['job', f.job, false]] as const) {
      if (v !== undefined) {
        jobConds.push(nocase ? `${col} = ? COLLATE NOCASE` : `${col} = ?`);
        params.push(v);
      }
    }
    if (jobConds.length) parts.push(`d.job_ref IN (SELECT id FROM jobs WHERE tenant_id = ${tenantId} AND ${jobConds.join(' AND ')})`);
    if (f.runId !== undefined) {
      parts.push('d.run_ref IN (SELECT id FROM runs WHERE run_id = ?)');
      params.push(f.runId);
    }
    if (f.process !== undefined) {
      parts.push('d.process_id IN (SELECT id FROM processes WHERE norm_name = ?)');
      params.push(f.process);
    }
    if (f.sha256 !== undefined) {
      parts.push('d.process_id IN (SELECT id FROM processes WHERE sha256 = ? COLLATE NOCASE)');
      params.push(f.sha256);
    }
    if (f.host !== undefined) {
      // a host without a port matches every port of that host (domain/filter.ts)
      parts.push(`d.endpoint_id IN (SELECT id FROM endpoints WHERE host = ?${f.port !== undefined ? ' AND port = ?' : ''})`);
      params.push(f.host);
      if (f.port !== undefined) params.push(f.port);
    }
    if (f.since !== undefined) {
      parts.push('d.ts >= ?');
      params.push(f.since);
    }
    if (f.until !== undefined) {
      parts.push('d.ts < ?');
      params.push(f.until);
    }
    return { sql: parts.join(' AND '), params };
  }

  async list(tenant: string, f: DetectionFilter, limit: number, cursor?: string | null, offset = 0): Promise<DetectionPage> {
    const tid = this.tenantId(tenant);
    const key = detectionQueryKey(tenant, f);
    const cur = cursor ? decodeDetectionCursor(cursor, key) : null;
    if (tid === undefined) return { detections: [], total: 0, nextCursor: null };
    const w = this.where(tid, f);
    const total = this.total(tid, f);
    let sql = `${DETECTION_SELECT} WHERE ${w.sql}`;
    const params = [...w.params];
    if (cur) {
      sql += ' AND (d.ts < ? OR (d.ts = ? AND d.id < ?))';
      params.push(cur.ts, cur.ts, cur.id);
    }
    sql += ' ORDER BY d.ts DESC, d.id DESC LIMIT ? OFFSET ?';
    params.push(limit + 1, offset);
    const rows = this.db.prepare(sql).all(...params) as DetectionRow[];
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      detections: page.map((r) => rowToDetection(tenant, r)),
      total,
      nextCursor: rows.length > limit && last ? encodeDetectionCursor(last.ts, last.id, key) : null,
    };
  }

  async get(tenant: string, id: string): Promise<Detection | null> {
    const tid = this.tenantId(tenant);
    if (tid === undefined || !/^\d+$/.test(id)) return null;
    const r = this.db.prepare(`${DETECTION_SELECT} WHERE d.tenant_id = ? AND d.id = ?`).get(tid, Number(id)) as DetectionRow | undefined;
    return r ? rowToDetection(tenant, r) : null;
  }

  async stats(tenant: string): Promise<TenantStats> {
    const tid = this.tenantId(tenant) ?? -1;
    const one = (sql: string) => (this.db.prepare(sql).pluck().get(tid) as number) ?? 0;
    const c = await new SqliteOverviewRepository(this.db).counts(tenant);
    return {
      tenant,
      jobs: c.jobs,
      runs: c.runs,
      observations: one(
        'SELECT count(*) FROM observations WHERE run_ref IN (SELECT r.id FROM runs r JOIN jobs j ON j.id = r.job_ref WHERE j.tenant_id = ?)',
      ),
      baselineEndpoints: one(
        'SELECT count(*) FROM baseline WHERE in_baseline = 1 AND job_ref IN (SELECT id FROM jobs WHERE tenant_id = ?)',
      ),
      learningJobs: c.learningJobs,
      detections: c.detections,
      rules: c.rules,
    };
  }

  meta(key: string): string | undefined {
    return this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  }

  async baselines(tenant: string, q: { owner?: string; repo?: string; workflow?: string; job?: string }): Promise<BaselineView[]> {
    const tid = this.tenantId(tenant);
    if (tid === undefined) return [];
    const conds = ['tenant_id = ?'];
    const params: unknown[] = [tid];
    for (const [col, v] of [['owner', q.owner], ['repo', q.repo], ['workflow', q.workflow], ['job', q.job]] as const) {
      if (v !== undefined) {
        conds.push(col === 'owner' || col === 'repo' ? `${col} = ? COLLATE NOCASE` : `${col} = ?`);
        params.push(v);
      }
    }
    const jobs = this.db
      .prepare(`SELECT id, owner, repo, workflow, job, completed_runs FROM jobs WHERE ${conds.join(' AND ')} ORDER BY owner, repo, workflow, job`)
      .all(...params) as { id: number; owner: string; repo: string; workflow: string; job: string; completed_runs: number }[];
    return this.jobViews(jobs);
  }

  /** Jobs (rows of `jobs`) with their state and baseline entries, in the order given. */
  jobViews(jobs: { id: number; owner: string; repo: string; workflow: string; job: string; completed_runs: number }[]): BaselineView[] {
    const learningRuns = Number(this.meta('learning_runs') ?? 5);
    const entries = this.db.prepare(
      `SELECT e.endpoint, b.runs_seen, b.in_baseline, b.source, b.first_ts, b.last_ts FROM baseline b
       JOIN endpoints e ON e.id = b.endpoint_id WHERE b.job_ref = ? ORDER BY b.in_baseline DESC, e.endpoint`,
    );
    return jobs.map((j) => ({
      owner: j.owner,
      repo: j.repo,
      workflow: j.workflow,
      job: j.job,
      completedRuns: j.completed_runs,
      learning: j.completed_runs < learningRuns,
      endpoints: (entries.all(j.id) as { endpoint: string; runs_seen: number; in_baseline: number; source: string; first_ts: number; last_ts: number }[]).map(
        (e) => ({
          endpoint: e.endpoint,
          runsSeen: e.runs_seen,
          inBaseline: e.in_baseline === 1,
          source: e.source,
          firstSeen: new Date(e.first_ts).toISOString(),
          lastSeen: new Date(e.last_ts).toISOString(),
        }),
      ),
    }));
  }

  async tenants(): Promise<string[]> {
    return this.db.prepare('SELECT name FROM tenants ORDER BY name').pluck().all() as string[];
  }
}
