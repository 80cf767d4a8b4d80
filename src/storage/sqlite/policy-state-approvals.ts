import type { SqliteDatabase } from './db.js';
import { realBusyClock, whenUnlocked, type BusyClock } from './busy-retry.js';
import {
  APPROVALS_LIST_MAX,
  APPROVED_GRACE_MS,
  newPendingApproval,
  type ApprovalBinding,
  type ApprovalListOptions,
  type ApprovalOutcome,
  type ApprovalRow,
  type Approvals,
} from '../policy-state.js';

const POLL_MS = 200;

/**
 * Approvals live in SQLite so that a CLI in another process can decide them and so that pending
 * ones survive a gateway restart. An approval binds session + identity + tool + argument hash + upstream
 * name: approving one call never lets a different call (or the same call from another session, or to
 * another upstream) through.
 */
export class SqliteApprovals implements Approvals {
  private readonly waiters = new Map<string, Set<(o: ApprovalOutcome) => void>>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly now: () => number = Date.now,
    /** writes wait for the file's write lock on a timer, not inside SQLite (busy-retry.ts) */
    private readonly busy: BusyClock = realBusyClock,
  ) {}

  /**
   * Finds a usable approval for this exact binding (approved and unused, or still pending) or
   * files a new pending one. `state` says which.
   */
  async request(b: ApprovalBinding): Promise<{ row: ApprovalRow; state: 'approved' | 'pending' | 'new' }> {
    return whenUnlocked(() => this.requestNow(b), this.busy);
  }

  private requestNow(b: ApprovalBinding): { row: ApprovalRow; state: 'approved' | 'pending' | 'new' } {
    const tx = this.db.transaction(() => {
      const now = this.now();
      this.expireStale(now);
      const existing = this.db
        .prepare(
          `SELECT * FROM policy_approvals WHERE session = ? AND identity = ? AND tool = ? AND args_hash = ? AND upstream_name IS ? AND tenant IS ?
             AND status IN ('approved','pending') AND expires_at > ? ORDER BY status = 'approved' DESC, created_at LIMIT 1`,
        )
        .get(b.session, b.identity, b.tool, b.argsHash, b.upstreamName ?? null, b.tenant || null, now) as ApprovalRow | undefined;
      if (existing) return { row: existing, state: existing.status as 'approved' | 'pending' };
      const row = newPendingApproval(b, now);
      this.db
        .prepare(
          `INSERT INTO policy_approvals(id, created_at, expires_at, status, session, identity, tool, args_hash, args_preview, rule, upstream_name, tenant)
           VALUES (@id, @created_at, @expires_at, @status, @session, @identity, @tool, @args_hash, @args_preview, @rule, @upstream_name, @tenant)`,
        )
        .run(row);
      return { row, state: 'new' as const };
    });
    return tx.immediate();
  }

  private expireStale(now: number): void {
    this.db
      .prepare(`UPDATE policy_approvals SET status = 'expired', decided_at = ? WHERE status IN ('pending','approved') AND expires_at <= ?`)
      .run(now, now);
  }

  async get(id: string): Promise<ApprovalRow | undefined> {
    return this.getNow(id);
  }

  private getNow(id: string): ApprovalRow | undefined {
    return this.db.prepare('SELECT * FROM policy_approvals WHERE id = ?').get(id) as ApprovalRow | undefined;
  }

  async list(opts: ApprovalListOptions = {}): Promise<ApprovalRow[]> {
    // the time is read when the lock is held: a sweep that waited for it expires what is due by then
    await whenUnlocked(() => this.db.transaction(() => this.expireStale(this.now())).immediate(), this.busy);
    const status = opts.status ?? 'pending';
    const where: string[] = [];
    const params: unknown[] = [];
    if (status !== 'all') {
      where.push('status = ?');
      params.push(status);
    }
    if (opts.tenant !== undefined) {
      where.push('tenant = ?');
      params.push(opts.tenant);
    }
    const sql = `SELECT * FROM policy_approvals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT ${APPROVALS_LIST_MAX}`;
    return this.db.prepare(sql).all(...params) as ApprovalRow[];
  }

  /** A human decision. Throws with a readable message when the approval is unknown or no longer pending. */
  async decide(id: string, decision: 'approved' | 'denied', by: string, reason?: string): Promise<ApprovalRow> {
    const tx = this.db.transaction(() => {
      const now = this.now();
      this.expireStale(now);
      const row = this.getNow(id);
      if (!row) throw new Error(`no approval with id ${id}`);
      if (row.status !== 'pending') throw new Error(`approval ${id} is ${row.status}, not pending`);
      const expires = decision === 'approved' ? Math.max(row.expires_at, now + APPROVED_GRACE_MS) : row.expires_at;
      this.db
        .prepare(`UPDATE policy_approvals SET status = ?, decided_at = ?, decided_by = ?, reason = ?, expires_at = ? WHERE id = ? AND status = 'pending'`)
        .run(decision, now, by, reason ?? null, expires, id);
      return this.getNow(id)!;
    });
    const row = await whenUnlocked(() => tx.immediate(), this.busy);
    this.notify(id, { status: decision, reason: reason ?? undefined, decidedBy: by });
    return row;
  }

  /** Marks an approved approval as used; false when it was not (or no longer) approved, or it expired. */
  async consume(id: string): Promise<boolean> {
    const use = this.db.prepare(`UPDATE policy_approvals SET status = 'consumed' WHERE id = ? AND status = 'approved' AND expires_at > ?`);
    return whenUnlocked(() => use.run(id, this.now()).changes === 1, this.busy);
  }

  async withdraw(id: string, reason: string): Promise<boolean> {
    // approved but not yet used too: a decision that came between the cancel and this must not outlive the call
    const expire = this.db.prepare(`UPDATE policy_approvals SET status = 'expired', decided_at = ?, reason = ? WHERE id = ? AND status IN ('pending','approved')`);
    const withdrawn = await whenUnlocked(() => expire.run(this.now(), reason, id).changes === 1, this.busy);
    if (withdrawn) this.notify(id, { status: 'expired', reason });
    return withdrawn;
  }

  /** Waits until the approval leaves "pending" (decided here, by another process, or expired). */
  wait(id: string, signal?: AbortSignal): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      let row: ApprovalRow | undefined;
      try {
        row = this.getNow(id);
      } catch (e) {
        return resolve({ status: 'denied', reason: `policy state error: ${(e as Error).message}` });
      }
      if (!row) return resolve({ status: 'expired', reason: 'approval record disappeared' });
      const settle = (o: ApprovalOutcome) => {
        clearTimeout(t);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.get(id)?.delete(settle);
        if (this.waiters.get(id)?.size === 0) this.waiters.delete(id);
        if (this.waiters.size === 0) this.stop();
        resolve(o);
      };
      const onAbort = () => settle({ status: 'cancelled' });
      // A timer may fire a millisecond before the clock reaches the deadline: check() expires the row only
      // once it is due, and the timer is armed again until then, so no approval expires early.
      const expiresAt = row.expires_at;
      let t: NodeJS.Timeout;
      const arm = () => {
        t = setTimeout(() => {
          this.check(id);
          if (this.waiters.get(id)?.has(settle)) arm();
        }, Math.max(1, expiresAt - this.now()));
      };
      arm();
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(settle);
      if (!this.timer) {
        this.timer = setInterval(() => {
          for (const wid of [...this.waiters.keys()]) this.check(wid);
        }, POLL_MS);
        this.timer.unref();
      }
      this.check(id);
    });
  }

  private check(id: string): void {
    let row: ApprovalRow | undefined;
    try {
      row = this.getNow(id);
    } catch (e) {
      // Fail closed: if the store cannot be read, the call is not approved.
      this.notify(id, { status: 'denied', reason: `policy state error: ${(e as Error).message}` });
      return;
    }
    if (!row) return this.notify(id, { status: 'expired', reason: 'approval record disappeared' });
    if (row.status === 'pending' && row.expires_at <= this.now()) {
      // The poll also enforces the deadline by the injected clock, not only the timer.
      let changed = 1;
      try {
        changed = this.db.prepare(`UPDATE policy_approvals SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'`).run(this.now(), id).changes;
      } catch {
        // Fail closed below: an expired pending row is never approved.
      }
      // Decided in between (by another process, whose clock had not reached the deadline): the
      // waiter is told what the row now says, not "expired" beside a row that says otherwise.
      if (changed === 0) return this.check(id);
      return this.notify(id, { status: 'expired' });
    }
    if (row.status === 'pending') return;
    if (row.status === 'approved' || row.status === 'consumed') {
      this.notify(id, { status: 'approved', decidedBy: row.decided_by ?? undefined });
    } else if (row.status === 'denied') {
      this.notify(id, { status: 'denied', reason: row.reason ?? undefined, decidedBy: row.decided_by ?? undefined });
    } else this.notify(id, { status: 'expired' });
  }

  private notify(id: string, o: ApprovalOutcome): void {
    const set = this.waiters.get(id);
    if (!set) return;
    for (const fn of [...set]) fn(o);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
