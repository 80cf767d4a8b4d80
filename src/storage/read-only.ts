/**
 * True for the error a store gives a write it can never take: SQLite's read-only errors (a file or
 * directory without write permission, a read-only mount), PostgreSQL's read_only_sql_transaction (a
 * hot standby). Unlike a busy store, retrying does not help.
 */
export function isReadOnlyStoreError(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  return code.startsWith('SQLITE_READONLY') || code === '25006';
}

/**
 * True for a write refused for now or for this connection's role: SQLite's busy or locked store
 * (another writer held it past the busy timeout), PostgreSQL's insufficient_privilege (a role that may
 * only read) and lock_not_available. A write that a later command can do as well skips on it
 * (rules/verdict-revision.ts), where any other write fails.
 */
export function isWriteRefusedForNow(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') || code === '42501' || code === '55P03';
}
