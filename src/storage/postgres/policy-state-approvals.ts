import type pg from 'pg';
import { driverUrl, pgDriver, transaction, type PgPool } from './pool.js';
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

/** The NOTIFY channel a decision is announced on; the payload is the approval id. */
export const APPROVAL_CHANNEL = 'egress_triage_approvals';
const POLL_MS = 200;

const COLUMNS = 'id, created_at, expires_at, status, session, identity, tool, args_hash, args_preview, rule, decided_at, decided_by, reason, upstream_name, tenant';

/**
 * Approvals in the PostgreSQL store, with the semantics of the SQLite ones (sqlite/policy-state-
 * approvals.ts): an approval binds session + identity + tool + argument hash + upstream name, is used once, and expires. A
 * decision made by another process is announced with NOTIFY, so a waiting call is released at once;
 * polling stays as the fallback for a lost LISTEN connection (and for expiry by the injected clock).
 */
export class PgApprovals implements Approvals {
  private readonly waiters = new Map<string, Set<(o: ApprovalOutcome) => void>>();
  private timer?: NodeJS.Timeout;
  private listener?: pg.Client;
  private listening?: Promise<void>;
  private closed = false;

  constructor(
    private readonly pool: PgPool,
    private readonly url: string,
    private readonly now: () => number = Date.now,
    private readonly explain: (e: unknown) => Error = (e) => e as Error,
    private readonly pollMs = POLL_MS,
  ) {}

  request(b: ApprovalBinding): Promise<{ row: ApprovalRow; state: 'approved' | 'pending' | 'new' }> {
    return this.guard(() => this.requestNow(b));
  }

  get(id: string): Promise<ApprovalRow | undefined> {
    return this.guard(() => this.getNow(id));
  }

  list(opts: ApprovalListOptions = {}): Promise<ApprovalRow[]> {
    return this.guard(() => this.listNow(opts));
  }

  decide(id: string, decision: 'approved' | 'denied', by: string, reason?: string): Promise<ApprovalRow> {
    return this.guard(() => this.decideNow(id, decision, by, reason));
  }

  consume(id: string): Promise<boolean> {
    return this.guard(() => this.consumeNow(id));
  }

  /** A server that cannot be reached is named as such: the gateway denies with this reason. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.explain(e);
    }
  }

  private async requestNow(b: ApprovalBinding): Promise<{ row: ApprovalRow; state: 'approved' | 'pending' | 'new' }> {
    return transaction(this.pool, async (c) => {
      const now = this.now();
      // Serialises requests for one binding, so two replicas filing the same call share one approval
      // (a tenant only when there is one: a stand-alone gateway keeps the key replicas of the version before took).
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [JSON.stringify([b.session, b.identity, b.tool, b.argsHash, b.upstreamName ?? null, ...(b.tenant ? [b.tenant] : [])])]);
      await expireStale(c, now);
      const existing = await c.query<ApprovalRow>(
        `SELECT ${COLUMNS} FROM policy_approvals WHERE session = $1 AND identity = $2 AND tool = $3 AND args_hash = $4
           AND upstream_name IS NOT DISTINCT FROM $6 AND tenant IS NOT DISTINCT FROM $7 AND status IN ('approved','pending') AND expires_at > $5
           ORDER BY status = 'approved' DESC, created_at LIMIT 1`,
        [b.session, b.identity, b.tool, b.argsHash, now, b.upstreamName ?? null, b.tenant || null],
      );
      const found = existing.rows[0];
      if (found) return { row: found, state: found.status as 'approved' | 'pending' };
      const row = newPendingApproval(b, now);
      await c.query(
        `INSERT INTO policy_approvals (id, created_at, expires_at, status, session, identity, tool, args_hash, args_preview, rule, upstream_name, tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [row.id, row.created_at, row.expires_at, row.status, row.session, row.identity, row.tool, row.args_hash, row.args_preview, row.rule, row.upstream_name, row.tenant],
      );
      return { row, state: 'new' as const };
    });
  }

  private async getNow(id: string): Promise<ApprovalRow | undefined> {
    return (await this.pool.query<ApprovalRow>(`SELECT ${COLUMNS} FROM policy_approvals WHERE id = $1`, [id])).rows[0];
  }

  private async listNow(opts: ApprovalListOptions): Promise<ApprovalRow[]> {
    await expireStale(this.pool, this.now());
    const status = opts.status ?? 'pending';
    const where: string[] = [];
    const params: unknown[] = [];
    if (status !== 'all') where.push(`status = $${params.push(status)}`);
    if (opts.tenant !== undefined) where.push(`tenant = $${params.push(opts.tenant)}`);
    const sql = `SELECT ${COLUMNS} FROM policy_approvals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT ${APPROVALS_LIST_MAX}`;
    return (await this.pool.query<ApprovalRow>(sql, params)).rows;
  }

  private async decideNow(id: string, decision: 'approved' | 'denied', by: string, reason?: string): Promise<ApprovalRow> {
    const row = await transaction(this.pool, async (c) => {
      const now = this.now();
      await expireStale(c, now);
      const cur = (await c.query<ApprovalRow>(`SELECT ${COLUMNS} FROM policy_approvals WHERE id = $1 FOR UPDATE`, [id])).rows[0];
      if (!cur) throw new Error(`no approval with id ${id}`);
      if (cur.status !== 'pending') throw new Error(`approval ${id} is ${cur.status}, not pending`);
      const expires = decision === 'approved' ? Math.max(cur.expires_at, now + APPROVED_GRACE_MS) : cur.expires_at;
      const upd = await c.query<ApprovalRow>(
        `UPDATE policy_approvals SET status = $1, decided_at = $2, decided_by = $3, reason = $4, expires_at = $5
          WHERE id = $6 AND status = 'pending' RETURNING ${COLUMNS}`,
        [decision, now, by, reason ?? null, expires, id],
      );
      // Delivered on COMMIT only, so a waiter never sees a decision that was rolled back.
      await c.query('SELECT pg_notify($1, $2)', [APPROVAL_CHANNEL, id]);
      return upd.rows[0]!;
    });
    this.notify(id, { status: decision, reason: reason ?? undefined, decidedBy: by });
    return row;
  }

  async withdraw(id: string, reason: string): Promise<boolean> {
    const withdrawn = await this.guard(() =>
      transaction(this.pool, async (c) => {
        // approved but not yet used too: a decision that came between the cancel and this must not outlive the call
        const r = await c.query(`UPDATE policy_approvals SET status = 'expired', decided_at = $1, reason = $2 WHERE id = $3 AND status IN ('pending','approved')`, [this.now(), reason, id]);
        // waiters on other processes are woken as by a decision (delivered on COMMIT)
        if (r.rowCount === 1) await c.query('SELECT pg_notify($1, $2)', [APPROVAL_CHANNEL, id]);
        return r.rowCount === 1;
      }),
    );
    if (withdrawn) this.notify(id, { status: 'expired', reason });
    return withdrawn;
  }

  private async consumeNow(id: string): Promise<boolean> {
    // an approval past its deadline is used by nobody, whatever its status still says
    const r = await this.pool.query(`UPDATE policy_approvals SET status = 'consumed' WHERE id = $1 AND status = 'approved' AND expires_at > $2`, [id, this.now()]);
    return r.rowCount === 1;
  }

  wait(id: string, signal?: AbortSignal): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve({ status: 'cancelled' });
      const settle = (o: ApprovalOutcome) => {
        signal?.removeEventListener('abort', onAbort);
        const set = this.waiters.get(id);
        set?.delete(settle);
        if (set?.size === 0) this.waiters.delete(id);
        if (this.waiters.size === 0) this.stopPolling();
        resolve(o);
      };
      const onAbort = () => settle({ status: 'cancelled' });
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(settle);
      this.listen();
      if (!this.timer) {
        this.timer = setInterval(() => {
          for (const wid of [...this.waiters.keys()]) void this.check(wid);
        }, this.pollMs);
        // Not unref'd: a waiter is a caller held for an answer. If the server goes away, the LISTEN
        // connection and the pool close, and this poll is what keeps the process alive long enough
        // to find out and deny the call (fail closed) instead of leaving the promise unsettled.
      }
      void this.check(id);
    });
  }

  /** Reads the approval and releases its waiters once it has left "pending". */
  private async check(id: string): Promise<void> {
    let row: ApprovalRow | undefined;
    try {
      row = await this.get(id);
      if (row && row.status === 'pending' && row.expires_at <= this.now()) {
        // The deadline is enforced by the injected clock here, not by a timer.
        await this.guard(() => this.pool.query(`UPDATE policy_approvals SET status = 'expired', decided_at = $1 WHERE id = $2 AND status = 'pending'`, [this.now(), id]));
        row = await this.get(id);
      }
    } catch (e) {
      // Fail closed: if the store cannot be read, the call is not approved.
      return this.notify(id, { status: 'denied', reason: `policy state error: ${(e as Error).message}` });
    }
    if (!row) return this.notify(id, { status: 'expired', reason: 'approval record disappeared' });
    if (row.status === 'pending') return;
    if (row.status === 'approved' || row.status === 'consumed') this.notify(id, { status: 'approved', decidedBy: row.decided_by ?? undefined });
    else if (row.status === 'denied') this.notify(id, { status: 'denied', reason: row.reason ?? undefined, decidedBy: row.decided_by ?? undefined });
    else this.notify(id, { status: 'expired' });
  }

  /** One connection outside the pool LISTENs while anything waits; a failure leaves the polling in charge. */
  private listen(): void {
    if (this.listening || this.closed) return;
    const client = new (pgDriver().Client)({ connectionString: driverUrl(this.url), connectionTimeoutMillis: 10_000, application_name: 'egress-triage approvals' });
    this.listener = client;
    client.on('notification', (n) => {
      if (n.payload && this.waiters.has(n.payload)) void this.check(n.payload);
    });
    const drop = () => {
      if (this.listener === client) {
        this.listener = undefined;
        this.listening = undefined;
      }
      client.end().catch(() => undefined);
    };
    client.on('error', drop);
    this.listening = client
      .connect()
      .then(() => client.query(`LISTEN ${APPROVAL_CHANNEL}`))
      .then(() => {
        // A decision may have landed between the first read and LISTEN: read again.
        for (const wid of this.waiters.keys()) void this.check(wid);
      })
      .catch(drop);
  }

  /** Resolves once the LISTEN connection is up (or has failed and polling carries on): for tests. */
  async listenerReady(): Promise<boolean> {
    this.listen();
    await this.listening;
    return this.listener !== undefined;
  }

  private notify(id: string, o: ApprovalOutcome): void {
    const set = this.waiters.get(id);
    if (!set) return;
    for (const fn of [...set]) fn(o);
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopPolling();
    for (const id of [...this.waiters.keys()]) this.notify(id, { status: 'cancelled' });
    const l = this.listener;
    this.listener = undefined;
    this.listening = undefined;
    await l?.end().catch(() => undefined);
  }
}

async function expireStale(c: { query: PgPool['query'] }, now: number): Promise<void> {
  await c.query(`UPDATE policy_approvals SET status = 'expired', decided_at = $1 WHERE status IN ('pending','approved') AND expires_at <= $1`, [now]);
}
