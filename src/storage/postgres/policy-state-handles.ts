import { transaction, type PgPool } from './pool.js';
import { admitHandle, type HandleLimits, type HandleResult, type SessionHandles } from '../policy-state.js';

const SWEEP_EVERY = 1024;

/**
 * Live session handles in the PostgreSQL store (table policy_session_handles), shared by every
 * gateway replica on the store. A touch is one transaction that first takes an advisory lock on the
 * identity: rows a concurrent touch is about to insert cannot be locked with FOR UPDATE, so without
 * it two replicas could each see one free slot and both take it.
 */
export class PgSessionHandles implements SessionHandles {
  private touches = 0;

  constructor(
    private readonly pool: PgPool,
    private readonly clock: () => number = Date.now,
    private readonly explain: (e: unknown) => Error = (e) => e as Error,
  ) {}

  async touch(identity: string, handle: string, limits: HandleLimits, now = this.clock()): Promise<HandleResult> {
    try {
      return await transaction(this.pool, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [JSON.stringify(['policy_session_handles', identity])]);
        const rows = await c.query<{ handle: string; last_used: string }>(`SELECT handle, last_used FROM policy_session_handles WHERE identity = $1`, [identity]);
        const uses = new Map(rows.rows.map((r) => [r.handle, Number(r.last_used)]));
        const { expired, ...result } = admitHandle(uses, handle, limits, now);
        const gone = expired.filter((h) => h !== handle || !result.ok);
        if (gone.length) await c.query(`DELETE FROM policy_session_handles WHERE identity = $1 AND handle = ANY($2::text[])`, [identity, gone]);
        if (result.ok) {
          await c.query(
            `INSERT INTO policy_session_handles (identity, handle, last_used) VALUES ($1, $2, $3)
             ON CONFLICT (identity, handle) DO UPDATE SET last_used = EXCLUDED.last_used`,
            [identity, handle, now],
          );
        }
        if (++this.touches % SWEEP_EVERY === 0) await c.query(`DELETE FROM policy_session_handles WHERE last_used <= $1`, [now - limits.ttlMs]);
        return result;
      });
    } catch (e) {
      throw this.explain(e);
    }
  }

  async live(identity: string, ttlMs: number, now = this.clock()): Promise<string[]> {
    try {
      const r = await this.pool.query<{ handle: string }>(
        `SELECT handle FROM policy_session_handles WHERE identity = $1 AND last_used > $2 ORDER BY last_used, handle`,
        [identity, now - ttlMs],
      );
      return r.rows.map((x) => x.handle);
    } catch (e) {
      throw this.explain(e);
    }
  }
}
