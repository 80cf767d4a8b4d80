import type { PgPool } from './pool.js';
import {
  STATUS_CODE,
  type BaselineView,
  type DetectionFilter,
  type DetectionPage,
  type DetectionRepository,
  type TenantStats,
} from '../store.js';
import { decodeDetectionCursor, detectionQueryKey, encodeDetectionCursor } from '../detection-cursor.js';
import type { Detection } from '../../domain/types.js';
import { rowToDetection, type DetectionRow } from '../detection-row.js';
import { PgOverviewRepository } from './overview-repo.js';
import { asciiNocaseEq } from './ascii-nocase.js';

/** Every join is within the detection's tenant: dictionaries are per tenant (migrations.ts). */
export const DETECTION_SELECT = `
SELECT d.id, t.name AS type, j.owner, j.repo, j.workflow, j.job, r.run_id, r.run_attempt, r.gh_job_id, coalesce(es.sample, '[]') AS expected_sample,
       d.ts, e.endpoint, e.host, e.is_ip, i.ip, d.direct_ip, d.port, d.protocol,
       p.name AS pname, p.norm_name, p.path, p.sha256, p.parent_chain, d.status, ru.rule_uid, d.ext,
       cv.matched_policy, cv.reason
FROM detections d
JOIN detection_types t ON t.id = d.type_id
JOIN jobs j ON j.tenant_id = d.tenant_id AND j.id = d.job_ref
JOIN runs r ON r.tenant_id = d.tenant_id AND r.id = d.run_ref
LEFT JOIN expected_samples es ON es.tenant_id = d.tenant_id AND es.id = r.expected_id
JOIN endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
JOIN processes p ON p.tenant_id = d.tenant_id AND p.id = d.process_id
LEFT JOIN ips i ON i.tenant_id = d.tenant_id AND i.id = d.ip_id
LEFT JOIN rules ru ON ru.tenant_id = d.tenant_id AND ru.id = d.rule_id
LEFT JOIN call_verdicts cv ON cv.tenant_id = d.tenant_id AND cv.run_ref = d.run_ref AND cv.endpoint_id = d.endpoint_id
  AND cv.process_id = d.process_id AND cv.blocked = (t.name = 'Domain-Blocked')`;

const BY_ID = `${DETECTION_SELECT} WHERE d.tenant_id = $1 AND d.id = ANY($2::bigint[])`;

/**
 * The rollup to total a filter from: type, status and process are in every one; a job filter needs
 * the job rollup, an endpoint filter the endpoint one, both the fine rollup.
 */
function totalRollup(f: DetectionFilter): string {
  const job = f.owner !== undefined || f.repo !== undefined || f.workflow !== undefined || f.job !== undefined;
  const endpoint = f.host !== undefined;
  if (job && endpoint) return 'detection_rollup';
  if (job) return 'rollup_process_job';
  if (endpoint) return 'rollup_process_endpoint';
  return 'rollup_process_day';
}

/** Parameters numbered as they are added ($1, $2, ...). */
export class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

export class PgDetectionRepository implements DetectionRepository {
  constructor(private readonly pool: PgPool) {}

  async tenantId(tenant: string): Promise<number | undefined> {
    return (await this.pool.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant])).rows[0]?.tenant_id;
  }

  private async learningRuns(): Promise<number> {
    const v = (await this.pool.query<{ value: string }>("SELECT value FROM meta WHERE key = 'learning_runs'")).rows[0]?.value;
    return Number(v ?? 5);
  }

  /** The WHERE clause shared by list and count over alias `a` (detections, or the rollup). */
  where(a: string, tenantId: number, f: DetectionFilter, p: Params): string {
    const tid = p.add(tenantId);
    const parts = [`${a}.tenant_id = ${tid}`];
    if (f.types?.length) parts.push(`${a}.type_id IN (SELECT id FROM detection_types WHERE name = ANY(${p.add(f.types)}::text[]))`);
    if (f.statuses?.length) parts.push(`${a}.status = ANY(${p.add(f.statuses.map((s) => STATUS_CODE[s]))}::smallint[])`);
    // owner and repo compare case-insensitively (GitHub names are); workflow and job exactly.
    const jobConds: string[] = [];
    if (f.owner !== undefined) jobConds.push(asciiNocaseEq('owner', p.add(f.owner)));
    if (f.repo !== undefined) jobConds.push(asciiNocaseEq('repo', p.add(f.repo)));
    if (f.workflow !== undefined) jobConds.push(`workflow = ${p.add(f.workflow)}`);
    if (f.job !== undefined) jobConds.push(`job = ${p.add(f.job)}`);
    if (jobConds.length) parts.push(`${a}.job_ref IN (SELECT id FROM jobs WHERE tenant_id = ${tid} AND ${jobConds.join(' AND ')})`);
    if (f.runId !== undefined) parts.push(`${a}.run_ref IN (SELECT id FROM runs WHERE tenant_id = ${tid} AND run_id = ${p.add(f.runId)})`);
    if (f.process !== undefined) parts.push(`${a}.process_id IN (SELECT id FROM processes WHERE tenant_id = ${tid} AND norm_name = ${p.add(f.process)})`);
    if (f.sha256 !== undefined) parts.push(`${a}.process_id IN (SELECT id FROM processes WHERE tenant_id = ${tid} AND lower(sha256) = ${p.add(f.sha256)})`);
    if (f.host !== undefined) {
      // a host without a port matches every port of that host (domain/filter.ts)
      const port = f.port !== undefined ? ` AND port = ${p.add(f.port)}` : '';
      parts.push(`${a}.endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = ${tid} AND host = ${p.add(f.host)}${port})`);
    }
    if (f.since !== undefined) parts.push(`${a}.ts >= ${p.add(f.since)}`);
    if (f.until !== undefined) parts.push(`${a}.ts < ${p.add(f.until)}`);
    return parts.join(' AND ');
  }

  /**
   * Exact total for a filter. The rollups hold every dimension except run and exact time, so when
   * neither is filtered the total is a sum over far fewer rows than a count of detections: the
   * coarsest rollup that keeps the filtered dimensions (analysis-rollups.ts; each is an exact
   * GROUP BY of detection_rollup). On the 1M bench store the per-day rollup has 216 rows and the
   * fine one 366,890, which took 140 ms to sum (EXPLAIN ANALYZE).
   */
  private async total(tenantId: number, f: DetectionFilter): Promise<number> {
    const p = new Params();
    const sql =
      f.runId === undefined && f.since === undefined && f.until === undefined
        ? `SELECT coalesce(sum(r.n), 0)::bigint AS n FROM ${totalRollup(f)} r WHERE ${this.where('r', tenantId, f, p)}`
        : `SELECT count(*) AS n FROM detections d WHERE ${this.where('d', tenantId, f, p)}`;
    return (await this.pool.query<{ n: number }>(sql, p.values)).rows[0]!.n;
  }

  /**
   * A page in two steps: its keys from the detections alone, then its rows by key (rowsByKey). As
   * one statement, DETECTION_SELECT with the filter and the ORDER BY, the planner searched the ten
   * tables' join orders on every call: 42-46 ms of planning for 2-4 ms of execution on a quiet
   * machine at 1M detections, 165-228 ms on a busy one (EXPLAIN (ANALYZE, SUMMARY); docs/dashboard-data.md).
   */
  async list(tenant: string, f: DetectionFilter, limit: number, cursor?: string | null, offset = 0): Promise<DetectionPage> {
    const key = detectionQueryKey(tenant, f);
    const cur = cursor ? decodeDetectionCursor(cursor, key) : null;
    const tid = await this.tenantId(tenant);
    if (tid === undefined) return { detections: [], total: 0, nextCursor: null };
    const p = new Params();
    let sql = `SELECT d.id FROM detections d WHERE ${this.where('d', tid, f, p)}`;
    if (cur) sql += ` AND (d.ts, d.id) < (${p.add(cur.ts)}::bigint, ${p.add(cur.id)}::bigint)`;
    sql += ` ORDER BY d.ts DESC, d.id DESC LIMIT ${p.add(limit + 1)} OFFSET ${p.add(offset)}`;
    const [total, keys] = await Promise.all([this.total(tid, f), this.pool.query<{ id: number }>(sql, p.values)]);
    const rows = await this.rowsByKey(tid, keys.rows.map((r) => Number(r.id)));
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      detections: page.map((r) => rowToDetection(tenant, r)),
      total,
      nextCursor: rows.length > limit && last ? encodeDetectionCursor(Number(last.ts), Number(last.id), key) : null,
    };
  }

  /**
   * The detections with these ids, in the order given (ids not in the tenant are left out). The
   * statement's text never changes, so it is named: each connection plans the ten-table join once
   * and reuses the plan (PostgreSQL plans a named statement's first five calls on their own values,
   * 6-9 ms each at 1M detections, then keeps a generic plan: 0.01 ms).
   */
  async rowsByKey(tid: number, ids: number[]): Promise<DetectionRow[]> {
    if (ids.length === 0) return [];
    const got = (await this.pool.query<DetectionRow>({ name: 'detections-by-id', text: BY_ID, values: [tid, ids] })).rows;
    const byId = new Map(got.map((r) => [Number(r.id), r]));
    return ids.map((id) => byId.get(id)).filter((r): r is DetectionRow => r !== undefined);
  }

  async get(tenant: string, id: string): Promise<Detection | null> {
    if (!/^\d{1,15}$/.test(id)) return null;
    const tid = await this.tenantId(tenant);
    if (tid === undefined) return null;
    const r = (await this.rowsByKey(tid, [Number(id)]))[0];
    return r ? rowToDetection(tenant, r) : null;
  }

  async stats(tenant: string): Promise<TenantStats> {
    const tid = (await this.tenantId(tenant)) ?? -1;
    const one = async (sql: string) => (await this.pool.query<{ n: number }>(sql, [tid])).rows[0]?.n ?? 0;
    const [c, observations, baselineEndpoints] = await Promise.all([
      new PgOverviewRepository(this.pool).counts(tenant),
      one('SELECT count(*) AS n FROM observations WHERE tenant_id = $1'),
      one('SELECT count(*) AS n FROM baseline WHERE tenant_id = $1 AND in_baseline'),
    ]);
    return { tenant, jobs: c.jobs, runs: c.runs, observations, baselineEndpoints, learningJobs: c.learningJobs, detections: c.detections, rules: c.rules };
  }

  async baselines(tenant: string, q: { owner?: string; repo?: string; workflow?: string; job?: string }): Promise<BaselineView[]> {
    const tid = await this.tenantId(tenant);
    if (tid === undefined) return [];
    const p = new Params();
    const conds = [`tenant_id = ${p.add(tid)}`];
    if (q.owner !== undefined) conds.push(asciiNocaseEq('owner', p.add(q.owner)));
    if (q.repo !== undefined) conds.push(asciiNocaseEq('repo', p.add(q.repo)));
    if (q.workflow !== undefined) conds.push(`workflow = ${p.add(q.workflow)}`);
    if (q.job !== undefined) conds.push(`job = ${p.add(q.job)}`);
    // byte order, as SQLite's BINARY collation sorts, whatever the database's locale
    const jobs = (
      await this.pool.query<{ id: number; owner: string; repo: string; workflow: string; job: string; completed_runs: number }>(
        `SELECT id, owner, repo, workflow, job, completed_runs FROM jobs WHERE ${conds.join(' AND ')}
         ORDER BY owner COLLATE "C", repo COLLATE "C", workflow COLLATE "C", job COLLATE "C"`,
        p.values,
      )
    ).rows;
    return this.jobViews(tid, jobs);
  }

  /** Jobs (rows of `jobs`) with their state and baseline entries, in the order given. */
  async jobViews(tid: number, jobs: { id: number; owner: string; repo: string; workflow: string; job: string; completed_runs: number }[]): Promise<BaselineView[]> {
    if (jobs.length === 0) return [];
    const learningRuns = await this.learningRuns();
    const entries = (
      await this.pool.query<{ job_ref: number; endpoint: string; runs_seen: number; in_baseline: boolean; source: string; first_ts: number; last_ts: number }>(
        `SELECT b.job_ref, e.endpoint, b.runs_seen, b.in_baseline, b.source, b.first_ts, b.last_ts FROM baseline b
         JOIN endpoints e ON e.tenant_id = b.tenant_id AND e.id = b.endpoint_id
         WHERE b.tenant_id = $1 AND b.job_ref = ANY($2::bigint[]) ORDER BY b.in_baseline DESC, e.endpoint COLLATE "C"`,
        [tid, jobs.map((j) => j.id)],
      )
    ).rows;
    const byJob = new Map<number, typeof entries>();
    for (const e of entries) {
      const list = byJob.get(e.job_ref) ?? [];
      list.push(e);
      byJob.set(e.job_ref, list);
    }
    return jobs.map((j) => ({
      owner: j.owner,
      repo: j.repo,
      workflow: j.workflow,
      job: j.job,
      completedRuns: j.completed_runs,
      learning: j.completed_runs < learningRuns,
      endpoints: (byJob.get(j.id) ?? []).map((e) => ({
        endpoint: e.endpoint,
        runsSeen: e.runs_seen,
        inBaseline: e.in_baseline,
        source: e.source,
        firstSeen: new Date(e.first_ts).toISOString(),
        lastSeen: new Date(e.last_ts).toISOString(),
      })),
    }));
  }

  async tenants(): Promise<string[]> {
    return (await this.pool.query<{ name: string }>('SELECT name FROM tenants ORDER BY name COLLATE "C"')).rows.map((r) => r.name);
  }
}
