import type { PgPool } from './pool.js';
import { Params, type PgDetectionRepository } from './detection-repo.js';
import { rowToDetection, type DetectionRow } from '../detection-row.js';
import { assembleWindow, chooseDriver, MAX_DRIVER_IDS, windowScan, withoutDimension, type DimensionIds, type DriverColumn } from '../detection-window.js';
import type { DetectionFilter } from '../../domain/filter.js';
import { decodeKeyCursor, encodeKeyCursor } from '../dashboard-cursor.js';
import { callAddress, destination, type CallAddressRow, type DestinationJobRow } from '../destination-row.js';
import { asciiNocaseEq } from './ascii-nocase.js';
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

/**
 * The dashboard's page queries on PostgreSQL (contract: storage/dashboard-port.ts). Text keys sort
 * in byte order (COLLATE "C"), as SQLite's BINARY collation does, so both stores page alike.
 */
export class PgDashboardQueries implements DashboardQueries {
  constructor(
    private readonly pool: PgPool,
    private readonly detections: PgDetectionRepository,
  ) {}

  async detectionWindow(tenant: string, q: DetectionWindowQuery): Promise<DetectionWindow> {
    const scan = windowScan(tenant, q);
    const tid = await this.detections.tenantId(tenant);
    const none = { detections: [], count: q.countUpTo ? boundedCount(0, q.countUpTo) : null, nextCursor: null, prevCursor: null };
    if (tid === undefined) return none;
    const driver = chooseDriver(await this.dimensions(tid, q.filter));
    if (driver === 'empty') return none;
    const dir = scan.dir === 'older' ? 'DESC' : 'ASC';
    const p = new Params();
    // a row comparison matches the (…, ts DESC, id DESC) indexes: one index range
    const after = () => (scan.cursor ? ` AND (d.ts, d.id) ${scan.dir === 'older' ? '<' : '>'} (${p.add(scan.cursor.ts)}::bigint, ${p.add(scan.cursor.id)}::bigint)` : '');
    // Two steps: the page's keys from one table (a plan found at once), then the page's rows by
    // primary key (a named statement, planned once per connection: detection-repo.ts). As one
    // statement the ten-table join of DETECTION_SELECT left the planner to search join orders every
    // call (165-228 ms of planning per page) and, around a driven page, to join all 1M detections
    // before picking 51 (8.5 s); EXPLAIN ANALYZE on the bench store, busy machine.
    let keySql: string;
    if (driver) {
      // one ordered index range per id, limit + 1 rows each, merged (detection-window.ts)
      const branches = driver.ids.map(
        (id) => `(SELECT d.id, d.ts FROM detections d WHERE ${this.detections.where('d', tid, withoutDimension(q.filter, driver.col), p)} AND d.${driver.col} = ${p.add(id)}${after()}
                  ORDER BY d.ts ${dir}, d.id ${dir} LIMIT ${p.add(q.limit + 1)})`,
      );
      keySql = `SELECT id, ts FROM (${branches.join(' UNION ALL ')}) m ORDER BY ts ${dir}, id ${dir} LIMIT ${p.add(q.limit + 1)}`;
    } else {
      keySql = `SELECT d.id, d.ts FROM detections d WHERE ${this.detections.where('d', tid, q.filter, p)}${after()} ORDER BY d.ts ${dir}, d.id ${dir} LIMIT ${p.add(q.limit + 1)}`;
    }
    const counting = q.countUpTo ? this.probeCount(tid, q, q.countUpTo, driver) : Promise.resolve(null);
    const [rows, count] = await Promise.all([this.rowsInOrder(tid, keySql, p.values), counting]);
    const { page, nextCursor, prevCursor } = assembleWindow(rows.map((r) => ({ ...r, ts: Number(r.ts), id: Number(r.id) })), q.limit, scan);
    return { detections: page.map((r) => rowToDetection(tenant, r)), count, nextCursor, prevCursor };
  }

  /** The dictionary ids a filter names, per dimension that has an index in time order. */
  private async dimensions(tid: number, f: DetectionFilter): Promise<DimensionIds[]> {
    const out: DimensionIds[] = [];
    const ids = async (col: DriverColumn, where: string[], p: Params, table: string) => {
      const sql = `SELECT id FROM ${table} WHERE tenant_id = ${p.add(tid)} AND ${where.join(' AND ')} LIMIT ${MAX_DRIVER_IDS + 1}`;
      const got = (await this.pool.query<{ id: number }>(sql, p.values)).rows.map((r) => Number(r.id));
      out.push({ col, ids: got.length > MAX_DRIVER_IDS ? null : got });
    };
    if (f.process !== undefined || f.sha256 !== undefined) {
      const p = new Params();
      const c: string[] = [];
      if (f.process !== undefined) c.push(`norm_name = ${p.add(f.process)}`);
      if (f.sha256 !== undefined) c.push(`lower(sha256) = ${p.add(f.sha256)}`);
      await ids('process_id', c, p, 'processes');
    }
    if (f.host !== undefined) {
      const p = new Params();
      const c = [`host = ${p.add(f.host)}`];
      if (f.port !== undefined) c.push(`port = ${p.add(f.port)}`);
      await ids('endpoint_id', c, p, 'endpoints');
    }
    const p = new Params();
    const jc: string[] = [];
    if (f.owner !== undefined) jc.push(asciiNocaseEq('owner', p.add(f.owner)));
    if (f.repo !== undefined) jc.push(asciiNocaseEq('repo', p.add(f.repo)));
    if (f.workflow !== undefined) jc.push(`workflow = ${p.add(f.workflow)}`);
    if (f.job !== undefined) jc.push(`job = ${p.add(f.job)}`);
    if (jc.length) await ids('job_ref', jc, p, 'jobs');
    return out;
  }

  /** The detections whose keys keySql lists, in its order. */
  private async rowsInOrder(tid: number, keySql: string, values: unknown[]): Promise<DetectionRow[]> {
    const keys = (await this.pool.query<{ id: number }>(keySql, values)).rows.map((r) => Number(r.id));
    return this.detections.rowsByKey(tid, keys);
  }

  /**
   * Reads at most bound + 1 matching index entries (per driving id), however many match. A driven
   * filter is counted per id as well: as one IN (...) the planner hashed every detection of the
   * tenant first (5.3 s for a process filter on 1M, bench/dashboard-queries.ts).
   */
  private async probeCount(tid: number, q: DetectionWindowQuery, bound: number, driver: { col: DriverColumn; ids: number[] } | null) {
    const p = new Params();
    let sql: string;
    if (driver) {
      const f = withoutDimension(q.filter, driver.col);
      const parts = driver.ids.map(
        (id) => `(SELECT count(*) FROM (SELECT 1 FROM detections d WHERE ${this.detections.where('d', tid, f, p)} AND d.${driver.col} = ${p.add(id)} LIMIT ${p.add(bound + 1)}) x)`,
      );
      sql = `SELECT (${parts.join(' + ')})::int AS n`;
    } else {
      sql = `SELECT count(*)::int AS n FROM (SELECT 1 FROM detections d WHERE ${this.detections.where('d', tid, q.filter, p)} LIMIT ${p.add(bound + 1)}) x`;
    }
    const seen = (await this.pool.query<{ n: number }>(sql, p.values)).rows[0]!.n;
    return boundedCount(seen, bound);
  }

  async destinations(tenant: string, q: { limit: number; cursor?: string | null; jobsPerDestination: number }): Promise<DestinationsPage> {
    const after = q.cursor ? decodeKeyCursor(q.cursor, 'dst', 1)[0]! : null;
    const tid = await this.detections.tenantId(tenant);
    if (tid === undefined) return { destinations: [], nextCursor: null };
    const eps = (
      await this.pool.query<{ id: number; endpoint: string; host: string; port: number | null; is_ip: boolean }>(
        `SELECT e.id, e.endpoint, e.host, e.port, e.is_ip FROM endpoints e
         WHERE e.tenant_id = $1 AND e.endpoint COLLATE "C" > $2
           AND EXISTS (SELECT 1 FROM observations o WHERE o.tenant_id = $1 AND o.endpoint_id = e.id)
         ORDER BY e.endpoint COLLATE "C" LIMIT $3`,
        [tid, after ?? '', q.limit + 1],
      )
    ).rows;
    const page = eps.slice(0, q.limit);
    if (page.length === 0) return { destinations: [], nextCursor: null };
    const jobs = (
      await this.pool.query<DestinationJobRow>(
        `SELECT o.endpoint_id, j.owner, j.repo, j.workflow, j.job, count(DISTINCT (r.run_id, r.run_attempt))::int AS runs,
                bool_or(o.blocked) AS blocked, max(o.first_ts) AS last_ts, b.in_baseline, b.runs_seen, b.source
         FROM observations o
         JOIN runs r ON r.tenant_id = o.tenant_id AND r.id = o.run_ref
         JOIN jobs j ON j.tenant_id = o.tenant_id AND j.id = r.job_ref
         LEFT JOIN baseline b ON b.tenant_id = o.tenant_id AND b.job_ref = j.id AND b.endpoint_id = o.endpoint_id
         WHERE o.tenant_id = $1 AND o.endpoint_id = ANY($2::bigint[])
         GROUP BY o.endpoint_id, j.tenant_id, j.id, b.in_baseline, b.runs_seen, b.source
         ORDER BY o.endpoint_id, last_ts DESC, j.owner COLLATE "C", j.repo COLLATE "C", j.workflow COLLATE "C", j.job COLLATE "C"`,
        [tid, page.map((e) => e.id)],
      )
    ).rows;
    const destinations = page.map((e) => destination(e, jobs.filter((j) => Number(j.endpoint_id) === Number(e.id)), q.jobsPerDestination));
    const last = page[page.length - 1]!;
    return { destinations, nextCursor: eps.length > q.limit ? encodeKeyCursor('dst', [last.endpoint]) : null };
  }

  async callAddresses(tenant: string, q: { endpoints: readonly string[]; jobs?: readonly DashboardJobKey[] }): Promise<CallAddress[]> {
    const tid = await this.detections.tenantId(tenant);
    if (tid === undefined || q.endpoints.length === 0 || q.jobs?.length === 0) return [];
    const eps = (await this.pool.query<{ id: string }>('SELECT id FROM endpoints WHERE tenant_id = $1 AND endpoint = ANY($2::text[])', [tid, [...q.endpoints]])).rows.map((r) => r.id);
    if (eps.length === 0) return [];
    let jobIds: string[] | null = null;
    if (q.jobs) {
      jobIds = (
        await this.pool.query<{ id: string }>(
          `SELECT j.id FROM jobs j JOIN unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS k(owner, repo, workflow, job)
             ON j.owner = k.owner AND j.repo = k.repo AND j.workflow = k.workflow AND j.job = k.job
           WHERE j.tenant_id = $1`,
          [tid, q.jobs.map((j) => j.owner), q.jobs.map((j) => j.repo), q.jobs.map((j) => j.workflow), q.jobs.map((j) => j.job)],
        )
      ).rows.map((r) => r.id);
      if (jobIds.length === 0) return [];
    }
    const perJob = jobIds !== null;
    const byJob = perJob ? ' AND job_ref = ANY($3::bigint[])' : '';
    // observations keep the first call of a run per process; detections keep every anomalous call,
    // and every call at a risky range's address raises one (detection/engine.ts)
    const rows = (
      await this.pool.query<CallAddressRow>(
        `SELECT ${perJob ? 'j.owner, j.repo, j.workflow, j.job' : 'NULL AS owner, NULL AS repo, NULL AS workflow, NULL AS job'}, e.endpoint, i.ip
         FROM (SELECT r.job_ref, o.endpoint_id, o.ip_id FROM observations o JOIN runs r ON r.tenant_id = o.tenant_id AND r.id = o.run_ref
                WHERE o.tenant_id = $1 AND o.endpoint_id = ANY($2::bigint[]) AND o.ip_id IS NOT NULL${byJob}
               UNION
               SELECT job_ref, endpoint_id, ip_id FROM detections WHERE tenant_id = $1 AND endpoint_id = ANY($2::bigint[]) AND ip_id <> 0${byJob}) x
         JOIN endpoints e ON e.tenant_id = $1 AND e.id = x.endpoint_id
         JOIN ips i ON i.tenant_id = $1 AND i.id = x.ip_id${perJob ? ' JOIN jobs j ON j.tenant_id = $1 AND j.id = x.job_ref' : ''}
         GROUP BY ${perJob ? 'j.id, j.owner, j.repo, j.workflow, j.job, ' : ''}e.endpoint, i.ip
         ORDER BY e.endpoint COLLATE "C", i.ip COLLATE "C"${perJob ? ', j.owner COLLATE "C", j.repo COLLATE "C", j.workflow COLLATE "C", j.job COLLATE "C"' : ''}`,
        perJob ? [tid, eps, jobIds] : [tid, eps],
      )
    ).rows;
    return rows.map(callAddress);
  }

  async baselineJobs(tenant: string, q: { limit: number; cursor?: string | null; owner?: string; repo?: string }): Promise<BaselineJobsPage> {
    const after = q.cursor ? decodeKeyCursor(q.cursor, 'job', 4) : null;
    const tid = await this.detections.tenantId(tenant);
    if (tid === undefined) return { jobs: [], nextCursor: null };
    const p = new Params();
    const conds = [`tenant_id = ${p.add(tid)}`];
    if (q.owner !== undefined) conds.push(asciiNocaseEq('owner', p.add(q.owner)));
    if (q.repo !== undefined) conds.push(asciiNocaseEq('repo', p.add(q.repo)));
    if (after) {
      conds.push(
        `(owner COLLATE "C", repo COLLATE "C", workflow COLLATE "C", job COLLATE "C") > (${p.add(after[0])}, ${p.add(after[1])}, ${p.add(after[2])}, ${p.add(after[3])})`,
      );
    }
    const rows = (
      await this.pool.query<{ id: number; owner: string; repo: string; workflow: string; job: string; completed_runs: number }>(
        `SELECT id, owner, repo, workflow, job, completed_runs FROM jobs WHERE ${conds.join(' AND ')}
         ORDER BY owner COLLATE "C", repo COLLATE "C", workflow COLLATE "C", job COLLATE "C" LIMIT ${p.add(q.limit + 1)}`,
        p.values,
      )
    ).rows;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      jobs: await this.detections.jobViews(tid, page),
      nextCursor: rows.length > q.limit && last ? encodeKeyCursor('job', [last.owner, last.repo, last.workflow, last.job]) : null,
    };
  }
}
