import { classifyIndicator, type IndicatorKind } from '../../domain/indicator.js';
import { iso, toEndpointCall, toRunSummary } from '../inventory-rows.js';
import { decodeInventoryCursor, encodeInventoryCursor } from '../inventory-cursor.js';
import type {
  EndpointCallsPage, InventoryRepository, IocReport, OrgSummary, RepoUsageReport, RunsPage,
} from '../inventory-port.js';
import type { PgPool } from './pool.js';
import { endpointMatches } from './dictionaries.js';
import { asciiNocaseEq } from './ascii-nocase.js';

/**
 * The inventory port (storage/inventory-port.ts) on PostgreSQL, answering exactly as SQLite's does:
 * same rows, same order, same paging. Every statement names one tenant, and every join is on
 * tenant_id as well as the id (migrations.ts). Text sorts byte-wise (COLLATE "C"), as SQLite's
 * BINARY collation does whatever the database's locale; owner and repo filters compare
 * case-insensitively, as SQLite's COLLATE NOCASE does.
 */

interface EndpointMatch {
  kind: IndicatorKind;
  /** the tenant's matching endpoint ids (capped) */
  ids: number[];
  /** true when more endpoints matched than the cap */
  truncated: boolean;
}

/** The same cap as SQLite's: an indicator naming more endpoints is answered for the first ones, flagged truncated. */
const MAX_ENDPOINT_IDS = 2000;

const likeEscape = (s: string) => s.replace(/[%_\\]/g, '\\$&');
/** sorted as JavaScript sorts strings, which is what SQLite's answer goes through */
const sorted = (xs: string[] | null) => [...(xs ?? [])].sort();

/** observations with their run, job, endpoint and process, all within the observation's tenant */
const OBSERVATION_JOINS = `FROM observations o
  JOIN runs r ON r.tenant_id = o.tenant_id AND r.id = o.run_ref
  JOIN jobs j ON j.tenant_id = o.tenant_id AND j.id = r.job_ref`;
const NAME_JOINS = `JOIN endpoints e ON e.tenant_id = o.tenant_id AND e.id = o.endpoint_id
  JOIN processes p ON p.tenant_id = o.tenant_id AND p.id = o.process_id`;

export class PgInventoryRepository implements InventoryRepository {
  constructor(private readonly pool: PgPool) {}

  private async tenantId(tenant: string): Promise<number | undefined> {
    return (await this.pool.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant])).rows[0]?.tenant_id;
  }

  /**
   * The tenant's endpoints an indicator matches. SQL narrows the candidates; the domain predicate
   * (domain/indicator.ts) decides, so both backends match exactly the same endpoints.
   */
  private async matchEndpoints(tid: number | undefined, indicator: string): Promise<EndpointMatch> {
    const c = classifyIndicator(indicator);
    if (tid === undefined) return { kind: c.kind, ids: [], truncated: false };
    const cols = 'SELECT id, endpoint, host, is_ip FROM endpoints WHERE tenant_id = $1';
    let q: { text: string; values: unknown[] };
    if (c.kind === 'endpoint') q = { text: `${cols} AND ${endpointMatches('endpoint', '$2')}`, values: [tid, c.norm] };
    else if (c.kind === 'ip') q = { text: `${cols} AND is_ip AND host = $2`, values: [tid, c.norm] };
    else if (c.kind === 'domain') q = { text: `${cols} AND NOT is_ip AND (host = $2 OR host LIKE $3 ESCAPE '\\')`, values: [tid, c.norm, `%.${likeEscape(c.norm)}`] };
    else if (c.kind === 'substring') q = { text: `${cols} AND endpoint LIKE $2 ESCAPE '\\'`, values: [tid, `%${likeEscape(c.norm)}%`] };
    else q = { text: cols, values: [tid] };
    const rows = (await this.pool.query<{ id: number; endpoint: string; host: string; is_ip: boolean }>(`${q.text} ORDER BY id`, q.values)).rows;
    const ids = rows.filter((r) => c.test({ endpoint: r.endpoint, host: r.host, isIp: r.is_ip })).map((r) => r.id);
    return { kind: c.kind, ids: ids.slice(0, MAX_ENDPOINT_IDS), truncated: ids.length > MAX_ENDPOINT_IDS };
  }

  /** The tenant's address ids an IP or CIDR indicator names (capped like endpoints); none for other kinds. */
  private async matchIps(tid: number | undefined, indicator: string): Promise<EndpointMatch> {
    const c = classifyIndicator(indicator);
    if (!c.ip || tid === undefined) return { kind: c.kind, ids: [], truncated: false };
    const rows = (
      c.kind === 'ip'
        ? await this.pool.query<{ id: number; ip: string }>('SELECT id, ip FROM ips WHERE tenant_id = $1 AND ip = $2', [tid, c.norm])
        : await this.pool.query<{ id: number; ip: string }>('SELECT id, ip FROM ips WHERE tenant_id = $1 ORDER BY id', [tid])
    ).rows;
    const ids = rows.filter((r) => c.ip!(r.ip)).map((r) => r.id);
    return { kind: c.kind, ids: ids.slice(0, MAX_ENDPOINT_IDS), truncated: ids.length > MAX_ENDPOINT_IDS };
  }

  /**
   * The rows of `alias` (observations or detections) an indicator selects: its endpoints (the bigint[]
   * parameter `endpoints`), and for an IP or CIDR (`addresses`, from matchIps; null when it names
   * none) the calls that named a domain but went to a matching address too.
   */
  private endpointOrAddress(alias: 'o' | 'd', endpoints: string, addresses: string | null): string {
    const byEndpoint = `${alias}.endpoint_id = ANY(${endpoints}::bigint[])`;
    return addresses === null ? byEndpoint : `(${byEndpoint} OR ${alias}.ip_id = ANY(${addresses}::bigint[]))`;
  }

  async checkIocInBaseline(tenant: string, q: { indicator: string; owner?: string; limit: number }): Promise<IocReport> {
    const tid = await this.tenantId(tenant);
    const m = await this.matchEndpoints(tid, q.indicator);
    // an IP or CIDR also finds calls and detections that named a domain but went to a matching address
    const byIp = await this.matchIps(tid, q.indicator);
    const params: unknown[] = [tid ?? -1, m.ids];
    const ownerCond = q.owner !== undefined ? `AND ${asciiNocaseEq('j.owner', `$${params.push(q.owner)}`)}` : '';
    // the baseline is keyed by endpoint only; calls and detections take the addresses as one more parameter
    const withIps = byIp.ids.length ? [...params, byIp.ids] : params;
    const ips = byIp.ids.length ? `$${withIps.length}` : null;
    const obsWhere = this.endpointOrAddress('o', '$2', ips);
    const detWhere = this.endpointOrAddress('d', '$2', ips);
    const [baseline, calls, det] = await Promise.all([
      this.pool.query<{ owner: string; repo: string; workflow: string; job: string; endpoint: string; runs_seen: number; in_baseline: boolean; source: string; first_ts: number; last_ts: number }>(
        `SELECT j.owner, j.repo, j.workflow, j.job, e.endpoint, b.runs_seen, b.in_baseline, b.source, b.first_ts, b.last_ts
         FROM baseline b
         JOIN jobs j ON j.tenant_id = b.tenant_id AND j.id = b.job_ref
         JOIN endpoints e ON e.tenant_id = b.tenant_id AND e.id = b.endpoint_id
         WHERE b.tenant_id = $1 AND b.endpoint_id = ANY($2::bigint[]) ${ownerCond}
         ORDER BY b.in_baseline DESC, b.runs_seen DESC, j.owner COLLATE "C", j.repo COLLATE "C", j.workflow COLLATE "C", j.job COLLATE "C", e.endpoint COLLATE "C"`,
        params,
      ),
      this.pool.query<{ endpoint: string; owner: string; repo: string; runs: number; blocked_runs: number; processes: string[]; first_ts: number; last_ts: number }>(
        `SELECT e.endpoint, j.owner, j.repo, count(DISTINCT o.run_ref) AS runs, count(DISTINCT o.run_ref) FILTER (WHERE o.blocked) AS blocked_runs,
                array_agg(DISTINCT p.name) AS processes, min(o.first_ts) AS first_ts, max(o.first_ts) AS last_ts
         ${OBSERVATION_JOINS} ${NAME_JOINS}
         WHERE o.tenant_id = $1 AND ${obsWhere} ${ownerCond}
         GROUP BY e.endpoint, j.owner, j.repo
         ORDER BY runs DESC, e.endpoint COLLATE "C", j.owner COLLATE "C", j.repo COLLATE "C"`,
        withIps,
      ),
      this.pool.query<{ status: number; n: number }>(
        `SELECT d.status, count(*) AS n FROM detections d JOIN jobs j ON j.tenant_id = d.tenant_id AND j.id = d.job_ref
         WHERE d.tenant_id = $1 AND ${detWhere} ${ownerCond} GROUP BY d.status`,
        withIps,
      ),
    ]);
    const counts = { new: 0, suppressed: 0, resolved: 0 };
    for (const r of det.rows) counts[(['new', 'suppressed', 'resolved'] as const)[r.status] ?? 'new'] += r.n;
    return {
      kind: m.kind,
      truncated: m.truncated || byIp.truncated,
      baseline_total: baseline.rows.length,
      baseline: baseline.rows.slice(0, q.limit).map((r) => ({
        owner: r.owner,
        repo: r.repo,
        workflow: r.workflow,
        job: r.job,
        endpoint: r.endpoint,
        runs_seen: r.runs_seen,
        in_baseline: r.in_baseline,
        source: r.source,
        first_seen: iso(r.first_ts),
        last_seen: iso(r.last_ts),
      })),
      calls_total: calls.rows.length,
      calls: calls.rows.slice(0, q.limit).map((r) => ({
        endpoint: r.endpoint,
        owner: r.owner,
        repo: r.repo,
        runs: r.runs,
        blocked_runs: r.blocked_runs,
        processes: sorted(r.processes),
        first_seen: iso(r.first_ts),
        last_seen: iso(r.last_ts),
      })),
      detections: counts,
    };
  }

  async findEndpointCalls(tenant: string, q: { endpoint: string; owner?: string; limit: number; cursor?: string | null }): Promise<EndpointCallsPage> {
    const cur = q.cursor ? decodeInventoryCursor(q.cursor, 5) : null;
    const tid = await this.tenantId(tenant);
    const m = await this.matchEndpoints(tid, q.endpoint);
    // an IP or CIDR also finds the calls that named a domain but went to a matching address
    const byIp = await this.matchIps(tid, q.endpoint);
    const params: unknown[] = [tid ?? -1, m.ids];
    const ownerCond = q.owner !== undefined ? `AND ${asciiNocaseEq('j.owner', `$${params.push(q.owner)}`)}` : '';
    const obsMatch = this.endpointOrAddress('o', '$2', byIp.ids.length ? `$${params.push(byIp.ids)}` : null);
    const where = `WHERE o.tenant_id = $1 AND ${obsMatch} ${ownerCond}`;
    const pageParams = [...params];
    // keyset on the observation's whole key, newest first: no two observations share it
    const pageCond = cur
      ? `AND (o.first_ts, o.run_ref, o.endpoint_id, o.process_id, o.blocked::int) < (${cur.map((v) => `$${pageParams.push(v)}::bigint`).join(', ')})`
      : '';
    const limit = `$${pageParams.push(q.limit + 1)}`;
    const [agg, rows] = await Promise.all([
      this.pool.query<{ n: number; runs: number }>(`SELECT count(*) AS n, count(DISTINCT o.run_ref) AS runs ${OBSERVATION_JOINS} ${where}`, params),
      this.pool.query<{
        first_ts: number; run_ref: number; endpoint_id: number; process_id: number; blocked: boolean; endpoint: string; owner: string; repo: string;
        workflow: string; job: string; run_id: string; run_attempt: number; gh_job_id: string | null; pname: string; sha256: string | null;
      path: string | null; parent_chain: string;
      }>(
        `SELECT o.first_ts, o.run_ref, o.endpoint_id, o.process_id, o.blocked, e.endpoint, j.owner, j.repo, j.workflow, j.job,
                r.run_id, r.run_attempt, r.gh_job_id, p.name AS pname, p.sha256, p.path, p.parent_chain
         ${OBSERVATION_JOINS} ${NAME_JOINS} ${where} ${pageCond}
         ORDER BY o.first_ts DESC, o.run_ref DESC, o.endpoint_id DESC, o.process_id DESC, o.blocked DESC LIMIT ${limit}`,
        pageParams,
      ),
    ]);
    const page = rows.rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      kind: m.kind,
      truncated: m.truncated || byIp.truncated,
      total: agg.rows[0]!.n,
      distinct_runs: agg.rows[0]!.runs,
      calls: page.map(toEndpointCall),
      next_cursor:
        rows.rows.length > q.limit && last ? encodeInventoryCursor([last.first_ts, last.run_ref, last.endpoint_id, last.process_id, last.blocked ? 1 : 0]) : null,
    };
  }

  async findReposUsingEndpoint(tenant: string, q: { owner: string; endpoint: string }): Promise<RepoUsageReport> {
    const tid = await this.tenantId(tenant);
    const m = await this.matchEndpoints(tid, q.endpoint);
    const byIp = await this.matchIps(tid, q.endpoint);
    const params = [tid ?? -1, m.ids, q.owner];
    // the calls that named a domain but went to a matching address too; the baseline is keyed by endpoint only
    const callParams = byIp.ids.length ? [...params, byIp.ids] : params;
    const obsMatch = this.endpointOrAddress('o', '$2', byIp.ids.length ? '$4' : null);
    const [rows, inBaseline] = await Promise.all([
      this.pool.query<{ repo: string; runs: number; jobs: number; workflows: string[]; processes: string[]; endpoints: string[]; first_ts: number; last_ts: number }>(
        `SELECT j.repo, count(DISTINCT o.run_ref) AS runs, count(DISTINCT j.id) AS jobs, array_agg(DISTINCT j.workflow) AS workflows,
                array_agg(DISTINCT p.name) AS processes, array_agg(DISTINCT e.endpoint) AS endpoints, min(o.first_ts) AS first_ts, max(o.first_ts) AS last_ts
         ${OBSERVATION_JOINS} ${NAME_JOINS}
         WHERE o.tenant_id = $1 AND ${obsMatch} AND ${asciiNocaseEq('j.owner', '$3')}
         GROUP BY j.repo ORDER BY runs DESC, j.repo COLLATE "C"`,
        callParams,
      ),
      // jobs of each repo (spelled as stored) whose baseline holds a matched endpoint
      this.pool.query<{ repo: string; n: number }>(
        `SELECT j.repo, count(DISTINCT b.job_ref) AS n FROM baseline b JOIN jobs j ON j.tenant_id = b.tenant_id AND j.id = b.job_ref
         WHERE b.tenant_id = $1 AND b.endpoint_id = ANY($2::bigint[]) AND ${asciiNocaseEq('j.owner', '$3')} AND b.in_baseline
         GROUP BY j.repo`,
        params,
      ),
    ]);
    const baselineJobs = new Map(inBaseline.rows.map((r) => [r.repo, r.n]));
    return {
      kind: m.kind,
      truncated: m.truncated || byIp.truncated,
      repos: rows.rows.map((r) => ({
        owner: q.owner,
        repo: r.repo,
        matched_endpoints: sorted(r.endpoints),
        runs: r.runs,
        jobs: r.jobs,
        workflows: sorted(r.workflows),
        processes: sorted(r.processes),
        in_baseline_jobs: baselineJobs.get(r.repo) ?? 0,
        first_seen: iso(r.first_ts),
        last_seen: iso(r.last_ts),
      })),
    };
  }

  async listOrgs(tenant: string): Promise<OrgSummary[]> {
    const tid = (await this.tenantId(tenant)) ?? -1;
    const rows = await this.pool.query<{ owner: string; repos: number; jobs: number; runs: number; last_ts: number | null }>(
      `WITH per_job AS (
         SELECT j.owner, j.repo, j.id, count(r.id) AS runs, max(r.last_ts) AS last_ts
         FROM jobs j LEFT JOIN runs r ON r.tenant_id = j.tenant_id AND r.job_ref = j.id
         WHERE j.tenant_id = $1 GROUP BY j.owner, j.repo, j.id)
       SELECT owner, count(DISTINCT repo) AS repos, count(*) AS jobs, sum(runs)::bigint AS runs, max(last_ts) AS last_ts
       FROM per_job GROUP BY owner ORDER BY owner COLLATE "C"`,
      [tid],
    );
    return rows.rows.map((r) => ({ owner: r.owner, repos: r.repos, jobs: r.jobs, runs: r.runs, last_run: r.last_ts === null ? null : iso(r.last_ts) }));
  }

  async listRecentRuns(tenant: string, q: { owner: string; repo?: string; limit: number; cursor?: string | null }): Promise<RunsPage> {
    const cur = q.cursor ? decodeInventoryCursor(q.cursor, 2) : null;
    const tid = (await this.tenantId(tenant)) ?? -1;
    const params: unknown[] = [tid, q.owner];
    const conds = ['j.tenant_id = $1', asciiNocaseEq('j.owner', '$2')];
    if (q.repo !== undefined) conds.push(asciiNocaseEq('j.repo', `$${params.push(q.repo)}`));
    const from = `FROM runs r JOIN jobs j ON j.tenant_id = r.tenant_id AND j.id = r.job_ref WHERE r.tenant_id = $1 AND ${conds.join(' AND ')}`;
    const pageParams = [...params];
    const pageCond = cur ? `AND (r.first_ts, r.id) < ($${pageParams.push(cur[0])}::bigint, $${pageParams.push(cur[1])}::bigint)` : '';
    const limit = `$${pageParams.push(q.limit + 1)}`;
    const [total, rows] = await Promise.all([
      this.pool.query<{ n: number }>(`SELECT count(*) AS n ${from}`, params),
      this.pool.query<{
        id: number; owner: string; repo: string; workflow: string; job: string; run_id: string; run_attempt: number; gh_job_id: string | null;
        first_ts: number; last_ts: number; completed: boolean; learning: boolean; detections: number; new_detections: number;
      }>(
        `SELECT r.id, j.owner, j.repo, j.workflow, j.job, r.run_id, r.run_attempt, r.gh_job_id, r.first_ts, r.last_ts, r.completed, r.learning,
                (SELECT count(*) FROM detections d WHERE d.tenant_id = r.tenant_id AND d.run_ref = r.id) AS detections,
                (SELECT count(*) FROM detections d WHERE d.tenant_id = r.tenant_id AND d.run_ref = r.id AND d.status = 0) AS new_detections
         ${from} ${pageCond}
         ORDER BY r.first_ts DESC, r.id DESC LIMIT ${limit}`,
        pageParams,
      ),
    ]);
    const page = rows.rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      total: total.rows[0]!.n,
      runs: page.map(toRunSummary),
      next_cursor: rows.rows.length > q.limit && last ? encodeInventoryCursor([last.first_ts, last.id]) : null,
    };
  }
}
