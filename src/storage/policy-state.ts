import { randomBytes } from 'node:crypto';

/**
 * The policy-state port: what the policy gateway keeps between calls, in domain terms.
 *
 * - **Counters** for sliding-window rate limits: reserve (all limits or none), then exactly one of
 *   commit (the upstream may have run the call: the charge is final) or refund (it provably did not).
 * - **Approvals**: a held call files one, a human decides it from any process, the call waits for it.
 * - **Audit**: one record per call, appended before the answer, queried by the CLI.
 * - **Session handles**: which 2026-07-28 session handles each authenticated identity has live, so
 *   that an agent cannot mint a fresh `scope: session` bucket per call (src/policy/session-identity.ts).
 *
 * Backends: the SQLite backend's policy-state.ts (the default: counters in this process's memory,
 * approvals and audit in the store), src/storage/postgres/policy-state.ts (the same split, on a
 * PostgreSQL store) and src/state/redis/ (counters and approvals shared by every
 * gateway replica; the audit stays in the store). The policy decision itself is a pure function
 * (src/policy/engine.ts) and never sees a backend.
 */

/** A value now, or later from a networked backend. The in-memory counters answer synchronously. */
export type MaybePromise<T> = T | Promise<T>;

// ------------------------------------------------------------------ counters

export interface LimitRequest {
  /** Rule path plus scope key, e.g. `tools.x.rate_limit\0s:<session>`. */
  key: string;
  max: number;
  windowMs: number;
  cost: number;
}

/** Opaque to callers: handed back to commit or refund. */
export interface Reservation {
  /** Committed or refunded: either way, no later refund may change the counters. */
  released: boolean;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation }
  | { ok: false; key: string; max: number; windowMs: number; retryAfterMs: number; used: number };

export interface RateCounters {
  /** All-or-nothing: either every limit admits the call and each is charged, or none is. */
  reserve(reqs: readonly LimitRequest[]): MaybePromise<ReserveResult>;
  /** The call reached the upstream: its charge stays whatever happens next. Idempotent. */
  commit(res: Reservation): MaybePromise<void>;
  /** Gives the quota back (the upstream provably did not run the call). Idempotent; a no-op after commit. */
  refund(res: Reservation): MaybePromise<void>;
  /** Current usage of a key within `windowMs`, for tests and explain. */
  used(key: string, windowMs: number): MaybePromise<number>;
}

// ------------------------------------------------------------------ approvals

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

export interface ApprovalRow {
  id: string;
  created_at: number;
  expires_at: number;
  status: ApprovalStatus;
  session: string;
  identity: string;
  tool: string;
  args_hash: string;
  args_preview: string;
  rule: string;
  decided_at: number | null;
  decided_by: string | null;
  reason: string | null;
  /** The registered upstream the held call is for (multi-upstream gateway); null for a single
   *  upstream, and on rows filed before upstream names were recorded. */
  upstream_name: string | null;
  /**
   * The tenant whose server held the call (`mcp` / `serve` with a policy); null for a stand-alone
   * gateway, which has none, and on rows filed before tenants were recorded. A dashboard lists and
   * decides only its own tenant's: policy state shared by several tenants' servers (one Redis behind
   * two stores) would otherwise show one tenant's approver another's held writes (found by review).
   */
  tenant: string | null;
}

export interface ApprovalBinding {
  session: string;
  identity: string;
  tool: string;
  argsHash: string;
  /**
   * The registered upstream the call goes to. Part of the binding: an approval for one upstream's
   * tool never lets the same-named tool of another upstream through.
   */
  upstreamName?: string;
  /**
   * The tenant whose server holds the call. Part of the binding as well: an approval given in one
   * tenant never lets another tenant's same call through, even where both share one policy state.
   */
  tenant?: string;
  /** What the human is shown. Kept in the state backend only, never in the audit log. */
  argsPreview: string;
  rule: string;
  timeoutMs: number;
}

/** The approver is shown at most this many characters of a held call's arguments (`args_preview`). */
export const ARGS_PREVIEW_MAX = 4000;

/** The arguments as the approver sees them: their JSON, cut at `max` characters with "…" after. */
export function argsPreview(args: unknown, max = ARGS_PREVIEW_MAX): string {
  const s = JSON.stringify(args ?? {});
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * True when a stored preview was cut: the call carries arguments the approver cannot see. The order
 * of the keys is the agent's, so it can put whatever matters after 4,000 harmless characters; the
 * page must say so, not leave it to a "…" at the end of a long block.
 */
export function argsPreviewIsCut(preview: string): boolean {
  return preview.length > ARGS_PREVIEW_MAX;
}

/**
 * True when a stored approval was filed for this call: the same tool, arguments, identity, upstream
 * and tenant (not the session: a 2026-07-28 retry may carry another one). Checked before an approval
 * named by a client's retry is answered or spent, besides the signed state that names it.
 */
export function filedFor(row: ApprovalRow, b: Pick<ApprovalBinding, 'tool' | 'argsHash' | 'identity' | 'upstreamName' | 'tenant'>): boolean {
  return (
    row.tool === b.tool && row.args_hash === b.argsHash && row.identity === b.identity &&
    row.upstream_name === (b.upstreamName ?? null) && row.tenant === (b.tenant || null)
  );
}

/** The pending approval a backend files for a binding that has none: every backend's new row. */
export function newPendingApproval(b: ApprovalBinding, now: number): ApprovalRow {
  return {
    id: `apr_${randomBytes(6).toString('hex')}`,
    created_at: now,
    expires_at: now + b.timeoutMs,
    status: 'pending',
    session: b.session,
    identity: b.identity,
    tool: b.tool,
    args_hash: b.argsHash,
    args_preview: b.argsPreview,
    rule: b.rule,
    decided_at: null,
    decided_by: null,
    reason: null,
    upstream_name: b.upstreamName ?? null,
    // '' is no tenant, as Redis (which stores no empty field) reads it back
    tenant: b.tenant || null,
  };
}

export interface ApprovalOutcome {
  status: 'approved' | 'denied' | 'expired' | 'cancelled';
  reason?: string;
  decidedBy?: string;
}

/** How long an approved-but-not-yet-used approval stays usable (e.g. across a gateway restart). */
export const APPROVED_GRACE_MS = 10 * 60_000;

/**
 * The longest reason a decision may carry: it is stored, listed, and shown to the agent in the
 * denial. A longer one is refused, not cut, so nobody decides on words they did not send.
 */
export const MAX_DECISION_REASON = 2_000;

/** Why a decision's reason is refused, or null when it may be recorded. */
export function decisionReasonProblem(reason: unknown): string | null {
  if (reason === undefined) return null;
  if (typeof reason !== 'string') return 'reason must be a string';
  if (reason.length > MAX_DECISION_REASON) return `reason is ${reason.length} characters long; at most ${MAX_DECISION_REASON}`;
  return null;
}

/** The most approvals one list returns, newest first, on every backend (`approvals list` says when it is reached). */
export const APPROVALS_LIST_MAX = 500;

export interface ApprovalListOptions {
  status?: ApprovalStatus | 'all';
  /** Only the rows held by this tenant's server (ApprovalRow.tenant); absent: every row. */
  tenant?: string;
}

export interface Approvals {
  /**
   * Finds a usable approval for this exact binding (approved and unused, or still pending) or files a
   * new pending one. `state` says which. Session, identity, tool, argument hash and upstream name
   * must all match.
   */
  request(b: ApprovalBinding): Promise<{ row: ApprovalRow; state: 'approved' | 'pending' | 'new' }>;
  get(id: string): Promise<ApprovalRow | undefined>;
  list(opts?: ApprovalListOptions): Promise<ApprovalRow[]>;
  /** A human decision. Rejects with a readable message when the approval is unknown or no longer pending. */
  decide(id: string, decision: 'approved' | 'denied', by: string, reason?: string): Promise<ApprovalRow>;
  /** Marks an approved approval as used; false when it was not (or no longer) approved. */
  consume(id: string): Promise<boolean>;
  /** Waits until the approval leaves "pending" (decided by any process, or expired). */
  wait(id: string, signal?: AbortSignal): Promise<ApprovalOutcome>;
  /**
   * Withdraws the approval of a call its client cancelled: pending, or approved but not yet used (a
   * decision that came between the cancel and this), it expires at once with `reason`. Left as it
   * was, the agent could spend it on a later identical call whenever it chose. False when it was
   * neither (used, denied, expired, or unknown).
   */
  withdraw(id: string, reason: string): Promise<boolean>;
}

// ------------------------------------------------------------------ audit

export type AuditDecision =
  | 'allow'
  | 'deny'
  | 'rate_limited'
  | 'approved'
  | 'approval_denied'
  | 'approval_expired'
  | 'approval_cancelled'
  /**
   * A 2026-07-28 round that ended by asking the client to approve (an `input_required` result):
   * nothing was forwarded. The retry that carries the answer is a call of its own, audited with its
   * outcome; an agent that never retries leaves this record, so no attempt goes unrecorded.
   */
  | 'approval_requested'
  /** Not a call: the policy in force was replaced (a dashboard edit, or the file changed on disk). */
  | 'policy_change';

export const AUDIT_DECISIONS: readonly AuditDecision[] = ['allow', 'deny', 'rate_limited', 'approved', 'approval_denied', 'approval_expired', 'approval_cancelled', 'approval_requested', 'policy_change'];

export type UpstreamOutcome =
  | 'ok'
  | 'tool_error'
  | 'rpc_error'
  | 'unreachable'
  | 'crashed'
  | 'timeout'
  | 'cancelled'
  | 'not_forwarded';

export interface AuditRecord {
  ts: string;
  session: string;
  identity: string;
  tool: string;
  args_hash: string;
  /** Only present when the policy opts in with `audit_args: plain`. */
  args?: unknown;
  decision: AuditDecision;
  rule: string;
  reason?: string;
  /** Time from receiving the call to its final answer (or to the denial). */
  latency_ms: number;
  upstream: UpstreamOutcome;
  policy_hash?: string;
  approval_id?: string;
  /** The registered upstream the call was for (multi-upstream gateway). */
  upstreamName?: string;
  /** policy_change only: the hash of the policy that `policy_hash` replaced. */
  previous_policy_hash?: string;
  /**
   * The tenant whose server made the decision (`mcp` or `serve`): its sink stamps it on every record
   * (audit-page.ts stampTenant). None for a stand-alone gateway, and on records written before it was
   * recorded (SQLite policy migration 106, PostgreSQL migration 20).
   */
  tenant?: string;
}

export interface AuditQuery {
  since?: string;
  tool?: string;
  decision?: string;
  session?: string;
  /** Only the calls for this registered upstream (`upstreamName`). */
  upstreamName?: string;
  /** Only the calls of this authenticated identity. */
  identity?: string;
  /** Only the records of this tenant's servers (`tenant`). */
  tenant?: string;
  /** Only records before this time (exclusive), ISO like `ts`. */
  until?: string;
  limit?: number;
  /** Skip this many of the most recent matches first (the dashboard's pages). */
  offset?: number;
}

/** A validated audit filter (src/policy/audit-filter.ts parses one). Times are ISO strings. */
export interface AuditFilter {
  tool?: string;
  decision?: AuditDecision;
  identity?: string;
  /** the MCP session (`session`) */
  session?: string;
  /** the registered upstream (`upstreamName`) */
  upstreamName?: string;
  /** the records of this tenant's servers (`tenant`) */
  tenant?: string;
  /** inclusive */
  since?: string;
  /** exclusive */
  until?: string;
}

/** A record as a page lists it: `seq` is its place in the log (larger is later). */
export type AuditEntry = AuditRecord & { seq: number };

export interface AuditPage {
  /** newest first */
  records: AuditEntry[];
  /** the next (older) page; null at the oldest match */
  nextCursor: string | null;
}

export interface AuditSink {
  /**
   * `sync` (the policy's `audit.sync`, the default) writes the record before returning, so a caller
   * that audits before answering never answers a call whose record could still be lost. A networked
   * backend returns a promise that settles once the record is written (or its failure reported).
   */
  append(r: AuditRecord, sync?: boolean): MaybePromise<void>;
  /** Writes whatever is buffered. */
  flush(): MaybePromise<void>;
  query(q: AuditQuery): MaybePromise<AuditRecord[]>;
  /** One page of matching records, newest first, by keyset on `seq` (audit-page.ts holds the cursor). */
  page(f: AuditFilter, limit: number, cursor?: string | null): MaybePromise<AuditPage>;
}

// ------------------------------------------------------------------ session handles

/** How many handles one identity may hold, and for how long an unused one stays held. */
export interface HandleLimits {
  /** Live handles per identity (>= 1). */
  maxLive: number;
  /** A handle stays live until this long after its last admitted use. */
  ttlMs: number;
}

export type HandleResult =
  /** `fresh`: the handle was not live for this identity and now is. `live`: the identity's live handles now. */
  | { ok: true; fresh: boolean; live: number }
  /** The identity already holds `maxLive` other live handles; the soonest one frees in `retryAfterMs`. */
  | { ok: false; live: number; retryAfterMs: number };

export interface SessionHandles {
  /**
   * One use of `handle` by `identity`, atomically for every process on this state: a handle that is
   * live for the identity is renewed; a new one is registered while the identity holds fewer than
   * `maxLive` live handles, and refused otherwise (nothing changes then). Handles of different
   * identities never meet. `now` (ms) is the caller's clock; without it the backend's own clock
   * (Redis: its TIME, so replicas agree).
   */
  touch(identity: string, handle: string, limits: HandleLimits, now?: number): MaybePromise<HandleResult>;
  /** The identity's live handles, oldest use first, for tests and explain. */
  live(identity: string, ttlMs: number, now?: number): MaybePromise<string[]>;
}

/**
 * The admission rule every backend applies to one identity's handles inside its own atomic step:
 * plain data in, decision out. `uses` maps each handle to its last admitted use (ms); entries at or
 * before `now - ttlMs` are no longer live.
 */
export function admitHandle(
  uses: ReadonlyMap<string, number>,
  handle: string,
  limits: HandleLimits,
  now: number,
): HandleResult & { expired: string[] } {
  const cutoff = now - limits.ttlMs;
  const expired: string[] = [];
  let oldest = Infinity;
  let live = 0;
  for (const [h, t] of uses) {
    if (t <= cutoff) expired.push(h);
    else {
      live++;
      if (h !== handle) oldest = Math.min(oldest, t);
    }
  }
  const held = (uses.get(handle) ?? -Infinity) > cutoff;
  if (held) return { ok: true, fresh: false, live, expired };
  if (live < limits.maxLive) return { ok: true, fresh: true, live: live + 1, expired };
  return { ok: false, live, retryAfterMs: Math.max(1, oldest + limits.ttlMs - now), expired };
}

// ------------------------------------------------------------------ the whole state

/** The backend cannot be reached at start (ready() rejects with it): the CLI exits with EXIT.IO. */
export class PolicyStateUnavailableError extends Error {
  override name = 'PolicyStateUnavailableError';
  constructor(
    message: string,
    /** the option that named the unreachable backend, for the CLI's message */
    readonly flag: '--state' | '--db' = '--state',
  ) {
    super(message);
  }
}

export interface PolicyStateBackend {
  /** Human-readable, for logs: "store ./x.db", "redis://host:port/0". */
  readonly describe: string;
  /**
   * Key of the argument HMAC. Shared by every process on the same state, so an approval filed on one
   * replica binds the same arguments on another. Throws while the backend cannot provide it.
   */
  readonly hashKey: Buffer;
  readonly approvals: Approvals;
  readonly audit: AuditSink;
  /** Live 2026-07-28 session handles per identity, shared like the counters (see docs/policy.md). */
  readonly sessionHandles: SessionHandles;
  /**
   * The rate-limit counters of one policy file. `namespace` keeps two policy files (a grant's own and
   * the default) from sharing counters whose rule paths happen to be equal.
   */
  counters(namespace: string): RateCounters;
  /** Resolves once the backend can serve calls; rejects with a readable reason when it cannot start. */
  ready(): Promise<void>;
  close(): Promise<void> | void;
}
