import { ForeignDatabaseError, refuseMigrationOnLostTable, refuseNewerSchema } from '../schema-version.js';
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export type SqliteDatabase = Database.Database;

/** A versioned schema change. Versions 1-99 belong to the core store, 100-199 to policy state. */
export interface Migration {
  version: number;
  name: string;
  up: string | ((db: SqliteDatabase) => void);
}

export interface OpenOptions {
  readonly?: boolean;
  /** ms to wait on a lock held by another process before failing. */
  busyTimeoutMs?: number;
}

/**
 * Opens a SQLite file in WAL mode so one writer and many readers (CLI ingest + MCP server)
 * can share it across processes. synchronous=NORMAL is durable against process crashes,
 * which is the failure mode we promise to survive; power loss may drop the last commits.
 */
export function openSqlite(path: string, opts: OpenOptions = {}): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { readonly: opts.readonly ?? false });
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 15000}`);
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }
  db.pragma('foreign_keys = ON');
  db.pragma('cache_size = -65536'); // 64 MiB page cache
  db.pragma('temp_store = MEMORY');
  return db;
}

/**
 * Runs `read` on an existing file through a connection that changes nothing and leaves nothing beside
 * it. Reading a WAL database makes its -wal and -shm files, and a read-only connection cannot remove
 * them when it closes: `db status`, which changes nothing, left two files next to the store. A
 * read-write connection removes them when it is the last to close. It sets no pragma (journal_mode
 * would convert another application's database); SQLite itself opens it read-only where the file is
 * not writable, and where the folder is not (no -wal can be made) it is read again read-only.
 */
export function readSqlite<T>(path: string, read: (db: SqliteDatabase) => T): T {
  const attempt = (readonly: boolean): T => {
    const db = new Database(path, { readonly, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 15000');
      return read(db);
    } finally {
      db.close();
    }
  };
  try {
    return attempt(false);
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY')) return attempt(true);
    throw e;
  }
}

/**
 * What an existing file at `path` is, read without changing it: an egress-triage store, an empty
 * file (or a database with no table: a store can be made there), or another application's SQLite
 * database, whose tables are named. A store is never made inside another application's database:
 * migrating it there would add two dozen tables to a file someone else owns.
 */
export function sqliteFileKind(path: string): { kind: 'store' | 'empty' } | { kind: 'foreign'; tables: string[] } {
  if (statSync(path).size === 0) return { kind: 'empty' };
  // Read-only, unlike readSqlite: a read-write connection would roll back another application's hot
  // journal. What it leaves beside a store, the store's own connection removes when it closes.
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = tableNames(db);
    if (tables.length === 0) return { kind: 'empty' };
    return tables.includes('schema_migrations') ? { kind: 'store' } : { kind: 'foreign', tables };
  } finally {
    db.close();
  }
}

/**
 * Throws ForeignDatabaseError when `path` is another application's SQLite database; otherwise says
 * what it is, or null when it is no SQLite file or cannot be read (opening it reports that as it
 * always has).
 */
export function refuseForeignDatabase(path: string, display = path): 'store' | 'empty' | null {
  let what;
  try {
    what = sqliteFileKind(path);
  } catch {
    return null;
  }
  if (what.kind !== 'foreign') return what.kind;
  const named = what.tables.slice(0, 5).join(', ') + (what.tables.length > 5 ? `, and ${what.tables.length - 5} more` : '');
  throw new ForeignDatabaseError(`${display} is a SQLite database of something else (tables ${named}), not an egress-triage store: give the path of a store, or of a new file; nothing was changed`);
}

/** The names of the file's own tables (SQLite's internal ones left out). */
export function tableNames(db: SqliteDatabase): string[] {
  return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
}

/** Sets a store-wide setting (the meta table): `learning_runs`, `verdict_revision`. */
export function writeMeta(db: SqliteDatabase, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
}

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction so two processes
 * starting at once cannot both apply the same version. `tables`: what the whole family makes, so a
 * migration that fails on one of them gone is said to meet a damaged store.
 */
export function migrate(db: SqliteDatabase, migrations: readonly Migration[], tables: readonly string[] = []): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  refuseNewerSchema(
    db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[],
    migrations.map((m) => m.version),
  );
  const applied: number[] = [];
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  for (const m of sorted) {
    const run = db.transaction(() => {
      const done = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
      if (done) return false;
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      db.prepare('INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
      return true;
    });
    let done: boolean;
    try {
      done = run.immediate();
    } catch (err) {
      // a table the store's schema made is gone (`tables`): the store is damaged, not this build
      refuseMigrationOnLostTable(m, /^no such table: (\S+)$/.exec((err as Error).message)?.[1], tables);
      throw err;
    }
    if (done) applied.push(m.version);
  }
  return applied;
}
