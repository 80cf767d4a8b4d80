/**
 * True for the error a store gives a write it can never take: SQLite's read-only errors (a file or
 * directory without write permission, a read-only mount), PostgreSQL's read_only_sql_transaction (a
 * hot standby). Unlike a busy store, retrying does not help.
 */
export function isReadOnlyStoreError(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  return code.startsWith('SQLITE_READONLY') || code === '25006';
}
