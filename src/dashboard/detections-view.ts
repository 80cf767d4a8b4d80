import type { DetectionFilter } from '../domain/filter.js';
import { DEFAULT_PAGE_SIZE, detectionFilterQuery, type PageParams } from '../dashboard-data/params.js';

/**
 * The Detections page's links, pure: the same filter carried into the next and previous pages and
 * into the CSV export, so what is exported is exactly what the page shows (every page of it).
 */

/** The form's fields, in the order shown; each is a query parameter of dashboard-data/params.ts. */
export const DETECTION_FILTER_FIELDS = ['type', 'status', 'owner', 'repo', 'workflow', 'job', 'process', 'sha256', 'endpoint', 'since', 'until'] as const;
export type DetectionFilterField = (typeof DETECTION_FILTER_FIELDS)[number];

function withPage(f: DetectionFilter, limit: number, cursor: { after?: string; before?: string }): URLSearchParams {
  const q = detectionFilterQuery(f);
  if (cursor.after) q.set('after', cursor.after);
  if (cursor.before) q.set('before', cursor.before);
  if (limit !== DEFAULT_PAGE_SIZE) q.set('limit', String(limit));
  return q;
}

const path = (base: string, q: URLSearchParams) => {
  const s = q.toString();
  return s ? `${base}?${s}` : base;
};

/** The page older than the one that ended at `cursor`. */
export const olderHref = (f: DetectionFilter, p: Pick<PageParams, 'limit'>, cursor: string) => path('/detections', withPage(f, p.limit, { after: cursor }));
/** The page newer than the one that began at `cursor`. */
export const newerHref = (f: DetectionFilter, p: Pick<PageParams, 'limit'>, cursor: string) => path('/detections', withPage(f, p.limit, { before: cursor }));
/** Every match of the filter as CSV (no paging: the export walks all pages). */
export const csvHref = (f: DetectionFilter) => path('/detections.csv', detectionFilterQuery(f));

/** What each form field shows: the values as typed (a 400 page shows them back, with the error). */
export function formValues(q: URLSearchParams): Record<DetectionFilterField, string> {
  const out = {} as Record<DetectionFilterField, string>;
  for (const k of DETECTION_FILTER_FIELDS) out[k] = k === 'type' ? q.getAll('type').filter((v) => v !== '').join(',') : (q.get(k) ?? '');
  return out;
}

/** `type=a,b` as typed in the one text field becomes `type=a&type=b`, as the parser and CLI take it. */
export function splitTypes(q: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of q) {
    if (k === 'type') for (const t of v.split(',').map((x) => x.trim()).filter(Boolean)) out.append('type', t);
    else out.append(k, v);
  }
  return out;
}

/** The CSV file's name: the tenant and the moment, so two exports never overwrite each other. */
export function csvFilename(tenant: string, now: Date): string {
  const safe = tenant.replace(/[^A-Za-z0-9._-]+/g, '_') || 'tenant';
  return `detections-${safe}-${now.toISOString().replace(/[:.]/g, '-')}.csv`;
}
