import type { SqliteDatabase } from './db.js';
import { DETECTION_SELECT, type SqliteDetectionRepository } from './detection-repo.js';
import { rowToDetection, type DetectionRow } from '../detection-row.js';
import { assembleWindow, chooseDriver, MAX_DRIVER_IDS, windowScan, withoutDimension, type DimensionIds, type DriverColumn } from '../detection-window.js';
import type { DetectionFilter } from '../../domain/filter.js';
import { decodeKeyCursor, encodeKeyCursor } from '../dashboard-cursor.js';
import { callAddress, destination, type CallAddressRow, type DestinationJobRow } from '../destination-row.js';
import {
  boundedCount,
  type BaselineJobsPage,
  type CallAddress,
  type DashboardJobKey,
  type DashboardQueries,
  type DestinationsPage,
  type DetectionWindow,
  type DetectionWindowQuery,
} from '../dashboard-port.js';

/** The index of each driving dimension: (tenant_id, <id>, ts), rowid last, so in (ts, id) order. */
const DRIVER_INDEX: Record<DriverColumn, string> = {
  process_id: 'detections_by_process',
  endpoint_id: 'detections_by_endpoint_time',
  job_ref: 'detections_by_job_time',
};

const TIME_SCAN_SELECT = DETECTION_SELECT.replace(/\bFROM detections d\b/, 'FROM detections d INDEXED BY detections_by_time');

/** The dashboard's page queries on SQLite (contract: storage/dashboard-port.ts). */
export class SqliteDashboardQueries implements DashboardQueries {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly detections: SqliteDetectionRepository,
  ) {}

  async detectionWindow(tenant: string, q: DetectionWindowQuery): Promise<DetectionWindow> {
    const scan = windowScan(tenant, q);
    const tid = this.detections.tenantId(tenant);
    const none = { detections: [], count: q.countUpTo ? boundedCount(0, q.countUpTo) : null, nextCursor: null, prevCursor: null };
    if (tid === undefined) return none;
    const driver = chooseDriver(this.dimensions(tid, q.filter));
    if (driver === 'empty') return none;
    const w = this.detections.where(tid, q.filter);
    const dir = scan.dir === 'older' ? 'DESC' : 'ASC';
    // row values let SQLite seek an index ending in (ts, rowid) straight to the cursor
    const after = scan.cursor ? ` AND (d.ts, d.id) ${scan.dir === 'older' ? '<' : '>'} (?, ?)` : '';
    const afterParams = scan.cursor ? [scan.cursor.ts, scan.cursor.id] : [];
    let sql: string;
    let params: unknown[];
    if (driver) {
      // one ordered index range per id, limit + 1 rows each, merged (detection-window.ts)
      const bw = this.detections.where(tid, withoutDimension(q.filter, driver.col));
      const branch = `SELECT * FROM (SELECT d.id, d.ts FROM detections d INDEXED BY ${DRIVER_INDEX[driver.col]} WHERE ${bw.sql} AND d.${driver.col} = ?${after} ORDER BY d.ts ${dir}, d.id ${dir} LIMIT ?)`;
      sql = `${DETECTION_SELECT} WHERE d.id IN (SELECT id FROM (${driver.ids.map(() => branch).join(' UNION ALL ')}) ORDER BY ts ${dir}, id ${dir} LIMIT ?)
             ORDER BY d.ts ${dir}, d.id ${dir}`;
      params = [...driver.ids.flatMap((id) => [...bw.params, id, ...afterParams, q.limit + 1]), q.limit + 1];
    } else {
      // named, so that no index the statistics happen to favour makes the planner sort every match
      sql = `${TIME_SCAN_SELECT} WHERE ${w.sql}${after} ORDER BY d.ts ${dir}, d.id ${dir} LIMIT ?`;
      params = [...w.params, ...afterParams, q.limit + 1];
    }
    const rows = this.db.prepare(sql).all(...params) as DetectionRow[];
    const { page, nextCursor, prevCursor } = assembleWindow(rows, q.limit, scan);
    let count = null;
    if (q.countUpTo) {
      // reads at most countUpTo + 1 matching index entries, however many match
      const seen = this.db.prepare(`SELECT count(*) FROM (SELECT 1 FROM detections d WHERE ${w.sql} LIMIT ?)`).pluck().get(...w.params, q.countUpTo + 1) as number;
      count = boundedCount(seen, q.countUpTo);
    }
    return { detections: page.map((r) => rowToDetection(tenant, r)), count, nextCursor, prevCursor };
  }

  /** The dictionary ids a filter names, per dimension that has an index in time order. */
  private dimensions(tid: number, f: DetectionFilter): DimensionIds[] {
    const out: DimensionIds[] = [];
    const ids = (col: DriverColumn, sql: string, params: unknown[]) => {
      const got = this.db.prepare(`${sql} LIMIT ${MAX_DRIVER_IDS + 1}`).pluck().all(...params) as number[];
      out.push({ col, ids: got.length > MAX_DRIVER_IDS ? null : got });
    };
    if (f.process !== undefined || f.sha256 !== undefined) {
      const c: string[] = [];
      const p: unknown[] = [];
      if (f.process !== undefined) c.push('norm_name = ?'), p.push(f.process);
      if (f.sha256 !== undefined) c.push('sha256 = ? COLLATE NOCASE'), p.push(f.sha256);
      ids('process_id', `SELECT id FROM processes WHERE ${c.join(' AND ')}`, p);
    }
    if (f.host !== undefined) {
      ids('endpoint_id', `SELECT id FROM endpoints WHERE host = ?${f.port !== undefined ? ' AND port = ?' : ''}`, f.port !== undefined ? [f.host, f.port] : [f.host]);
    }
    const jc: string[] = [];
    const jp: unknown[] = [tid];
    for (const [col, v, nocase] of [['owner', f.owner, true], ['repo', f.repo, true], ['workflow', f.workflow, false], ['job', f.job, false]] as const) {
      if (v !== undefined) jc.push(nocase ? `${col} = ? COLLATE NOCASE` : `${col} = ?`), jp.push(v);
    }
    if (jc.length) ids('job_ref', `SELECT id FROM jobs WHERE tenant_id = ? AND ${jc.join(' AND ')}`, jp);
    return out;
  }

  async destinations(tenant: string, q: { limit: number; cursor?: string | null; jobsPerDestination: number }): Promise<DestinationsPage> {
    const after = q.cursor ? decodeKeyCursor(q.cursor, 'dst', 1)[0]! : null;
    const tid = this.detections.tenantId(tenant);
    if (tid === undefined) return { destinations: [], nextCursor: null };
    // The endpoint dictionary is shared by tenants: an endpoint is the tenant's when one of its calls is.
    const eps = this.db
      .prepare(
        `SELECT e.id, e.endpoint, e.host, e.port, e.is_ip FROM endpoints e
         WHERE e.endpoint > ? AND EXISTS (SELECT 1 FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
                                          WHERE o.endpoint_id = e.id AND j.tenant_id = ?)
         ORDER BY e.endpoint LIMIT ?`,
      )
      .all(after ?? '', tid, q.limit + 1) as { id: number; endpoint: string; host: string; port: number | null; is_ip: number }[];
    const page = eps.slice(0, q.limit);
    if (page.length === 0) return { destinations: [], nextCursor: null };
    const jobs = this.db
      .prepare(
        `SELECT o.endpoint_id, j.owner, j.repo, j.workflow, j.job, count(DISTINCT r.run_id || char(0) || r.run_attempt) AS runs,
                max(o.blocked) AS blocked, max(o.first_ts) AS last_ts, b.in_baseline, b.runs_seen, b.source
         FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
         LEFT JOIN baseline b ON b.job_ref = j.id AND b.endpoint_id = o.endpoint_id
         WHERE o.endpoint_id IN (${page.map(() => '?').join(',')}) AND j.tenant_id = ?
         GROUP BY o.endpoint_id, j.id
         ORDER BY o.endpoint_id, last_ts DESC, j.owner, j.repo, j.workflow, j.job`,
      )
      .all(...page.map((e) => e.id), tid) as DestinationJobRow[];
    const destinations = page.map((e) => destination(e, jobs.filter((j) => j.endpoint_id === e.id), q.jobsPerDestination));
    const last = page[page.length - 1]!;
    return { destinations, nextCursor: eps.length > q.limit ? encodeKeyCursor('dst', [last.endpoint]) : null };
  }

  async callAddresses(tenant: string, q: { endpoints: readonly string[]; jobs?: readonly DashboardJobKey[] }): Promise<CallAddress[]> {
    const tid = this.detections.tenantId(tenant);
    if (tid === undefined || q.endpoints.length === 0 || q.jobs?.length === 0) return [];
    // Lists go in as one JSON array each (json_each): a page's jobs can hold more endpoints than
    // SQLite takes bound variables (32,766).
    const eps = this.db.prepare('SELECT id FROM endpoints WHERE endpoint IN (SELECT value FROM json_each(?))').pluck().all(JSON.stringify(q.endpoints)) as number[];
    if (eps.length === 0) return [];
    let jobIds: number[] | null = null;
    if (q.jobs) {
      const one = this.db.prepare('SELECT id FROM jobs WHERE tenant_id = ? AND owner = ? AND repo = ? AND workflow = ? AND job = ?').pluck();
      jobIds = q.jobs.map((j) => one.get(tid, j.owner, j.repo, j.workflow, j.job) as number | undefined).filter((id): id is number => id !== undefined);
      if (jobIds.length === 0) return [];
    }
    const perJob = jobIds !== null;
    const byJob = perJob ? ' AND job_ref IN (SELECT value FROM json_each(@jobs))' : '';
    // observations keep the first call of a run per process; detections keep every anomalous call,
    // and every call at a risky range's address raises one (detection/engine.ts)
    const rows = this.db
      .prepare(
        `SELECT ${perJob ? 'j.owner, j.repo, j.workflow, j.job' : 'NULL AS owner, NULL AS repo, NULL AS workflow, NULL AS job'}, e.endpoint, i.ip
         FROM (SELECT r.job_ref, o.endpoint_id, o.ip_id FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs jt ON jt.id = r.job_ref
                WHERE o.endpoint_id IN (SELECT value FROM json_each(@eps)) AND o.ip_id IS NOT NULL AND jt.tenant_id = @tid${byJob}
               UNION
               SELECT job_ref, endpoint_id, ip_id FROM detections
                WHERE tenant_id = @tid AND endpoint_id IN (SELECT value FROM json_each(@eps)) AND ip_id <> 0${byJob}) x
         JOIN endpoints e ON e.id = x.endpoint_id JOIN ips i ON i.id = x.ip_id${perJob ? ' JOIN jobs j ON j.id = x.job_ref' : ''}
         GROUP BY ${perJob ? 'x.job_ref, ' : ''}e.endpoint, i.ip
         ORDER BY e.endpoint, i.ip${perJob ? ', j.owner, j.repo, j.workflow, j.job' : ''}`,
      )
      .all({ tid, eps: JSON.stringify(eps), ...(perJob ? { jobs: JSON.stringify(jobIds) } : {}) }) as CallAddressRow[];
    return rows.map(callAddress);
  }

  async baselineJobs(tenant: string, q: { limit: number; cursor?: string | null; owner?: string; repo?: string }): Promise<BaselineJobsPage> {
    const after = q.cursor ? decodeKeyCursor(q.cursor, 'job', 4) : null;
    const tid = this.detections.tenantId(tenant);
    if (tid === undefined) return { jobs: [], nextCursor: null };
    const conds = ['tenant_id = ?'];
    const params: unknown[] = [tid];
    if (q.owner !== undefined) {
      conds.push('owner = ? COLLATE NOCASE');
      params.push(q.owner);
    }
    if (q.repo !== undefined) {
      conds.push('repo = ? COLLATE NOCASE');
      params.push(q.repo);
    }
    if (after) {
      conds.push('(owner, repo, workflow, job) > (?, ?, ?, ?)');
      params.push(...after);
    }
    const rows = this.db
      .prepare(`SELECT id, owner, repo, workflow, job, completed_runs FROM jobs WHERE ${conds.join(' AND ')} ORDER BY owner, repo, workflow, job LIMIT ?`)
      .all(...params, q.limit + 1) as { id: number; owner: string; repo: string; workflow: string; job: string; completed_runs: number }[];
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      jobs: this.detections.jobViews(page),
      nextCursor: rows.length > q.limit && last ? encodeKeyCursor('job', [last.owner, last.repo, last.workflow, last.job]) : null,
    };
  }
}
