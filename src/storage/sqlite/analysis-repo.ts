import type { SqliteDatabase } from './db.js';
import { DAY_MS } from './ingest-session.js';
import { statusOf } from './rollups.js';

/**
 * Read side of the per-process analysis (behind the analysis-aggregates port, analysis-store.ts).
 * Whole days come from `detection_rollup`; the partial days at the edges of a since/until window come
 * from raw `detections` (detections_by_time index), so every count is exact for any window. Every
 * statement the analysis runs is built in this file.
 */

/** owner / repo compare case-insensitively, workflow / job exactly (domain/filter.ts) */
export interface JobScope {
  owner?: string;
  repo?: string;
  workflow?: string;
  job?: string;
}

export interface ScanFilter {
  tenantId: number;
  typeIds: number[];
  statuses: number[];
  since?: number;
  until?: number;
  /** restrict to these jobs (the sub-select of jobScopeSql); undefined = all */
  jobFilterSql?: { sql: string; params: unknown[] };
}

/** The tenant's jobs matching a scope, as a sub-select; undefined when the scope names nothing. */
export function jobScopeSql(tenantId: number, scope: JobScope): { sql: string; params: unknown[] } | undefined {
  const conds = ['tenant_id = ?'];
  const params: unknown[] = [tenantId];
  for (const [col, v, nocase] of [['owner', scope.owner, true], ['repo', scope.repo, true], ['workflow', scope.workflow, false], ['job', scope.job, false]] as const) {
    if (v === undefined) continue;
    conds.push(nocase ? `${col} = ? COLLATE NOCASE` : `${col} = ?`);
    params.push(v);
  }
  return params.length > 1 ? { sql: `SELECT id FROM jobs WHERE ${conds.join(' AND ')}`, params } : undefined;
}

export function tenantIdOf(db: SqliteDatabase, tenant: string): number | undefined {
  return db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
}

export function typeIdOf(db: SqliteDatabase, type: string): number | undefined {
  return db.prepare('SELECT id FROM detection_types WHERE name = ?').pluck().get(type) as number | undefined;
}

export function allTypeIds(db: SqliteDatabase): number[] {
  return db.prepare('SELECT id FROM detection_types ORDER BY id').pluck().all() as number[];
}

/** The stored spelling of an owner or repo matched case-insensitively, when it is unique. */
export function storedSpelling(db: SqliteDatabase, tenantId: number, col: 'owner' | 'repo', value: string): string {
  const found = db.prepare(`SELECT DISTINCT ${col} FROM jobs WHERE tenant_id = ? AND ${col} = ? COLLATE NOCASE LIMIT 2`).pluck().all(tenantId, value) as string[];
  return found.length === 1 ? found[0]! : value;
}

/** One aggregated row: process variant, endpoint, job, count, first/last ts. */
export type ScanRow = [processId: number, endpointId: number, jobRef: number, n: number, firstTs: number, lastTs: number];

export interface TimeSlices {
  /** rollup days [fromDay, toDay) ; null bounds = open */
  rollup: { fromDay: number | null; toDay: number | null } | null;
  /** raw ts ranges [from, to) */
  raw: [number, number][];
}

export function timeSlices(since?: number, until?: number): TimeSlices {
  if (since === undefined && until === undefined) return { rollup: { fromDay: null, toDay: null }, raw: [] };
  const fromDay = since === undefined ? null : Math.ceil(since / DAY_MS);
  const toDay = until === undefined ? null : Math.floor(until / DAY_MS);
  if (fromDay !== null && toDay !== null && fromDay >= toDay) {
    return { rollup: null, raw: since! < until! ? [[since!, until!]] : [] };
  }
  const raw: [number, number][] = [];
  if (since !== undefined && since < fromDay! * DAY_MS) raw.push([since, fromDay! * DAY_MS]);
  if (until !== undefined && toDay! * DAY_MS < until) raw.push([toDay! * DAY_MS, until]);
  return { rollup: { fromDay, toDay }, raw };
}

function inList(col: string, values: number[]): string {
  return values.length === 1 ? `${col} = ${values[0]}` : `${col} IN (${values.map(Number).join(',')})`;
}

/**
 * Streams the aggregated rows of the filter in chunks. Rollup rows are read one
 * (type, day) key prefix at a time, so every query is a primary-key range seek and
 * each chunk is small (one day); raw edge-day detections come from the detections_by_time index.
 */
export function scanDetections(db: SqliteDatabase, f: ScanFilter, onRows: (rows: ScanRow[]) => void): void {
  if (f.typeIds.length === 0 || f.statuses.length === 0) return;
  const slices = timeSlices(f.since, f.until);
  const jobSql = f.jobFilterSql ? ` AND job_ref IN (${f.jobFilterSql.sql})` : '';
  const jobParams = f.jobFilterSql?.params ?? [];
  if (slices.rollup) {
    // detection_rollup counts every detection of a key, detection_rollup_held those not new, by
    // (status, rule). A key is taken whole when all its detections have a wanted status, skipped when
    // none has, and otherwise its exact first / last timestamps over the wanted statuses are probed in
    // detections (that key, that day only).
    const want = new Set(f.statuses);
    const dayRange = db.prepare('SELECT min(day), max(day) FROM detection_rollup WHERE tenant_id = ? AND type_id = ?').raw();
    const chunk = db
      .prepare(`SELECT process_id, endpoint_id, job_ref, n, first_ts, last_ts, ip_id FROM detection_rollup WHERE tenant_id = ? AND type_id = ? AND day = ?${jobSql}`)
      .raw();
    const heldKeys = db.prepare('SELECT DISTINCT status, rule_id FROM rollup_process_day WHERE tenant_id = ? AND type_id = ? AND status <> 0').raw();
    const heldChunk = db
      .prepare(
        `SELECT process_id, endpoint_id, job_ref, ip_id, n FROM detection_rollup_held
         WHERE tenant_id = ? AND type_id = ? AND status = ? AND rule_id = ? AND day = ?${jobSql}`,
      )
      .raw();
    const probe = db
      .prepare(
        `SELECT min(d.ts), max(d.ts) FROM detections d INDEXED BY detections_by_process
         WHERE d.tenant_id = ? AND d.process_id = ? AND d.ts >= ? AND d.ts < ? AND d.type_id = ? AND d.job_ref = ?
           AND d.endpoint_id = ? AND d.ip_id = ? AND ${statusOf('d')} IN (${f.statuses.map(Number).join(',')})`,
      )
      .raw();
    for (const typeId of f.typeIds) {
      const [lo, hi] = dayRange.get(f.tenantId, typeId) as [number | null, number | null];
      if (lo === null || hi === null) continue;
      const held = heldKeys.all(f.tenantId, typeId) as [number, number][];
      const from = Math.max(lo, slices.rollup.fromDay ?? lo);
      const to = Math.min(hi + 1, slices.rollup.toDay ?? hi + 1);
      for (let day = from; day < to; day++) {
        // per key: its held detections, and how many of them have a wanted status
        const heldOf = new Map<string, { all: number; wanted: number }>();
        for (const [status, rule] of held) {
          for (const [pid, eid, job, ip, n] of heldChunk.all(f.tenantId, typeId, status, rule, day, ...jobParams) as number[][]) {
            const k = `${pid}/${eid}/${job}/${ip}`;
            const h = heldOf.get(k) ?? { all: 0, wanted: 0 };
            h.all += n!;
            if (want.has(status)) h.wanted += n!;
            heldOf.set(k, h);
          }
        }
        const rows: ScanRow[] = [];
        for (const r of chunk.all(f.tenantId, typeId, day, ...jobParams) as number[][]) {
          const [pid, eid, job, n, first, last, ip] = r as [number, number, number, number, number, number, number];
          const h = heldOf.get(`${pid}/${eid}/${job}/${ip}`);
          const wanted = h === undefined ? (want.has(0) ? n : 0) : (want.has(0) ? n - h.all : 0) + h.wanted;
          if (wanted === 0) continue;
          if (wanted === n) rows.push([pid, eid, job, n, first, last]);
          else {
            const [f0, l0] = probe.get(f.tenantId, pid, day * DAY_MS, (day + 1) * DAY_MS, typeId, job, eid, ip) as [number, number];
            rows.push([pid, eid, job, wanted, f0, l0]);
          }
        }
        if (rows.length) onRows(rows);
      }
    }
  }
  for (const [from, to] of slices.raw) {
    const stmt = db
      .prepare(
        `SELECT process_id, endpoint_id, job_ref, 1, ts, ts FROM detections INDEXED BY detections_by_time
         WHERE tenant_id = ? AND ts >= ? AND ts < ? AND ${inList('type_id', f.typeIds)} AND ${inList(statusOf('detections'), f.statuses)}${jobSql}`,
      )
      .raw();
    let buf: ScanRow[] = [];
    for (const row of stmt.iterate(f.tenantId, from, to, ...jobParams) as Iterable<ScanRow>) {
      buf.push(row);
      if (buf.length === 50_000) {
        onRows(buf);
        buf = [];
      }
    }
    if (buf.length) onRows(buf);
  }
}

// ---------------------------------------------------------------------------------------------
// Coarse path: queries without since/until/owner/repo read the coarse rollups (migration 2), which
// drop the day and job dimensions (or the endpoint one) and so hold far fewer rows.

/** Per process variant: exact count and the first / last day it has a matching detection. */
export type VariantTotal = [processId: number, n: number, minDay: number, maxDay: number];

export function coarseVariantTotals(db: SqliteDatabase, tenantId: number, typeIds: number[], statuses: number[]): VariantTotal[] {
  if (typeIds.length === 0 || statuses.length === 0) return [];
  return db
    .prepare(
      `SELECT process_id, sum(n), min(day), max(day) FROM rollup_process_day
       WHERE tenant_id = ? AND ${inList('type_id', typeIds)} AND ${inList('status', statuses)} GROUP BY process_id`,
    )
    .raw()
    .all(tenantId) as VariantTotal[];
}

/** The (type, status, rule) key prefixes present for the filter: each coarse read is then a PK range. */
export function coarseKeys(db: SqliteDatabase, tenantId: number, typeIds: number[], statuses: number[]): [number, number, number][] {
  if (typeIds.length === 0 || statuses.length === 0) return [];
  return db
    .prepare(
      `SELECT DISTINCT type_id, status, rule_id FROM rollup_process_day
       WHERE tenant_id = ? AND ${inList('type_id', typeIds)} AND ${inList('status', statuses)}`,
    )
    .raw()
    .all(tenantId) as [number, number, number][];
}

/**
 * Calls onRow(id, n) for each (endpoint | job) row of one process variant over the given key
 * prefixes; an id appears once per key prefix.
 */
export function coarseVariantRows(
  db: SqliteDatabase,
  dim: 'endpoint' | 'job',
  tenantId: number,
  keys: [number, number, number][],
  processId: number,
  onRow: (id: number, n: number) => void,
): void {
  const stmt =
    dim === 'endpoint'
      ? db.prepare('SELECT endpoint_id, n FROM rollup_process_endpoint WHERE tenant_id = ? AND type_id = ? AND status = ? AND rule_id = ? AND process_id = ?')
      : db.prepare('SELECT job_ref, n FROM rollup_process_job WHERE tenant_id = ? AND type_id = ? AND status = ? AND rule_id = ? AND process_id = ?');
  stmt.raw();
  for (const [t, s, r] of keys) {
    for (const row of stmt.iterate(tenantId, t, s, r, processId) as Iterable<[number, number]>) onRow(row[0], row[1]);
  }
}

/**
 * Exact first and last timestamps of a variant's matching detections. The coarse day table gives
 * the first and last day with a match, so each probe walks detections_by_process inside one day
 * only, and stops at the first match.
 */
export function variantFirstLast(
  db: SqliteDatabase,
  tenantId: number,
  processId: number,
  typeIds: number[],
  statuses: number[],
  minDay: number,
  maxDay: number,
): [number, number] {
  const where = `tenant_id = ? AND process_id = ? AND ts >= ? AND ts < ? AND ${inList('type_id', typeIds)} AND ${inList(statusOf('detections'), statuses)}`;
  const first = db
    .prepare(`SELECT ts FROM detections INDEXED BY detections_by_process WHERE ${where} ORDER BY ts LIMIT 1`)
    .pluck()
    .get(tenantId, processId, minDay * DAY_MS, (minDay + 1) * DAY_MS) as number | undefined;
  const last = db
    .prepare(`SELECT ts FROM detections INDEXED BY detections_by_process WHERE ${where} ORDER BY ts DESC LIMIT 1`)
    .pluck()
    .get(tenantId, processId, maxDay * DAY_MS, (maxDay + 1) * DAY_MS) as number | undefined;
  if (first !== undefined && last !== undefined) return [first, last];
  // Not expected (the coarse day rows follow detections exactly): fall back to unbounded probes.
  const any = (dir: string) =>
    db
      .prepare(`SELECT ts FROM detections INDEXED BY detections_by_process WHERE ${where} ORDER BY ts ${dir} LIMIT 1`)
      .pluck()
      .get(tenantId, processId, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) as number | undefined;
  const f = first ?? any('ASC');
  const l = last ?? any('DESC');
  if (f === undefined || l === undefined) throw new Error(`coarse rollup out of step for process ${processId}: no matching detection`);
  return [f, l];
}

export interface SampleRow {
  id: number;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  gh_job_id: string | null;
  endpoint: string;
  host: string;
  is_ip: number;
  ip: string | null;
  direct_ip: number;
  ts: number;
  sha256: string | null;
  process_id: number;
}

/** A reader of the newest `limit` detections of one process variant matching the filter, newest first. */
export function sampleReader(db: SqliteDatabase, f: ScanFilter): (processId: number, limit: number) => SampleRow[] {
  const scoped = windowAndJobs(f, 'd');
  const parts = ['d.tenant_id = ?', 'd.process_id = ?', `d.type_id IN (${f.typeIds.join(',')})`, `coalesce((SELECT ds.status FROM detection_status ds WHERE ds.id = d.id), 0) IN (${f.statuses.join(',')})`, ...scoped.parts];
  const stmt = db.prepare(
    `SELECT d.id, j.owner, j.repo, j.workflow, j.job, r.run_id, r.gh_job_id, e.endpoint, e.host, e.is_ip, i.ip, d.direct_ip, d.ts, p.sha256, d.process_id
       FROM detections d INDEXED BY detections_by_process
       JOIN jobs j ON j.id = d.job_ref JOIN runs r ON r.id = d.run_ref JOIN endpoints e ON e.id = d.endpoint_id
       JOIN processes p ON p.id = d.process_id LEFT JOIN ips i ON i.id = d.ip_id
       WHERE ${parts.join(' AND ')} ORDER BY d.ts DESC, d.id DESC LIMIT ?`,
  );
  return (processId, limit) => stmt.all(f.tenantId, processId, ...scoped.params, limit) as SampleRow[];
}

/** The window and job scope of a filter, as conditions on the detections aliased `alias` and their parameters, in order. */
function windowAndJobs(f: ScanFilter, alias: string): { parts: string[]; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (f.since !== undefined) {
    parts.push(`${alias}.ts >= ?`);
    params.push(f.since);
  }
  if (f.until !== undefined) {
    parts.push(`${alias}.ts < ?`);
    params.push(f.until);
  }
  if (f.jobFilterSql) {
    parts.push(`${alias}.job_ref IN (${f.jobFilterSql.sql})`);
    params.push(...f.jobFilterSql.params);
  }
  return { parts, params };
}

/**
 * The filter's detections at these address ids, counted per (process, endpoint, address): the
 * calls that reached a configured risky range (analysis-port.ts riskyAddressCalls).
 */
export function riskyAddressCounts(db: SqliteDatabase, f: ScanFilter, ipIds: readonly number[]): [processId: number, endpointId: number, ip: string, n: number][] {
  if (ipIds.length === 0 || f.typeIds.length === 0 || f.statuses.length === 0) return [];
  const scoped = windowAndJobs(f, 'd');
  const parts = ['d.tenant_id = ?', 'd.ip_id IN (SELECT value FROM json_each(?))', inList('d.type_id', f.typeIds), inList(statusOf('d'), f.statuses), ...scoped.parts];
  const params: unknown[] = [f.tenantId, JSON.stringify(ipIds), ...scoped.params];
  return db
    .prepare(
      `SELECT d.process_id, d.endpoint_id, i.ip, count(*) FROM detections d INDEXED BY detections_by_ip JOIN ips i ON i.id = d.ip_id
       WHERE ${parts.join(' AND ')} GROUP BY d.process_id, d.endpoint_id, d.ip_id`,
    )
    .raw()
    .all(...params) as [number, number, string, number][];
}
