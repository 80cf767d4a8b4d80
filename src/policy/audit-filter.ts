import { FilterError } from '../domain/filter.js';
import { parseInstant, TimeParseError } from '../domain/time.js';
import { AUDIT_DECISIONS, type AuditFilter } from '../storage/policy-state.js';

/**
 * The one parser of audit filters (the dashboard's Audit page; any face that filters policy
 * decisions). Raw values in, a validated AuditFilter or a FilterError naming the argument out.
 * - tool, identity, upstream, session, tenant: exact, case-sensitive (tool names and identities are);
 * - decision: one of AUDIT_DECISIONS;
 * - since (inclusive) / until (exclusive): ISO times or ages ("2h", "7d") of domain/time.ts,
 *   handed to the store as ISO strings (the audit keeps ISO `ts`, which sort as text).
 */

export type AuditFilterField = 'tool' | 'decision' | 'identity' | 'upstream' | 'session' | 'tenant' | 'since' | 'until';

export function parseAuditFilter(
  raw: Partial<Record<AuditFilterField, unknown>>,
  opts: { now: number; names?: Partial<Record<AuditFilterField, string>> },
): AuditFilter {
  const name = (f: AuditFilterField) => opts.names?.[f] ?? f;
  const text = (f: AuditFilterField): string | undefined => {
    const v = raw[f];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new FilterError(name(f), `expected a string, got ${JSON.stringify(v)}`);
    const t = v.trim();
    if (t === '') throw new FilterError(name(f), 'is empty; give a value or leave the argument out');
    return t;
  };
  const out: AuditFilter = {};
  const tool = text('tool');
  if (tool !== undefined) out.tool = tool;
  const identity = text('identity');
  if (identity !== undefined) out.identity = identity;
  const upstream = text('upstream');
  if (upstream !== undefined) out.upstreamName = upstream;
  const session = text('session');
  if (session !== undefined) out.session = session;
  const tenant = text('tenant');
  if (tenant !== undefined) out.tenant = tenant;
  const decision = text('decision');
  if (decision !== undefined) {
    const d = AUDIT_DECISIONS.find((x) => x === decision.toLowerCase());
    if (!d) throw new FilterError(name('decision'), `expected one of ${AUDIT_DECISIONS.join(', ')}, got "${decision}"`);
    out.decision = d;
  }
  const instant = (f: 'since' | 'until'): number | undefined => {
    const v = text(f);
    try {
      return v === undefined ? undefined : parseInstant(v, opts.now);
    } catch (e) {
      if (e instanceof TimeParseError) throw new FilterError(name(f), e.message, 'invalid_time');
      throw e;
    }
  };
  const since = instant('since');
  const until = instant('until');
  if (since !== undefined && until !== undefined && since >= until) {
    throw new FilterError(name('since'), `must be earlier than ${name('until')}`, 'invalid_time');
  }
  if (since !== undefined) out.since = new Date(since).toISOString();
  if (until !== undefined) out.until = new Date(until).toISOString();
  return out;
}
