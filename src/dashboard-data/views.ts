import type { RiskyDestinations } from '../analysis/risky-destinations.js';
import type { BoundedCount, Destination, DestinationJob } from '../storage/dashboard-port.js';
import type { BaselineView } from '../storage/store.js';
import type { RuleAuditRow } from '../storage/rules-port.js';

/**
 * Pure view models of the data pages: plain data in, what a page shows out. Whether a destination
 * is risky is decided by the one risky-destination list (analysis/risky-destinations.ts), never
 * here; a risky destination is always flagged, whatever its baseline says.
 */

/** "1,234" or "10,000+" */
export function countLabel(c: BoundedCount): string {
  const n = c.value.toLocaleString('en-US');
  return c.exact ? n : `${n}+`;
}

export interface DestinationRow extends Destination {
  /** the risky-list entry the host falls under, or null */
  risky: string | null;
  jobs: (DestinationJob & { anomalous: boolean })[];
  /** jobs (of those listed) where the endpoint is not in the baseline */
  anomalousJobs: number;
}

export function destinationRows(ds: Destination[], risky: RiskyDestinations): DestinationRow[] {
  return ds.map((d) => {
    const jobs = d.jobs.map((j) => ({ ...j, anomalous: !j.inBaseline }));
    return { ...d, risky: risky.matchHost(d.host), jobs, anomalousJobs: jobs.filter((j) => j.anomalous).length };
  });
}

export interface BaselineJobRow {
  job: BaselineView;
  state: 'learning' | 'stable';
  inBaseline: number;
  pending: number;
  expected: number;
  /** each entry with whether it is risky (a risky entry can only be un-expected, never expected) */
  endpoints: (BaselineView['endpoints'][number] & { risky: string | null })[];
}

export function baselineJobRows(jobs: BaselineView[], risky: RiskyDestinations): BaselineJobRow[] {
  return jobs.map((j) => ({
    job: j,
    state: j.learning ? 'learning' : 'stable',
    inBaseline: j.endpoints.filter((e) => e.inBaseline).length,
    pending: j.endpoints.filter((e) => !e.inBaseline).length,
    expected: j.endpoints.filter((e) => e.source === 'expected' && e.inBaseline).length,
    endpoints: j.endpoints.map((e) => ({ ...e, risky: risky.matchEndpoint(e.endpoint) })),
  }));
}

/** One field a rule change changed, before and after (JSON text; null when absent). */
export interface RuleFieldChange {
  field: string;
  before: string | null;
  after: string | null;
}

export interface RuleHistoryEntry {
  action: string;
  actor: string;
  at: string;
  affected: number;
  changes: RuleFieldChange[];
}

/** A rule's audit trail (newest first, as stored) with what each change changed, field by field. */
export function ruleHistory(rows: RuleAuditRow[]): RuleHistoryEntry[] {
  return rows.map((r) => ({ action: r.action, actor: r.actor, at: r.at, affected: r.affected, changes: diffFields(r.before, r.after) }));
}

// timestamps change on every edit and are shown as the entry's own time
const IGNORED = new Set(['created_on', 'updated_on']);

function diffFields(before: unknown, after: unknown): RuleFieldChange[] {
  const b = (before && typeof before === 'object' ? before : {}) as Record<string, unknown>;
  const a = (after && typeof after === 'object' ? after : {}) as Record<string, unknown>;
  const out: RuleFieldChange[] = [];
  for (const field of [...new Set([...Object.keys(b), ...Object.keys(a)])].sort()) {
    if (IGNORED.has(field)) continue;
    const x = field in b ? JSON.stringify(b[field]) : null;
    const y = field in a ? JSON.stringify(a[field]) : null;
    if (x !== y) out.push({ field, before: x, after: y });
  }
  return out;
}
