import type { RedisConnection } from './connection.js';

/**
 * The approvals this process used, kept until they expire. Redis reloaded from a snapshot (or an
 * append-only file missing its last writes) can bring back an approval as "approved" that was
 * already used, and the same call would pass on it a second time. After such a restart
 * (connection.ts) each replica marks the approvals it used as used again.
 */

/** Notes a used approval (its key and expiry); forgets the expired ones now and then. */
export function noteConsumed(journal: Map<string, number>, key: string, expiresAt: number, now: number): void {
  journal.set(key, expiresAt);
  if (journal.size % 1024 === 0) forgetExpired(journal, now);
}

function forgetExpired(journal: Map<string, number>, now: number): void {
  for (const [k, exp] of journal) if (exp <= now) journal.delete(k);
}

/**
 * Marks the journal's unexpired approvals used again, with the script that used them (an approval
 * that came back "approved" is used once more, by nobody); returns how many had come back unused.
 */
export async function restoreConsumed(conn: RedisConnection, journal: Map<string, number>, now: number): Promise<number> {
  forgetExpired(journal, now);
  let n = 0;
  for (const key of journal.keys()) if ((await conn.run('apr_consume', [key], [String(now)])) !== null) n++;
  return n;
}
