import type { SqliteDatabase } from './db.js';
import { DAY_MS } from './ingest-session.js';

/**
 * Read side of the per-process analysis. Whole days come from `detection_rollup`; the partial days at
 * the edges of a since/until window come from raw `detections` (detections_by_time index), so every
 * count is exact for any window.
 */

export interface ScanFilter {
  tenantId: number;
  typeIds: number[];
  statuses: number[];
  since?: number;
  until?: number;
  /** restrict to these jobs (owner / repo filter); undefined = all */
  jobFilterSql?: { sql: string; params: unknown[] };
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

/** Streams the aggregated rows of the filter; `onRow` is called once per rollup row / raw detection. */
export function scanDetections(db: SqliteDatabase, f: ScanFilter, onRow: (r: ScanRow) => void): void {
  if (f.typeIds.length === 0 || f.statuses.length === 0) return;
  const slices = timeSlices(f.since, f.until);
  const common = `tenant_id = ? AND ${inList('type_id', f.typeIds)} AND ${inList('status', f.statuses)}`;
  const jobSql = f.jobFilterSql ? ` AND job_ref IN (${f.jobFilterSql.sql})` : '';
  const jobParams = f.jobFilterSql?.params ?? [];
  if (slices.rollup) {
    const parts = [common];
    const params: unknown[] = [f.tenantId];
    if (slices.rollup.fromDay !== null) {
      parts.push('day >= ?');
      params.push(slices.rollup.fromDay);
    }
    if (slices.rollup.toDay !== null) {
      parts.push('day < ?');
      params.push(slices.rollup.toDay);
    }
    const stmt = db
      .prepare(`SELECT process_id, endpoint_id, job_ref, n, first_ts, last_ts FROM detection_rollup WHERE ${parts.join(' AND ')}${jobSql}`)
      .raw();
    for (const row of stmt.iterate(...params, ...jobParams) as Iterable<ScanRow>) onRow(row);
  }
  for (const [from, to] of slices.raw) {
    const stmt = db
      .prepare(
        `SELECT process_id, endpoint_id, job_ref, 1, ts, ts FROM detections INDEXED BY detections_by_time
         WHERE tenant_id = ? AND ts >= ? AND ts < ? AND ${inList('type_id', f.typeIds)} AND ${inList('status', f.statuses)}${jobSql}`,
      )
      .raw();
    for (const row of stmt.iterate(f.tenantId, from, to, ...jobParams) as Iterable<ScanRow>) onRow(row);
  }
}
