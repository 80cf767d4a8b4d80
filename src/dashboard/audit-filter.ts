import { FilterError } from '../domain/filter.js';
import { parseAuditFilter as parseFilter } from '../policy/audit-filter.js';
import { AUDIT_DECISIONS, type AuditQuery } from '../storage/policy-state.js';

/**
 * The audit page's filter, parsed from its query string: plain data in, a port query (or the field
 * errors to show beside the form) out. Times are read as `egress-triage audit --since` reads them
 * (domain/time.ts: an RFC 3339 time or date, epoch ms, or an age back from now: 30m, 2h, 7d).
 */

// the port's list: every decision a record can carry, policy changes included
export { AUDIT_DECISIONS };

export const AUDIT_PAGE_SIZE = 50;

export interface AuditFilter {
  tool: string;
  decision: string;
  identity: string;
  upstream: string;
  since: string;
  until: string;
  page: number;
}

export type AuditFilterResult =
  | { ok: true; filter: AuditFilter; query: AuditQuery }
  | { ok: false; filter: AuditFilter; errors: Partial<Record<keyof AuditFilter, string>> };

/**
 * One time field, read by the one audit filter parser (policy/audit-filter.ts, domain/time.ts), as
 * the ISO string the audit stores, or the error to show beside the field. A parser of its own here
 * took `since=200000000d` to a Date past its range and failed the page with a 500.
 */
function auditTime(field: 'since' | 'until', value: string, now: number): { iso?: string; error?: string } {
  try {
    return { iso: parseFilter({ [field]: value }, { now })[field] };
  } catch (e) {
    if (e instanceof FilterError) return { error: e.message };
    throw e;
  }
}

export function parseAuditFilter(params: URLSearchParams, now: number): AuditFilterResult {
  const get = (k: string) => (params.get(k) ?? '').trim();
  const pageText = get('page');
  const filter: AuditFilter = {
    tool: get('tool'),
    decision: get('decision'),
    identity: get('identity'),
    upstream: get('upstream'),
    since: get('since'),
    until: get('until'),
    page: 1,
  };
  const errors: Partial<Record<keyof AuditFilter, string>> = {};
  if (pageText) {
    const n = Number(pageText);
    if (Number.isInteger(n) && n >= 1 && n <= 1_000_000) filter.page = n;
    else errors.page = 'page must be a whole number from 1';
  }
  if (filter.decision && !(AUDIT_DECISIONS as readonly string[]).includes(filter.decision)) {
    errors.decision = `decision must be one of ${AUDIT_DECISIONS.join(', ')}`;
  }
  const since = filter.since ? auditTime('since', filter.since, now) : {};
  if (since.error) errors.since = since.error;
  const until = filter.until ? auditTime('until', filter.until, now) : {};
  if (until.error) errors.until = until.error;
  if (Object.keys(errors).length) return { ok: false, filter, errors };
  return {
    ok: true,
    filter,
    query: {
      tool: filter.tool || undefined,
      decision: filter.decision || undefined,
      identity: filter.identity || undefined,
      upstreamName: filter.upstream || undefined,
      since: since.iso,
      until: until.iso,
      // one more than a page: whether there is a next page
      limit: AUDIT_PAGE_SIZE + 1,
      offset: (filter.page - 1) * AUDIT_PAGE_SIZE,
    },
  };
}

/** The audit page's URL for a filter (and page), empty fields left out. */
export function auditHref(f: AuditFilter, page = f.page): string {
  const s = new URLSearchParams();
  for (const k of ['tool', 'decision', 'identity', 'upstream', 'since', 'until'] as const) if (f[k]) s.set(k, f[k]);
  if (page > 1) s.set('page', String(page));
  const q = s.toString();
  return q ? `/audit?${q}` : '/audit';
}
