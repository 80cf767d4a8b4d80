import { createRequire } from 'node:module';
import type pg from 'pg';

/**
 * Connections to the PostgreSQL store. node-postgres (`pg`) was chosen for its real pool with
 * explicit timeouts, its plain parameterised queries (no ORM, no query builder) and its COPY
 * support through pg-copy-streams; docs/scale-out.md says more.
 */

// Loaded on first use, not at import: pg costs a sixth of a second of CPU, which every CLI run on a
// SQLite store (and every test that spawns one) would otherwise pay.
const require = createRequire(import.meta.url);
let driver: typeof pg | undefined;
export function pgDriver(): typeof pg {
  return (driver ??= require('pg') as typeof pg);
}

export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

export interface PgPoolSettings {
  /** most connections one process opens (default 10) */
  max?: number;
  /** give up on getting a connection after this long (default 10 s): a down server is an error, not a hang */
  connectionTimeoutMs?: number;
  /** close a connection idle this long (default 30 s) */
  idleTimeoutMs?: number;
  /** the server cancels any statement running longer (default 5 min; bulk ingest statements are short) */
  statementTimeoutMs?: number;
  /** the server ends a session left idle inside an open transaction (default 60 s): a stuck client never pins row locks */
  idleInTransactionTimeoutMs?: number;
}

export const DEFAULT_POOL_SETTINGS: Required<PgPoolSettings> = {
  max: 10,
  connectionTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  statementTimeoutMs: 300_000,
  idleInTransactionTimeoutMs: 60_000,
};

// Epoch-ms timestamps and ids are bigint: well inside Number's exact range, so parse them as numbers.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pgDriver().types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** The SSL modes node-postgres 8 verifies as `verify-full` unless the URL asks for libpq's meaning. */
const VERIFIED_AS_FULL = new Set(['prefer', 'require', 'verify-ca']);

/**
 * The URL as the driver is given it. node-postgres 8 checks the server's certificate and host name for
 * `sslmode=prefer`, `require` and `verify-ca` exactly as for `verify-full` (pg-connection-string), and
 * says so in a ten-line "SECURITY WARNING" that every command naming one printed on stderr before its
 * own output. Given `verify-full`, which is what it does either way, it says nothing; docs/scale-out.md
 * tells the user instead. With `uselibpqcompat=true` the driver reads the modes as libpq does and warns
 * of nothing: that URL is left as written.
 */
export function driverUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  const mode = u.searchParams.get('sslmode');
  if (mode === null || !VERIFIED_AS_FULL.has(mode) || u.searchParams.get('uselibpqcompat') === 'true') return url;
  u.searchParams.set('sslmode', 'verify-full');
  return u.toString();
}

export function createPool(url: string, settings: PgPoolSettings = {}): PgPool {
  const s = { ...DEFAULT_POOL_SETTINGS, ...settings };
  const pool = new (pgDriver().Pool)({
    connectionString: driverUrl(url),
    max: s.max,
    connectionTimeoutMillis: s.connectionTimeoutMs,
    idleTimeoutMillis: s.idleTimeoutMs,
    statement_timeout: s.statementTimeoutMs,
    idle_in_transaction_session_timeout: s.idleInTransactionTimeoutMs,
    application_name: 'egress-triage',
    types,
  });
  // An idle connection dropped by the server must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  // Nor one the server ends while it is checked out between two queries (a --strict ingest waiting
  // on a quiet pipe, a migration): the pool listens only to idle connections, and an 'error' event
  // nobody hears ends the process as an internal error. The query in flight, or the next one, fails
  // instead, which the commands report as the store's failure (postgresProblem, exit 5).
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/**
 * Runs one statement; when `signal` aborts, the server cancels it (pg_cancel_backend from another
 * connection) and the promise rejects with the signal's reason.
 */
export async function queryWithSignal<R extends pg.QueryResultRow>(
  pool: PgPool,
  client: PgClient,
  text: string,
  values: unknown[] = [],
  signal?: AbortSignal,
): Promise<pg.QueryResult<R>> {
  if (!signal) return client.query<R>(text, values);
  signal.throwIfAborted();
  const pid = (client as unknown as { processID: number }).processID;
  const cancel = () => {
    pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await client.query<R>(text, values);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

/** Sets a store-wide setting (the meta table), on the pool or inside a transaction: `learning_runs`, `verdict_revision`. */
export async function writeMeta(db: PgPool | PgClient, key: string, value: string): Promise<void> {
  await db.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
}

/**
 * One transaction on one connection: COMMIT when fn resolves, ROLLBACK when it throws. A connection
 * whose ROLLBACK failed is destroyed rather than returned to the pool.
 */
export async function transaction<T>(pool: PgPool, fn: (c: PgClient) => Promise<T>, isolation: 'READ COMMITTED' | 'REPEATABLE READ' = 'READ COMMITTED'): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  try {
    await c.query(`BEGIN ISOLATION LEVEL ${isolation}`);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    try {
      await c.query('ROLLBACK');
    } catch (e) {
      broken = e as Error;
    }
    throw err;
  } finally {
    c.release(broken);
  }
}
