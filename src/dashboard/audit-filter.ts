import { AUDIT_DECISIONS, type AuditQuery } from '../storage/policy-state.js';

/**
 * The audit page's filter, parsed from its query string: plain data in, a port query (or the field
 * errors to show beside the form) out. Times are ISO (a date, or a date and time; UTC unless a zone
 * is given) or a duration back from now (30m, 2h, 7d), like `egress-triage audit --since`.
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

const DURATION = /^(\d+)\s*(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** An ISO time or a duration back from `now`, as the ISO string the audit stores; undefined when unreadable. */
export function parseAuditTime(s: string, now: number): string | undefined {
  const d = DURATION.exec(s);
  if (d) return new Date(now - Number(d[1]) * UNIT_MS[d[2] as keyof typeof UNIT_MS]).toISOString();
  const m = ISO.exec(s);
  if (!m) return undefined;
  const zoned = m[1] === undefined ? `${s}T00:00Z` : m[4] === undefined ? `${s.replace(' ', 'T')}Z` : s.replace(' ', 'T');
  const t = Date.parse(zoned);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

const TIME_HELP = 'use an ISO time (2026-12-01 or 2026-12-01T10:00Z) or a duration back from now (30m, 2h, 7d)';

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
  const since = filter.since ? parseAuditTime(filter.since, now) : undefined;
  if (filter.since && !since) errors.since = `since: ${TIME_HELP}`;
  const until = filter.until ? parseAuditTime(filter.until, now) : undefined;
  if (filter.until && !until) errors.until = `until: ${TIME_HELP}`;
  if (Object.keys(errors).length) return { ok: false, filter, errors };
  return {
    ok: true,
    filter,
    query: {
      tool: filter.tool || undefined,
      decision: filter.decision || undefined,
      identity: filter.identity || undefined,
      upstreamName: filter.upstream || undefined,
      since,
      until,
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
