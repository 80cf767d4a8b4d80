import { test, after, before, describe, type TestContext } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { DETECTIONS, tempDir } from '../helpers.js';
import { usePostgres } from './postgres.js';
import { openStore, type OpenStore } from '../../src/storage/open-store.js';
import { resolveStoreLocation, type StoreBackend } from '../../src/storage/location.js';

/**
 * Runs a test body once on each store backend: `storeTest('name', async (s) => ...)` registers
 * "name [sqlite]" and "name [postgres]". Each run gets a fresh store with no data: a new SQLite file
 * (not made until the first open), or a new database, already migrated (createStoreDatabase), of the
 * one PostgreSQL server this test file starts (usePostgres, on first use; a missing PostgreSQL fails
 * the test with how to install it, it never skips). Tests of migrations or of an empty database take
 * a database of their own (createDatabase). The body reaches the
 * store through the ports (`s.open()`), through the CLI (`--db s.db`, or `s.env`), or, for the checks
 * only raw rows can make, through `s.rows()` with SQL for the backend at hand (`s.backend`).
 *
 * Integration tests that stay on SQLite alone, because they are about SQLite itself:
 * - test/storage/run-legs-migration, status-side-table-migration (and the legacy-store helper):
 *   SQLite's core migrations over a store an older version wrote (PostgreSQL's own migrations:
 *   test/storage/postgres/migrations);
 * - test/storage/sqlite-closes-clean: the SQLite file is closed (WAL checkpointed) on every exit path;
 * - test/storage/sqlite-ingest-page-cache: SQLite's page cache during ingest;
 * - test/storage/ingest-lease: SQLite's lease table under a fake clock (both backends:
 *   test/storage/contract/ingest-leases);
 * - test/storage/inventory-status: SQLite's status side table as the inventory reads it (PostgreSQL
 *   keeps the status on the row; test/storage/contract/inventory covers both);
 * - test/rules/thin-move: the query plans (EXPLAIN QUERY PLAN) of SQLite's rule writes;
 * - test/rules/coarse-rollups: SQLite's coarse-rollup triggers (PostgreSQL's are checked exact by
 *   test/storage/contract/analysis-exactness and by rollupMismatchesOf in test/analysis/helpers);
 * - test/rules/impostor-cache: the SQLite rules repository's impostor cache across two connections;
 * - test/analysis/golden: golden answers recorded from a SQLite store (contract/analysis-exactness
 *   holds PostgreSQL's analysis equal to SQLite's on random tenants);
 * - test/ingest/repeat-fast-path, rfc3339-in-place: the parser's fast paths, with a SQLite store as
 *   the reference output of a parse;
 * - test/cli/cli "default location", exit-codes "missing store" / "file system" / "read-only store":
 *   the default store and the file errors are SQLite files'; demo writes its own SQLite store;
 * - test/ingest/crash: the PRAGMA integrity_check of its SQLite file after kill -9 (the rest of
 *   that test runs on both backends);
 * - test/ingest/concurrent-writers, its three "concurrent ingest of two halves" rounds: their third
 *   process (test/ingest/invariant-reader) polls the SQLite file in read transactions while two
 *   ingests write it. On PostgreSQL, concurrent ingest processes equal a sequential ingest in
 *   test/storage/postgres/concurrent-ingest (on both backends). Its kill -9 and lease takeover test
 *   runs on both; its bad EGRESS_TRIAGE_INGEST_LEASE_MS test fails before any store is opened.
 * - test/ingest/binary-input, gzip-members: how a source is read (binary evidence, gzip members) is
 *   the same code whatever store follows; the store only counts what was accepted (the older
 *   truncated-gzip and bad-line tests in test/ingest keep running on both);
 * No test is left out on PostgreSQL for a bug (test/mcp/http "serves concurrent calls" runs on both
 * since the snapshot gate, storage/postgres/snapshot-gate.ts).
 * Tests that use the store only for policy state or its audit (gateway, adversarial, state) are
 * covered per backend by test/storage/contract/policy-state and test/cli/policy-state-postgres.
 */

export interface StoreUnderTest {
  backend: StoreBackend;
  /** what `--db` takes: the SQLite file's path or the PostgreSQL database's URL */
  db: string;
  /** EGRESS_TRIAGE_DB for a child process that should find this store without --db */
  env: { EGRESS_TRIAGE_DB: string };
  /** a temp folder of this test run, for input files (deleted after the file's tests) */
  dir: string;
  /** the store's ports; 'create' (the default) creates and migrates it. The caller closes it. */
  open(mode?: 'read' | 'create'): Promise<OpenStore>;
  /**
   * Runs one SQL statement on the store (its own connection) and returns its rows: checks that only
   * raw rows can make, or a row planted as an older version would have written it. Parameters are
   * `?` on both backends ($1... also works on PostgreSQL); PostgreSQL's rows come back as SQLite's
   * would: bigint and numeric as numbers, booleans as 0 and 1.
   */
  rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** the first column of each row of rows() */
  column<T = unknown>(sql: string, params?: unknown[]): Promise<T[]>;
  /** the first column of the first row of rows(), undefined without rows */
  value<T = unknown>(sql: string, params?: unknown[]): Promise<T | undefined>;
}

export type StoreTestBody = (s: StoreUnderTest, t: TestContext) => Promise<void>;

export interface StoreTestOptions {
  /** only these backends (a test about one backend's own behaviour, with the reason next to it) */
  only?: StoreBackend[];
  timeout?: number;
  concurrency?: boolean | number;
}

/**
 * Call once at the top level of a test file: returns the `storeTest` function that registers each
 * test on SQLite and on PostgreSQL, and the backends list for files that loop themselves.
 */
export function eachStore(): {
  storeTest: (name: string, body: StoreTestBody, opts?: StoreTestOptions) => void;
  storeSuite: (body: (store: () => StoreUnderTest, backend: StoreBackend) => void) => void;
  fresh: (backend: StoreBackend, label?: string) => Promise<StoreUnderTest>;
} {
  const tmp = tempDir('egress-triage-each-store-');
  after(() => tmp.cleanup());
  const server = usePostgres();
  let n = 0;

  async function fresh(backend: StoreBackend, label = 'test'): Promise<StoreUnderTest> {
    const dir = join(tmp.dir, `${backend}-${++n}`);
    mkdirSync(dir);
    const db = backend === 'sqlite' ? join(dir, 'store.db') : await (await server()).createStoreDatabase(label);
    const rows = <T>(sql: string, params: unknown[] = []): Promise<T[]> => (backend === 'sqlite' ? sqliteRows<T>(db, sql, params) : postgresRows<T>(db, sql, params));
    const column = async <T>(sql: string, params?: unknown[]) => (await rows<Record<string, unknown>>(sql, params)).map((r) => Object.values(r)[0] as T);
    return {
      backend,
      db,
      env: { EGRESS_TRIAGE_DB: db },
      dir,
      open: (mode = 'create') => openStore(resolveStoreLocation(db, {}), mode),
      rows,
      column,
      value: async <T>(sql: string, params?: unknown[]) => (await column<T>(sql, params))[0],
    };
  }

  function storeTest(name: string, body: StoreTestBody, opts: StoreTestOptions = {}): void {
    for (const backend of opts.only ?? (['sqlite', 'postgres'] as const)) {
      test(`${name} [${backend}]`, { timeout: opts.timeout, concurrency: opts.concurrency }, async (t) => body(await fresh(backend, 't'), t));
    }
  }

  /**
   * For tests that build on each other's writes: `body` registers its tests once per backend, inside
   * a suite named "[sqlite]" or "[postgres]" whose tests share one store, created before the first.
   */
  function storeSuite(body: (store: () => StoreUnderTest, backend: StoreBackend) => void): void {
    for (const backend of ['sqlite', 'postgres'] as const) {
      describe(`[${backend}]`, () => {
        let s: StoreUnderTest | undefined;
        before(async () => {
          s = await fresh(backend, 'suite');
        });
        body(() => s!, backend);
      });
    }
  }

  return { storeTest, storeSuite, fresh };
}

async function sqliteRows<T>(path: string, sql: string, params: unknown[]): Promise<T[]> {
  const db = new Database(path, { fileMustExist: true });
  try {
    const st = db.prepare(sql);
    if (!st.reader) {
      st.run(...params);
      return [];
    }
    return st.all(...params) as T[];
  } finally {
    db.close();
  }
}

/** bigint (count(*)), numeric (sum()) and boolean values as SQLite returns them: numbers, 0 and 1 */
const SQLITE_LIKE: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return (v: string) => Number(v);
    if (oid === pg.types.builtins.BOOL) return (v: string) => (v === 't' ? 1 : 0);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

async function postgresRows<T>(url: string, sql: string, params: unknown[]): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, types: SQLITE_LIKE });
  await c.connect();
  try {
    // `?` placeholders (as on SQLite) become $1, $2, ...: one query text serves both backends
    let i = 0;
    const text = /\$1\b/.test(sql) ? sql : sql.replace(/\?/g, () => `$${++i}`);
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/**
 * `detections` with each row's status and rule, for raw checks: PostgreSQL keeps them on the row,
 * SQLite in a side table (test/helpers.ts DETECTIONS). Use as `FROM ${detectionsView(s.backend)} d`.
 */
export function detectionsView(backend: StoreBackend): string {
  return backend === 'sqlite' ? DETECTIONS : 'detections';
}

/**
 * The store's detections per destination host, as "<count>x<status>" joined by spaces in status order
 * (0 new, 1 suppressed, 2 resolved): `{ 'webhook.site': '2x0 1x1' }`.
 */
export async function statusByHost(s: StoreUnderTest): Promise<Record<string, string>> {
  const rows = (await s.rows(
    `SELECT e.host AS host, d.status AS status, count(*) AS n FROM ${detectionsView(s.backend)} AS d JOIN endpoints e ON e.id = d.endpoint_id
     GROUP BY e.host, d.status ORDER BY e.host, d.status`,
  )) as { host: string; status: number; n: number }[];
  const out: Record<string, string> = {};
  for (const r of rows) out[r.host] = `${out[r.host] ? `${out[r.host]} ` : ''}${Number(r.n)}x${Number(r.status)}`;
  return out;
}
