import { classifyIndicator, type IndicatorKind } from '../../domain/indicator.js';
import { iso, toEndpointCall, toRunSummary } from '../inventory-rows.js';
import { decodeInventoryCursor as decodeCursor, encodeInventoryCursor as encodeCursor } from '../inventory-cursor.js';
import type {
  EndpointCallsPage, InventoryRepository, IocReport, OrgSummary, RepoUsageReport, RunsPage,
} from '../inventory-port.js';
import type { SqliteDatabase } from './db.js';

/**
 * The inventory port (storage/inventory-port.ts) on SQLite. The endpoint/ip/process dictionaries
 * are shared by tenants, but every fact (observation, baseline entry, run) is reached through a job
 * of the requested tenant only.
 */

interface EndpointMatcher {
  indicator: string;
  kind: IndicatorKind;
  /** matching endpoint dictionary ids (capped) */
  endpointIds: number[];
  /** true when more endpoints matched than the cap */
  truncated: boolean;
}

interface EndpointRow {
  id: number;
  endpoint: string;
  host: string;
  port: number | null;
  is_ip: number;
}

const MAX_ENDPOINT_IDS = 2000;


export class SqliteInventoryRepository implements InventoryRepository {
  constructor(private readonly db: SqliteDatabase) {}

  private tenantId(tenant: string): number | undefined {
    return this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
  }

  /** Resolves an indicator to endpoint dictionary ids that this tenant actually observed or baselined. */
  private matchEndpoints(tenant: string, indicator: string): EndpointMatcher {
    const c = classifyIndicator(indicator);
    const tid = this.tenantId(tenant);
    if (tid === undefined) return { indicator: c.norm, kind: c.kind, endpointIds: [], truncated: false };
    let rows: EndpointRow[];
    if (c.kind === 'endpoint') {
      rows = this.db.prepare('SELECT id, endpoint, host, port, is_ip FROM endpoints WHERE endpoint = ?').all(c.norm) as EndpointRow[];
    } else if (c.kind === 'ip') {
      rows = this.db.prepare('SELECT id, endpoint, host, port, is_ip FROM endpoints WHERE is_ip = 1 AND host = ?').all(c.norm) as EndpointRow[];
    } else if (c.kind === 'domain') {
      rows = this.db
        .prepare("SELECT id, endpoint, host, port, is_ip FROM endpoints WHERE is_ip = 0 AND (host = ? OR host LIKE ? ESCAPE '\\')")
        .all(c.norm, `%.${c.norm.replace(/[%_\\]/g, '\\$&')}`) as EndpointRow[];
    } else if (c.kind === 'substring') {
      rows = this.db
        .prepare("SELECT id, endpoint, host, port, is_ip FROM endpoints WHERE endpoint LIKE ? ESCAPE '\\'")
        .all(`%${c.norm.replace(/[%_\\]/g, '\\$&')}%`) as EndpointRow[];
    } else {
      rows = this.db.prepare('SELECT id, endpoint, host, port, is_ip FROM endpoints').all() as EndpointRow[];
    }
    // The dictionary is shared by tenants: only endpoints this tenant used may fill the cap, or
    // another tenant's endpoints would crowd this tenant's own out of the answer.
    const used = this.db
      .prepare(
        `SELECT EXISTS (SELECT 1 FROM detections WHERE tenant_id = @tid AND endpoint_id = @eid)
             OR EXISTS (SELECT 1 FROM baseline b JOIN jobs j ON j.id = b.job_ref WHERE j.tenant_id = @tid AND b.endpoint_id = @eid)
             OR EXISTS (SELECT 1 FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref WHERE o.endpoint_id = @eid AND j.tenant_id = @tid)`,
      )
      .pluck();
    const ids: number[] = [];
    for (const r of rows) {
      if (!c.test({ endpoint: r.endpoint, host: r.host, isIp: r.is_ip === 1 }) || used.get({ tid, eid: r.id }) !== 1) continue;
      ids.push(r.id);
      if (ids.length > MAX_ENDPOINT_IDS) break;
    }
    return { indicator: c.norm, kind: c.kind, endpointIds: ids.slice(0, MAX_ENDPOINT_IDS), truncated: ids.length > MAX_ENDPOINT_IDS };
  }

  private idList(ids: number[]): string {
    return ids.length ? ids.join(',') : '-1';
  }

  /**
   * The ips dictionary ids an IP or CIDR indicator names (capped like endpoints); none for other kinds.
   * The dictionary is shared by tenants, and unlike endpoints no index tells cheaply which addresses
   * this tenant used, so a range naming more than the cap is answered for the first ones, truncated.
   */
  private matchIps(indicator: string): { ids: number[]; truncated: boolean } {
    const c = classifyIndicator(indicator);
    if (!c.ip) return { ids: [], truncated: false };
    const rows = (c.kind === 'ip' ? this.db.prepare('SELECT id, ip FROM ips WHERE ip = ?').all(c.norm) : this.db.prepare('SELECT id, ip FROM ips ORDER BY id').all()) as { id: number; ip: string }[];
    const ids = rows.filter((r) => c.ip!(r.ip)).map((r) => r.id);
    return { ids: ids.slice(0, MAX_ENDPOINT_IDS), truncated: ids.length > MAX_ENDPOINT_IDS };
  }

  /**
   * The rows of `alias` (observations or detections) an indicator selects: its endpoints, and for an
   * IP or CIDR (ipIds from matchIps) the calls that named a domain but went to a matching address
   * too: an investigator looking up an address must see the named calls that reached it.
   */
  private endpointOrAddress(alias: 'o' | 'd', endpointIds: number[], ipIds: number[]): string {
    const ids = this.idList(endpointIds);
    return ipIds.length ? `(${alias}.endpoint_id IN (${ids}) OR ${alias}.ip_id IN (${this.idList(ipIds)}))` : `${alias}.endpoint_id IN (${ids})`;
  }

  /** Baseline entries and observed calls matching an indicator, optionally within one owner. */
  async checkIocInBaseline(tenant: string, q: { indicator: string; owner?: string; limit: number }): Promise<IocReport> {
    const m = this.matchEndpoints(tenant, q.indicator);
    const tid = this.tenantId(tenant) ?? -1;
    const ids = this.idList(m.endpointIds);
    // an IP or CIDR also finds calls and detections that named a domain but went to a matching address
    const byIp = this.matchIps(q.indicator);
    const obsWhere = this.endpointOrAddress('o', m.endpointIds, byIp.ids);
    const detWhere = this.endpointOrAddress('d', m.endpointIds, byIp.ids);
    const ownerCond = q.owner !== undefined ? 'AND j.owner = ? COLLATE NOCASE' : '';
    const ownerParams = q.owner !== undefined ? [q.owner] : [];
    const baselineRows = this.db
      .prepare(
        `SELECT j.owner, j.repo, j.workflow, j.job, e.endpoint, b.runs_seen, b.in_baseline, b.source, b.first_ts, b.last_ts
         FROM baseline b JOIN jobs j ON j.id = b.job_ref JOIN endpoints e ON e.id = b.endpoint_id
         WHERE j.tenant_id = ? ${ownerCond} AND b.endpoint_id IN (${ids})
         ORDER BY b.in_baseline DESC, b.runs_seen DESC, j.owner, j.repo, j.workflow, j.job, e.endpoint`,
      )
      .all(tid, ...ownerParams) as { owner: string; repo: string; workflow: string; job: string; endpoint: string; runs_seen: number; in_baseline: number; source: string; first_ts: number; last_ts: number }[];
    const callRows = this.db
      .prepare(
        `SELECT e.endpoint, j.owner, j.repo, count(DISTINCT o.run_ref) AS runs,
                count(DISTINCT CASE WHEN o.blocked = 1 THEN o.run_ref END) AS blocked_runs,
                json_group_array(DISTINCT p.name) AS processes, min(o.first_ts) AS first_ts, max(o.first_ts) AS last_ts
         FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
         JOIN endpoints e ON e.id = o.endpoint_id JOIN processes p ON p.id = o.process_id
         WHERE ${obsWhere} AND j.tenant_id = ? ${ownerCond}
         GROUP BY e.endpoint, j.owner, j.repo ORDER BY runs DESC, e.endpoint, j.owner, j.repo`,
      )
      .all(tid, ...ownerParams) as { endpoint: string; owner: string; repo: string; runs: number; blocked_runs: number; processes: string; first_ts: number; last_ts: number }[];
    const det = this.db
      .prepare(
        `SELECT coalesce((SELECT ds.status FROM detection_status ds WHERE ds.id = d.id), 0) AS status, count(*) AS n FROM detections d ${q.owner !== undefined ? 'JOIN jobs j ON j.id = d.job_ref' : ''}
         WHERE d.tenant_id = ? AND ${detWhere} ${ownerCond} GROUP BY 1`,
      )
      .all(tid, ...ownerParams) as { status: number; n: number }[];
    const counts = { new: 0, suppressed: 0, resolved: 0 };
    for (const r of det) counts[(['new', 'suppressed', 'resolved'] as const)[r.status] ?? 'new'] += r.n;
    return {
      kind: m.kind,
      truncated: m.truncated || byIp.truncated,
      baseline_total: baselineRows.length,
      baseline: baselineRows.slice(0, q.limit).map((r) => ({
        owner: r.owner,
        repo: r.repo,
        workflow: r.workflow,
        job: r.job,
        endpoint: r.endpoint,
        runs_seen: r.runs_seen,
        in_baseline: r.in_baseline === 1,
        source: r.source,
        first_seen: iso(r.first_ts),
        last_seen: iso(r.last_ts),
      })),
      calls_total: callRows.length,
      calls: callRows.slice(0, q.limit).map((r) => ({
        endpoint: r.endpoint,
        owner: r.owner,
        repo: r.repo,
        runs: r.runs,
        blocked_runs: r.blocked_runs,
        processes: namesOf(r.processes),
        first_seen: iso(r.first_ts),
        last_seen: iso(r.last_ts),
      })),
      detections: counts,
    };
  }

  /** Every (run, endpoint, process variant, blocked) observation of an endpoint tenant-wide, newest first, paged. */
  async findEndpointCalls(tenant: string, q: { endpoint: string; owner?: string; limit: number; cursor?: string | null }): Promise<EndpointCallsPage> {
    const cur = q.cursor ? decodeCursor(q.cursor, 5) : null;
    const m = this.matchEndpoints(tenant, q.endpoint);
    const tid = this.tenantId(tenant) ?? -1;
    const byIp = this.matchIps(q.endpoint);
    const obsWhere = this.endpointOrAddress('o', m.endpointIds, byIp.ids);
    const ownerCond = q.owner !== undefined ? 'AND j.owner = ? COLLATE NOCASE' : '';
    const ownerParams = q.owner !== undefined ? [q.owner] : [];
    const base = `FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
      WHERE ${obsWhere} AND j.tenant_id = ? ${ownerCond}`;
    const agg = this.db.prepare(`SELECT count(*) AS n, count(DISTINCT o.run_ref) AS runs ${base}`).get(tid, ...ownerParams) as { n: number; runs: number };
    let pageCond = '';
    const pageParams: (string | number)[] = [];
    if (cur) {
      // keyset on the observation's whole key, blocked included: a call both allowed and blocked in
      // one run at one time is two observations, and a page may end between them
      pageCond = 'AND (o.first_ts, o.run_ref, o.endpoint_id, o.process_id, o.blocked) < (?, ?, ?, ?, ?)';
      pageParams.push(...cur);
    }
    const rows = this.db
      .prepare(
        `SELECT o.first_ts, o.run_ref, o.endpoint_id, o.process_id, o.blocked, e.endpoint, j.owner, j.repo, j.workflow, j.job,
                r.run_id, r.run_attempt, r.gh_job_id, p.name AS pname, p.sha256, p.path, p.parent_chain
         FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
         JOIN endpoints e ON e.id = o.endpoint_id JOIN processes p ON p.id = o.process_id
         WHERE ${obsWhere} AND j.tenant_id = ? ${ownerCond} ${pageCond}
         ORDER BY o.first_ts DESC, o.run_ref DESC, o.endpoint_id DESC, o.process_id DESC, o.blocked DESC LIMIT ?`,
      )
      .all(tid, ...ownerParams, ...pageParams, q.limit + 1) as {
      first_ts: number; run_ref: number; endpoint_id: number; process_id: number; blocked: number; endpoint: string; owner: string; repo: string;
      workflow: string; job: string; run_id: string; run_attempt: number; gh_job_id: string | null; pname: string; sha256: string | null;
      path: string | null; parent_chain: string;
    }[];
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      kind: m.kind,
      truncated: m.truncated || byIp.truncated,
      total: agg.n,
      distinct_runs: agg.runs,
      calls: page.map(toEndpointCall),
      next_cursor: rows.length > q.limit && last ? encodeCursor([last.first_ts, last.run_ref, last.endpoint_id, last.process_id, last.blocked]) : null,
    };
  }

  /** Per-repo inventory of an endpoint within one owner (org). */
  async findReposUsingEndpoint(tenant: string, q: { owner: string; endpoint: string }): Promise<RepoUsageReport> {
    const m = this.matchEndpoints(tenant, q.endpoint);
    const tid = this.tenantId(tenant) ?? -1;
    const ids = this.idList(m.endpointIds);
    const byIp = this.matchIps(q.endpoint);
    const obsWhere = this.endpointOrAddress('o', m.endpointIds, byIp.ids);
    const rows = this.db
      .prepare(
        `SELECT j.repo, count(DISTINCT o.run_ref) AS runs, count(DISTINCT j.id) AS jobs,
                json_group_array(DISTINCT j.workflow) AS workflows, json_group_array(DISTINCT p.name) AS processes,
                json_group_array(DISTINCT e.endpoint) AS endpoints, min(o.first_ts) AS first_ts, max(o.first_ts) AS last_ts
         FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
         JOIN endpoints e ON e.id = o.endpoint_id JOIN processes p ON p.id = o.process_id
         WHERE ${obsWhere} AND j.tenant_id = ? AND j.owner = ? COLLATE NOCASE
         GROUP BY j.repo ORDER BY runs DESC, j.repo`,
      )
      .all(tid, q.owner) as { repo: string; runs: number; jobs: number; workflows: string; processes: string; endpoints: string; first_ts: number; last_ts: number }[];
    const inBaseline = this.db.prepare(
      `SELECT count(DISTINCT b.job_ref) FROM baseline b JOIN jobs j ON j.id = b.job_ref
       WHERE j.tenant_id = ? AND j.owner = ? COLLATE NOCASE AND j.repo = ? AND b.in_baseline = 1 AND b.endpoint_id IN (${ids})`,
    );
    return {
      kind: m.kind,
      truncated: m.truncated || byIp.truncated,
      repos: rows.map((r) => ({
        owner: q.owner,
        repo: r.repo,
        matched_endpoints: namesOf(r.endpoints),
        runs: r.runs,
        jobs: r.jobs,
        workflows: namesOf(r.workflows),
        processes: namesOf(r.processes),
        in_baseline_jobs: inBaseline.pluck().get(tid, q.owner, r.repo) as number,
        first_seen: iso(r.first_ts),
        last_seen: iso(r.last_ts),
      })),
    };
  }

  async listOrgs(tenant: string): Promise<OrgSummary[]> {
    const tid = this.tenantId(tenant) ?? -1;
    const rows = this.db
      .prepare(
        `SELECT j.owner, count(DISTINCT j.repo) AS repos, count(DISTINCT j.id) AS jobs,
                (SELECT count(*) FROM runs r2 JOIN jobs j2 ON j2.id = r2.job_ref WHERE j2.tenant_id = j.tenant_id AND j2.owner = j.owner) AS runs,
                (SELECT max(r3.last_ts) FROM runs r3 JOIN jobs j3 ON j3.id = r3.job_ref WHERE j3.tenant_id = j.tenant_id AND j3.owner = j.owner) AS last_ts
         FROM jobs j WHERE j.tenant_id = ? GROUP BY j.owner ORDER BY j.owner`,
      )
      .all(tid) as { owner: string; repos: number; jobs: number; runs: number; last_ts: number | null }[];
    return rows.map((r) => ({ owner: r.owner, repos: r.repos, jobs: r.jobs, runs: r.runs, last_run: r.last_ts === null ? null : iso(r.last_ts) }));
  }

  /** Job runs of an owner (optionally one repo), newest first, paged. */
  async listRecentRuns(tenant: string, q: { owner: string; repo?: string; limit: number; cursor?: string | null }): Promise<RunsPage> {
    const cur = q.cursor ? decodeCursor(q.cursor, 2) : null;
    const tid = this.tenantId(tenant) ?? -1;
    const conds = ['j.tenant_id = ?', 'j.owner = ? COLLATE NOCASE'];
    const params: (string | number)[] = [tid, q.owner];
    if (q.repo !== undefined) {
      conds.push('j.repo = ? COLLATE NOCASE');
      params.push(q.repo);
    }
    const total = this.db.prepare(`SELECT count(*) FROM runs r JOIN jobs j ON j.id = r.job_ref WHERE ${conds.join(' AND ')}`).pluck().get(...params) as number;
    const pageParams: number[] = [];
    let pageCond = '';
    if (cur) {
      pageCond = 'AND (r.first_ts, r.id) < (?, ?)';
      pageParams.push(cur[0]!, cur[1]!);
    }
    const rows = this.db
      .prepare(
        `SELECT r.id, j.owner, j.repo, j.workflow, j.job, r.run_id, r.run_attempt, r.gh_job_id, r.first_ts, r.last_ts, r.completed, r.learning,
                (SELECT count(*) FROM detections d WHERE d.run_ref = r.id) AS detections,
                (SELECT count(*) FROM detections d WHERE d.run_ref = r.id AND NOT EXISTS (SELECT 1 FROM detection_status ds WHERE ds.id = d.id)) AS new_detections
         FROM runs r JOIN jobs j ON j.id = r.job_ref WHERE ${conds.join(' AND ')} ${pageCond}
         ORDER BY r.first_ts DESC, r.id DESC LIMIT ?`,
      )
      .all(...params, ...pageParams, q.limit + 1) as {
      id: number; owner: string; repo: string; workflow: string; job: string; run_id: string; run_attempt: number; gh_job_id: string | null;
      first_ts: number; last_ts: number; completed: number; learning: number; detections: number; new_detections: number;
    }[];
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      total,
      runs: page.map(toRunSummary),
      next_cursor: rows.length > q.limit && last ? encodeCursor([last.first_ts, last.id]) : null,
    };
  }
}

/**
 * A json_group_array of names, sorted. JSON rather than group_concat's comma list: process and
 * workflow names are free text and may hold commas ("Build, test, and deploy").
 */
function namesOf(json: string | null): string[] {
  return (JSON.parse(json ?? '[]') as (string | null)[]).filter((n): n is string => n !== null && n !== '').sort();
}
