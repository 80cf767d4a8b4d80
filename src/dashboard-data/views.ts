import type { RiskyDestinations } from '../analysis/risky-destinations.js';
import type { BoundedCount, CallAddress, Destination, DestinationJob } from '../storage/dashboard-port.js';
import { riskyOfCall } from '../analysis/impostor.js';
import { splitEndpoint } from '../domain/endpoint.js';
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
  /** the risky-list entry the host falls under, or else the one an address it was reached at falls under, or null */
  risky: string | null;
  /** that address, when the entry is a range the host's calls reached rather than the host itself */
  riskyAt: string | null;
  jobs: (DestinationJob & { anomalous: boolean })[];
  /** jobs (of those listed) where the endpoint is not in the baseline */
  anomalousJobs: number;
}

/**
 * `addresses`: what the store's callAddresses gave for these destinations (any job). A named
 * destination is risky when an address its calls reached is in a risky range, as the analysis
 * and the impostor verdict judge a call (analysis/impostor.ts riskyOfCall).
 */
export function destinationRows(ds: Destination[], risky: RiskyDestinations, addresses: readonly CallAddress[] = []): DestinationRow[] {
  const byEndpoint = groupBy(addresses, (a) => a.endpoint);
  return ds.map((d) => {
    const jobs = d.jobs.map((j) => ({ ...j, anomalous: !j.inBaseline }));
    const at = riskyOf(risky, d.host, byEndpoint.get(d.endpoint));
    return { ...d, ...at, jobs, anomalousJobs: jobs.filter((j) => j.anomalous).length };
  });
}

/** The host's risky entry, or else the first address (in order) whose entry is a range (analysis/impostor.ts riskyOfCall). */
function riskyOf(risky: RiskyDestinations, host: string, addresses: readonly CallAddress[] = []): { risky: string | null; riskyAt: string | null } {
  const byName = risky.matchHost(host);
  if (byName !== null || !risky.hasRanges) return { risky: byName, riskyAt: null };
  for (const a of addresses) {
    const r = riskyOfCall(risky, host, a.ip);
    if (r.risky !== null) return r;
  }
  return { risky: null, riskyAt: null };
}

/** The items of `xs` by key, in their order: a page's addresses are looked up per row, not scanned. */
function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

const jobEndpointKey = (j: { owner: string; repo: string; workflow: string; job: string }, endpoint: string) =>
  `${j.owner}\u0001${j.repo}\u0001${j.workflow}\u0001${j.job}\u0001${endpoint}`;

export interface BaselineJobRow {
  job: BaselineView;
  state: 'learning' | 'stable';
  inBaseline: number;
  pending: number;
  expected: number;
  /**
   * Each entry with whether it is risky (a risky entry can only be un-expected, never expected),
   * and the risky range the job's calls to it reached, if any (`riskyAt`: the address, `riskyRange`:
   * the entry). Such calls raise a detection whatever the baseline says (detection/engine.ts).
   */
  endpoints: (BaselineView['endpoints'][number] & { risky: string | null; riskyAt: string | null; riskyRange: string | null })[];
}

/** `addresses`: what the store's callAddresses gave for these jobs' entries, per job. */
export function baselineJobRows(jobs: BaselineView[], risky: RiskyDestinations, addresses: readonly CallAddress[] = []): BaselineJobRow[] {
  const byJobEndpoint = groupBy(
    addresses.filter((a) => a.job !== null),
    (a) => jobEndpointKey(a.job!, a.endpoint),
  );
  return jobs.map((j) => ({
    job: j,
    state: j.learning ? 'learning' : 'stable',
    inBaseline: j.endpoints.filter((e) => e.inBaseline).length,
    pending: j.endpoints.filter((e) => !e.inBaseline).length,
    expected: j.endpoints.filter((e) => e.source === 'expected' && e.inBaseline).length,
    endpoints: j.endpoints.map((e) => {
      const byName = risky.matchEndpoint(e.endpoint);
      const at = byName === null ? riskyOf(risky, splitEndpoint(e.endpoint).host, byJobEndpoint.get(jobEndpointKey(j, e.endpoint))) : null;
      return { ...e, risky: byName, riskyAt: at?.riskyAt ?? null, riskyRange: at?.riskyAt ? at.risky : null };
    }),
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
