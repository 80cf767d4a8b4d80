import type { DetectionFilter } from '../../domain/filter.js';
import type { SampleRecord, ScanRow, VariantTotal } from '../analysis-port.js';
import { asciiNocaseEq } from './ascii-nocase.js';

/**
 * The statements of the analysis on PostgreSQL (behind the port, analysis-store.ts). Every one
 * names its tenant first (tenant_id = $1) and joins only on (tenant_id, id): no query crosses
 * tenants. The fine rollup keeps status and rule in its key, so a status filter is a plain
 * condition here; whole days come from detection_rollup, the partial days at a window's edges from
 * raw detections, so every count is exact for any window.
 */

/** Runs one statement; `prepared` false plans it for its values each time (a generic plan would not know them). */
export type Query = <R extends unknown[]>(sql: string, params: unknown[], prepared?: boolean) => Promise<R[]>;

const DAY_MS = 86_400_000;

export interface PgScanFilter {
  tenantId: number;
  typeIds: number[];
  statuses: number[];
  since?: number;
  until?: number;
  /** the jobs of an owner / repo / workflow / job scope; undefined = every job */
  jobIds?: number[];
}

/** The tenant's jobs matching a scope; undefined when the scope names no job field. */
export async function scopedJobs(q: Query, tenantId: number, f: DetectionFilter): Promise<number[] | undefined> {
  const conds = ['tenant_id = $1'];
  const params: unknown[] = [tenantId];
  // owner / repo compare case-insensitively (jobs_by_name_nocase), workflow / job exactly
  for (const [col, v, nocase] of [['owner', f.owner, true], ['repo', f.repo, true], ['workflow', f.workflow, false], ['job', f.job, false]] as const) {
    if (v === undefined) continue;
    params.push(v);
    conds.push(nocase ? asciiNocaseEq(col, `$${params.length}`) : `${col} = $${params.length}`);
  }
  if (params.length === 1) return undefined;
  return (await q<[number]>(`SELECT id FROM jobs WHERE ${conds.join(' AND ')}`, params)).map((r) => r[0]);
}

export async function storedSpelling(q: Query, tenantId: number, col: 'owner' | 'repo', value: string): Promise<string> {
  const found = await q<[string]>(`SELECT DISTINCT ${col} FROM jobs WHERE tenant_id = $1 AND ${asciiNocaseEq(col, '$2')} LIMIT 2`, [tenantId, value]);
  return found.length === 1 ? found[0]![0] : value;
}

/** WHERE conditions shared by the reads: tenant, types, statuses, and jobs when scoped. */
function common(f: PgScanFilter, alias = ''): { conds: string[]; params: unknown[] } {
  const a = alias ? `${alias}.` : '';
  const conds = [`${a}tenant_id = $1`, `${a}type_id = ANY($2::int[])`, `${a}status = ANY($3::smallint[])`];
  const params: unknown[] = [f.tenantId, f.typeIds, f.statuses];
  if (f.jobIds) {
    params.push(f.jobIds);
    conds.push(`${a}job_ref = ANY($${params.length}::bigint[])`);
  }
  return { conds, params };
}

/** The filter's time window as conditions on the detections aliased `alias`, with their parameters. */
function addWindow(f: PgScanFilter, alias: string, conds: string[], params: unknown[]): void {
  if (f.since !== undefined) {
    params.push(f.since);
    conds.push(`${alias}.ts >= $${params.length}`);
  }
  if (f.until !== undefined) {
    params.push(f.until);
    conds.push(`${alias}.ts < $${params.length}`);
  }
}

/** Per variant: exact count and first / last day with a match (coarse day rollup). */
export async function coarseTotals(q: Query, f: PgScanFilter): Promise<VariantTotal[]> {
  const rows = await q<[number, number, number, number]>(
    `SELECT process_id, sum(n)::bigint, min(day), max(day) FROM rollup_process_day
     WHERE tenant_id = $1 AND type_id = ANY($2::int[]) AND status = ANY($3::smallint[]) GROUP BY process_id ORDER BY process_id`,
    [f.tenantId, f.typeIds, f.statuses],
  );
  return rows.map(([variant, n, firstDay, lastDay]) => ({ variant, n, firstDay, lastDay }));
}

/**
 * One variant's (ref, count) rows by endpoint and by job, each as one text value "ref n ref n ...",
 * in one statement: a mesh daemon has a row per peer (thousands), and one value costs far less to
 * send and parse than a row each; both dimensions are always read together (aggregate.ts detail).
 */
export async function coarseBreakdowns(q: Query, f: PgScanFilter, processId: number): Promise<{ endpoint: [number, number][]; job: [number, number][] }> {
  const packed = (table: string, col: string) =>
    `(SELECT string_agg(${col}::text || ' ' || n::text, ' ') FROM ${table}
       WHERE tenant_id = $1 AND process_id = $4 AND type_id = ANY($2::int[]) AND status = ANY($3::smallint[]))`;
  const [[eps, jobs]] = (await q<[string | null, string | null]>(
    `SELECT ${packed('rollup_process_endpoint', 'endpoint_id')}, ${packed('rollup_process_job', 'job_ref')}`,
    [f.tenantId, f.typeIds, f.statuses, processId],
  )) as [[string | null, string | null]];
  return { endpoint: unpack(eps), job: unpack(jobs) };
}

function unpack(packed: string | null): [number, number][] {
  if (!packed) return [];
  const parts = packed.split(' ');
  const out: [number, number][] = new Array(parts.length / 2);
  for (let i = 0; i < parts.length; i += 2) out[i / 2] = [Number(parts[i]), Number(parts[i + 1])];
  return out;
}

/**
 * Exact first and last timestamps of a variant's matching detections: the day rollup gives the first
 * and last day with a match, so each probe walks detections_by_process inside one day only; both
 * probes are one statement.
 */
export async function firstLast(q: Query, f: PgScanFilter, processId: number, minDay: number, maxDay: number): Promise<[number, number]> {
  const probe = (dir: 'ASC' | 'DESC', from: string, to: string) =>
    `(SELECT ts FROM detections WHERE tenant_id = $1 AND process_id = $4 AND ts >= ${from} AND ts < ${to}
        AND type_id = ANY($2::int[]) AND status = ANY($3::smallint[]) ORDER BY ts ${dir} LIMIT 1)`;
  const both = async (first: [number, number], last: [number, number]) =>
    (
      await q<[number | null, number | null]>(`SELECT ${probe('ASC', '$5', '$6')}, ${probe('DESC', '$7', '$8')}`, [
        f.tenantId, f.typeIds, f.statuses, processId, ...first, ...last,
      ])
    )[0]!;
  const all: [number, number] = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
  let [first, last] = await both([minDay * DAY_MS, (minDay + 1) * DAY_MS], [maxDay * DAY_MS, (maxDay + 1) * DAY_MS]);
  // a day with no match (the rollup out of step with detections) falls back to the whole range
  if (first === null || last === null) [first, last] = await both(all, all);
  if (first === null || last === null) throw new Error(`coarse rollup out of step for process ${processId}: no matching detection`);
  return [first, last];
}

/** Whole rollup days [fromDay, toDay) (null = open) and raw ts ranges [from, to) of a window. */
export function timeSlices(since?: number, until?: number): { rollup: { fromDay: number | null; toDay: number | null } | null; raw: [number, number][] } {
  if (since === undefined && until === undefined) return { rollup: { fromDay: null, toDay: null }, raw: [] };
  const fromDay = since === undefined ? null : Math.ceil(since / DAY_MS);
  const toDay = until === undefined ? null : Math.floor(until / DAY_MS);
  if (fromDay !== null && toDay !== null && fromDay >= toDay) return { rollup: null, raw: since! < until! ? [[since!, until!]] : [] };
  const raw: [number, number][] = [];
  if (since !== undefined && since < fromDay! * DAY_MS) raw.push([since, fromDay! * DAY_MS]);
  if (until !== undefined && toDay! * DAY_MS < until) raw.push([toDay! * DAY_MS, until]);
  return { rollup: { fromDay, toDay }, raw };
}

/** Rows handed to the analysis per chunk: bounded arrays, whatever the result size. */
const CHUNK = 50_000;

/**
 * Every matching (variant, endpoint, job) aggregate, grouped on the server: one statement over the
 * fine rollup's whole days, one over raw detections per partial edge day.
 */
export async function scan(q: Query, f: PgScanFilter, onRows: (rows: readonly ScanRow[]) => void): Promise<void> {
  if (f.typeIds.length === 0 || f.statuses.length === 0 || f.jobIds?.length === 0) return;
  const slices = timeSlices(f.since, f.until);
  const emit = (rows: ScanRow[]) => {
    for (let i = 0; i < rows.length; i += CHUNK) onRows(rows.slice(i, i + CHUNK));
  };
  if (slices.rollup) {
    const { conds, params } = common(f);
    if (slices.rollup.fromDay !== null) {
      params.push(slices.rollup.fromDay);
      conds.push(`day >= $${params.length}`);
    }
    if (slices.rollup.toDay !== null) {
      params.push(slices.rollup.toDay);
      conds.push(`day < $${params.length}`);
    }
    emit(
      await q<ScanRow>(
        `SELECT process_id, endpoint_id, job_ref, sum(n)::bigint, min(first_ts), max(last_ts) FROM detection_rollup
         WHERE ${conds.join(' AND ')} GROUP BY process_id, endpoint_id, job_ref`,
        params,
      ),
    );
  }
  for (const [from, to] of slices.raw) {
    const { conds, params } = common(f);
    params.push(from, to);
    emit(
      await q<ScanRow>(
        `SELECT process_id, endpoint_id, job_ref, count(*), min(ts), max(ts) FROM detections
         WHERE ${conds.join(' AND ')} AND ts >= $${params.length - 1} AND ts < $${params.length} GROUP BY process_id, endpoint_id, job_ref`,
        params,
      ),
    );
  }
}

/**
 * The newest `limit` matching detections of one variant, newest first (ts, then id), in two
 * statements: their ids, planned for the values each time (a process's share of the tenant decides
 * between the time and the process index, and a generic plan that guesses wrong walks millions of
 * other detections for a rare process; one table plans in well under a millisecond), then their rows
 * with job, run, endpoint, process and ip, prepared once (planning that join costs far more than
 * running it).
 */
export async function samples(q: Query, f: PgScanFilter, processId: number, limit: number): Promise<SampleRecord[]> {
  if (limit <= 0) return [];
  const { conds, params } = common(f, 'd');
  params.push(processId);
  conds.push(`d.process_id = $${params.length}`);
  addWindow(f, 'd', conds, params);
  params.push(limit);
  const ids = (await q<[number]>(`SELECT d.id FROM detections d WHERE ${conds.join(' AND ')} ORDER BY d.ts DESC, d.id DESC LIMIT $${params.length}`, params, false)).map((r) => r[0]);
  if (ids.length === 0) return [];
  const rows = await q<[number, string, string, string, string, string, string | null, string, string, string | null, boolean, number, string | null, number]>(
    `SELECT d.id, j.owner, j.repo, j.workflow, j.job, r.run_id, r.gh_job_id, e.endpoint, e.host, i.ip, d.direct_ip, d.ts, p.sha256, d.process_id
       FROM detections d
       JOIN jobs j ON j.tenant_id = d.tenant_id AND j.id = d.job_ref
       JOIN runs r ON r.tenant_id = d.tenant_id AND r.id = d.run_ref
       JOIN endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
       JOIN processes p ON p.tenant_id = d.tenant_id AND p.id = d.process_id
       LEFT JOIN ips i ON i.tenant_id = d.tenant_id AND i.id = d.ip_id
      WHERE d.tenant_id = $1 AND d.id = ANY($2::bigint[])`,
    [f.tenantId, ids],
  );
  rows.sort((a, b) => b[11] - a[11] || b[0] - a[0]);
  return rows.map(([id, owner, repo, workflow, job, runId, ghJobId, endpoint, host, ip, directIp, ts, sha256, variant]) => ({
    id, variant, owner, repo, workflow, job, runId, ghJobId, endpoint, host, ip, directIp, ts, sha256,
  }));
}

/**
 * The filter's detections at these address ids, counted per (process, endpoint, address): the
 * calls that reached a configured risky range (analysis-port.ts riskyAddressCalls).
 */
export async function riskyAddressCounts(q: Query, f: PgScanFilter, ipIds: readonly number[]): Promise<[processId: number, endpointId: number, ip: string, n: number][]> {
  if (ipIds.length === 0 || f.typeIds.length === 0 || f.statuses.length === 0 || f.jobIds?.length === 0) return [];
  const { conds, params } = common(f, 'd');
  params.push(ipIds);
  conds.push(`d.ip_id = ANY($${params.length}::bigint[])`);
  addWindow(f, 'd', conds, params);
  const rows = await q<[number, number, string, number]>(
    `SELECT d.process_id, d.endpoint_id, i.ip, count(*)::bigint FROM detections d
       JOIN ips i ON i.tenant_id = d.tenant_id AND i.id = d.ip_id
      WHERE ${conds.join(' AND ')} GROUP BY d.process_id, d.endpoint_id, i.ip`,
    params,
    false,
  );
  return rows.map(([p, e, ip, n]) => [Number(p), Number(e), ip, Number(n)]);
}
