import type { SqliteDatabase } from './db.js';
import { realBusyClock, whenUnlocked, type BusyClock } from './busy-retry.js';
import { admitHandle, type HandleLimits, type HandleResult, type SessionHandles } from '../policy-state.js';

/** Every this many touches, rows expired for every identity are deleted (a touch prunes its own identity). */
const SWEEP_EVERY = 1024;

/**
 * Live session handles in the store's SQLite file (table policy_session_handles), so every process on
 * the file applies one cap per identity. Each touch is one IMMEDIATE transaction: the write lock is
 * taken before the identity's handles are read, so two processes can never both admit the last slot.
 */
export class SqliteSessionHandles implements SessionHandles {
  private readonly select;
  private readonly upsert;
  private readonly remove;
  private readonly sweepAll;
  private touches = 0;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: () => number = Date.now,
    /** the write waits for the file's write lock on a timer, not inside SQLite (busy-retry.ts) */
    private readonly busy: BusyClock = realBusyClock,
  ) {
    this.select = db.prepare(`SELECT handle, last_used FROM policy_session_handles WHERE identity = ?`);
    this.upsert = db.prepare(
      `INSERT INTO policy_session_handles(identity, handle, last_used) VALUES (?, ?, ?)
       ON CONFLICT(identity, handle) DO UPDATE SET last_used = excluded.last_used`,
    );
    this.remove = db.prepare(`DELETE FROM policy_session_handles WHERE identity = ? AND handle = ?`);
    this.sweepAll = db.prepare(`DELETE FROM policy_session_handles WHERE last_used <= ?`);
  }

  private uses(identity: string): Map<string, number> {
    const rows = this.select.all(identity) as { handle: string; last_used: number }[];
    return new Map(rows.map((r) => [r.handle, r.last_used]));
  }

  touch(identity: string, handle: string, limits: HandleLimits, at?: number): Promise<HandleResult> {
    const tx = this.db.transaction((): HandleResult => {
      // read when the lock is held: a touch that waited for it is a use at the time it is recorded
      const now = at ?? this.clock();
      const { expired, ...result } = admitHandle(this.uses(identity), handle, limits, now);
      for (const h of expired) if (h !== handle || !result.ok) this.remove.run(identity, h);
      if (result.ok) this.upsert.run(identity, handle, now);
      if (++this.touches % SWEEP_EVERY === 0) this.sweepAll.run(now - limits.ttlMs);
      return result;
    });
    return whenUnlocked(() => tx.immediate(), this.busy);
  }

  live(identity: string, ttlMs: number, now = this.clock()): string[] {
    return [...this.uses(identity)].filter(([, t]) => t > now - ttlMs).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).map(([h]) => h);
  }
}
