import { existsSync } from 'node:fs';
import { highestVersion, openSqlite, migrate, refuseForeignDatabase, tableNames } from './db.js';
import { missingTables, refuseDamagedStore } from '../schema-version.js';
import { CORE_MIGRATIONS, CORE_TABLES } from './core-migrations.js';
import type { SchemaPort, SchemaStatus } from '../schema-port.js';

/**
 * The core schema of a SQLite store file, for `db status` and `db migrate`. status() opens the file
 * read-only and never creates it. Policy-state migrations (100-199) are applied by the policy
 * state when it opens, not here.
 */
export class SqliteSchema implements SchemaPort {
  constructor(private readonly path: string) {}

  async status(): Promise<SchemaStatus> {
    const all = [...CORE_MIGRATIONS].sort((a, b) => a.version - b.version);
    if (this.path !== ':memory:' && !existsSync(this.path)) {
      return { applied: [], pending: all.map((m) => ({ version: m.version, name: m.name })), unknown: [], missing: [] };
    }
    const db = openSqlite(this.path, { readonly: true });
    try {
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
        missing: rows.length && !pending.length && !unknown.length ? missingTables(tableNames(db), CORE_TABLES) : [],
      };
    } finally {
      db.close();
    }
  }

  async migrate(): Promise<number[]> {
    if (this.path !== ':memory:' && existsSync(this.path)) refuseForeignDatabase(this.path);
    const db = openSqlite(this.path);
    try {
      const applied = migrate(db, CORE_MIGRATIONS);
      refuseDamagedStore(tableNames(db), CORE_TABLES, highestVersion(CORE_MIGRATIONS));
      return applied;
    } finally {
      db.close();
    }
  }
}
