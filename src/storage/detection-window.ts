import { CursorError, decodeDetectionCursor, detectionQueryKey, encodeDetectionCursor } from './detection-cursor.js';
import type { DetectionWindowQuery } from './dashboard-port.js';
import type { DetectionFilter } from '../domain/filter.js';

/**
 * The backend-independent half of DashboardQueries.detectionWindow: which way a request pages, and
 * how the rows a backend read (at most limit + 1, in scan order) become a page with its cursors.
 * Paging older scans (ts, id) descending below the cursor; paging newer scans ascending above it
 * and turns the page round, so both directions read one index range of limit + 1 entries.
 */

export interface WindowScan {
  /** 'older': (ts, id) < cursor, descending; 'newer': (ts, id) > cursor, ascending */
  dir: 'older' | 'newer';
  cursor: { ts: number; id: number } | null;
  /** the query's key (detectionQueryKey): the page's cursors carry it */
  key: string;
}

export function windowScan(tenant: string, q: Pick<DetectionWindowQuery, 'after' | 'before' | 'filter'>): WindowScan {
  if (q.after && q.before) throw new CursorError('give either a cursor to page older (after) or one to page newer (before), not both');
  const key = detectionQueryKey(tenant, q.filter);
  if (q.before) return { dir: 'newer', cursor: decodeDetectionCursor(q.before, key), key };
  return { dir: 'older', cursor: q.after ? decodeDetectionCursor(q.after, key) : null, key };
}

export function assembleWindow<R extends { ts: number; id: number }>(
  rows: R[],
  limit: number,
  scan: WindowScan,
): { page: R[]; nextCursor: string | null; prevCursor: string | null } {
  const more = rows.length > limit;
  const taken = rows.slice(0, limit);
  const page = scan.dir === 'newer' ? taken.reverse() : taken;
  const newest = page[0];
  const oldest = page[page.length - 1];
  if (!newest || !oldest) return { page, nextCursor: null, prevCursor: null };
  const key = (r: R) => encodeDetectionCursor(r.ts, r.id, scan.key);
  if (scan.dir === 'older') {
    // something newer exists exactly when this page started below a cursor
    return { page, nextCursor: more ? key(oldest) : null, prevCursor: scan.cursor ? key(newest) : null };
  }
  // paging newer always starts above a cursor, so something older exists
  return { page, nextCursor: key(oldest), prevCursor: more ? key(newest) : null };
}

/**
 * Keyset paging reads the time index newest first and drops rows that do not match, which is fast
 * while matches are common and slow when they are rare (a binary seen 100 times among 1M
 * detections). A filter on process, endpoint or job names a few dictionary ids, each with an index
 * in time order: the page is then read as one short ordered range per id (limit + 1 rows each),
 * merged. That bounds a page to ids x (limit + 1) index entries whatever the match rate, so it is
 * only used while the ids are few.
 */
export const MAX_DRIVER_IDS = 32;

export type DriverColumn = 'process_id' | 'endpoint_id' | 'job_ref';

/** A filtered dimension's ids: null when it has more than MAX_DRIVER_IDS. */
export interface DimensionIds {
  col: DriverColumn;
  ids: number[] | null;
}

/**
 * The dimension to drive a page by: the one with the fewest ids; 'empty' when a filtered dimension
 * names nothing (no detection can match); null to scan the time index.
 */
export function chooseDriver(dims: DimensionIds[]): { col: DriverColumn; ids: number[] } | 'empty' | null {
  let best: { col: DriverColumn; ids: number[] } | null = null;
  for (const d of dims) {
    if (d.ids === null) continue;
    if (d.ids.length === 0) return 'empty';
    if (!best || d.ids.length < best.ids.length) best = { col: d.col, ids: d.ids };
  }
  return best;
}

/**
 * The filter a driven branch still has to apply: the driving dimension's own conditions are met by
 * its ids (they were looked up with exactly those conditions), and repeating them as a subquery
 * would hide the id's index order from the planner.
 */
export function withoutDimension(f: DetectionFilter, col: DriverColumn): DetectionFilter {
  const { process, sha256, host, port, owner, repo, workflow, job, ...rest } = f;
  if (col === 'process_id') return { ...rest, ...defined({ host, port, owner, repo, workflow, job }) };
  if (col === 'endpoint_id') return { ...rest, ...defined({ process, sha256, owner, repo, workflow, job }) };
  return { ...rest, ...defined({ process, sha256, host, port }) };
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
