import { FilterError, parseDetectionFilter, type DetectionFilter, type FilterField, type RawFilter } from '../domain/filter.js';
import { parseAuditFilter, type AuditFilterField } from '../policy/audit-filter.js';
import type { AuditFilter } from '../storage/policy-state.js';

/**
 * A dashboard page's query string (?type=..&owner=..&after=..) read into what the storage queries
 * take. The detection filter goes through domain/filter.ts, the parser the CLI uses, so a page and
 * `detections list` accept the same values; only the names differ (query parameters, not --flags).
 * Bad input is a FilterError naming the parameter, for the page to show next to its field.
 */

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;
/** The Detections page counts matches up to this many, then shows "10,000+" (docs/dashboard-data.md). */
export const DETECTION_COUNT_BOUND = 10_000;

const DETECTION_PARAMS: Record<FilterField, string> = {
  types: 'type',
  status: 'status',
  owner: 'owner',
  repo: 'repo',
  workflow: 'workflow',
  job: 'job',
  runId: 'run_id',
  process: 'process',
  sha256: 'sha256',
  endpoint: 'endpoint',
  since: 'since',
  until: 'until',
};

export interface PageParams {
  limit: number;
  after: string | null;
  before: string | null;
}

/** The query parameters pageParams reads. */
export const PAGE_PARAMS = ['limit', 'after', 'before'] as const;

export function pageParams(q: URLSearchParams): PageParams {
  const raw = q.get('limit');
  let limit = DEFAULT_PAGE_SIZE;
  if (raw !== null && raw !== '') {
    if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_PAGE_SIZE) throw new FilterError('limit', `expected a page size from 1 to ${MAX_PAGE_SIZE}, got "${raw}"`);
    limit = Number(raw);
  }
  const after = q.get('after') || null;
  const before = q.get('before') || null;
  if (after && before) throw new FilterError('after', 'give either after (older) or before (newer), not both');
  return { limit, after, before };
}

/**
 * The Detections page's filter: every status unless one is asked for, as `detections list`. A
 * parameter that is neither a filter nor one of `alsoKnown` (the page's paging) is refused: a misspelt
 * filter (`proces=`) read as none would show, or export, the whole tenant as if it were the selection.
 */
export function detectionFilterParams(q: URLSearchParams, now: number, alsoKnown: readonly string[] = []): DetectionFilter {
  const known = [...Object.values(DETECTION_PARAMS), ...alsoKnown];
  for (const k of new Set(q.keys())) {
    if (!known.includes(k)) throw new FilterError(k, `is not a filter here; the filters are ${Object.values(DETECTION_PARAMS).join(', ')}`);
  }
  const raw: RawFilter = {};
  for (const [field, param] of Object.entries(DETECTION_PARAMS) as [FilterField, string][]) {
    const values = q.getAll(param).filter((v) => v !== '');
    if (values.length === 0) continue;
    if (field === 'types') raw.types = values;
    else if (values.length > 1) throw new FilterError(param, `given ${values.length} times; give it once`);
    else raw[field] = values[0];
  }
  return parseDetectionFilter(raw, { names: DETECTION_PARAMS, defaultStatus: 'all', now });
}

/** The query string that selects the same filter again (links for pages, the CSV export). */
export function detectionFilterQuery(f: DetectionFilter): URLSearchParams {
  const q = new URLSearchParams();
  for (const t of f.types ?? []) q.append('type', t);
  if (f.statuses?.length === 1) q.set('status', f.statuses[0]!);
  if (f.owner !== undefined) q.set('owner', f.owner);
  if (f.repo !== undefined) q.set('repo', f.repo);
  if (f.workflow !== undefined) q.set('workflow', f.workflow);
  if (f.job !== undefined) q.set('job', f.job);
  if (f.runId !== undefined) q.set('run_id', f.runId);
  if (f.process !== undefined) q.set('process', f.process);
  if (f.sha256 !== undefined) q.set('sha256', f.sha256);
  if (f.host !== undefined) q.set('endpoint', f.port === undefined ? (f.host.includes(':') ? `[${f.host}]` : f.host) : f.host.includes(':') ? `[${f.host}]:${f.port}` : `${f.host}:${f.port}`);
  if (f.since !== undefined) q.set('since', new Date(f.since).toISOString());
  if (f.until !== undefined) q.set('until', new Date(f.until).toISOString());
  return q;
}

const AUDIT_PARAMS: AuditFilterField[] = ['tool', 'decision', 'identity', 'upstream', 'since', 'until'];

export function auditFilterParams(q: URLSearchParams, now: number): AuditFilter {
  const raw: Partial<Record<AuditFilterField, unknown>> = {};
  for (const p of AUDIT_PARAMS) {
    const v = q.get(p);
    if (v !== null && v !== '') raw[p] = v;
  }
  return parseAuditFilter(raw, { now });
}
