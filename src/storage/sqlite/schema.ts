import { existsSync } from 'node:fs';
import { openSqlite, migrate, readSqlite, refuseForeignDatabase, tableNames, type SqliteDatabase } from './db.js';
import { POLICY_MIGRATIONS, POLICY_TABLES } from './policy-migrations.js';
import { missingTables, refuseDamagedStore } from '../schema-version.js';
import { CORE_MIGRATIONS, CORE_TABLES } from './core-migrations.js';
import type { SchemaPort, SchemaStatus } from '../schema-port.js';

/**
 * The tables a migrated SQLite store must have: the core's, and the policy state's once its
 * migrations were all applied to the file (a server with a policy ran on it). PostgreSQL makes both
 * in one family, so there a lost policy table is refused by every command too.
 */
function storeTables(db: SqliteDatabase): readonly string[] {
  const policy = db.prepare('SELECT count(*) FROM schema_migrations WHERE version >= 100 AND version < 200').pluck().get() as number;
  return policy >= POLICY_MIGRATIONS.length ? [...CORE_TABLES, ...POLICY_TABLES] : CORE_TABLES;
}

/** Refuses a migrated SQLite store that lacks one of storeTables (schema-version.ts refuseDamagedStore). */
export function refuseDamagedSqliteStore(db: SqliteDatabase): void {
  refuseDamagedStore(tableNames(db), storeTables(db));
}

/**
 * The core schema of a SQLite store file, for `db status` and `db migrate`. status() reads the file
 * without changing it (readSqlite) and never creates it. Policy-state migrations (100-199) are
 * applied by the policy state when it opens, not here.
 */
export class SqliteSchema implements SchemaPort {
  constructor(private readonly path: string) {}

  async status(): Promise<SchemaStatus> {
    const all = [...CORE_MIGRATIONS].sort((a, b) => a.version - b.version);
    if (this.path !== ':memory:' && !existsSync(this.path)) {
      return { applied: [], pending: all.map((m) => ({ version: m.version, name: m.name })), unknown: [], missing: [] };
    }
    // Another application's database is refused, as by every other command: its tables are no
    // pending migrations of ours, and it is never opened read-write.
    if (this.path !== ':memory:') refuseForeignDatabase(this.path);
    return readSqlite(this.path, (db) => {
      const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
      const rows = has
        ? (db.prepare('SELECT version, name, applied_at FROM schema_migrations WHERE version < 100 ORDER BY version').all() as { version: number; name: string; applied_at: string }[])
        : [];
      const done = new Set(rows.map((r) => r.version));
      const known = new Set(all.map((m) => m.version));
      const pending = all.filter((m) => !done.has(m.version)).map((m) => ({ version: m.version, name: m.name }));
      const unknown = rows.map((r) => r.version).filter((v) => !known.has(v));
      return {
        applied: rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at })),
        pending,
        unknown,
        missing: rows.length && !pending.length && !unknown.length ? missingTables(tableNames(db), storeTables(db)) : [],
      };
    });
  }

  async migrate(): Promise<number[]> {
    if (this.path !== ':memory:' && existsSync(this.path)) refuseForeignDatabase(this.path);
    const db = openSqlite(this.path);
    try {
      const applied = migrate(db, CORE_MIGRATIONS, CORE_TABLES);
      refuseDamagedSqliteStore(db);
      return applied;
    } finally {
      db.close();
    }
  }
}
