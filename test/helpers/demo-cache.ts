import { copyFileSync, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

/**
 * Generated stores kept for the rest of one suite run (EGRESS_TRIAGE_TEST_CACHE, set by
 * scripts/run-tests.mjs), so test files asking for the same generated tenant copy it instead of
 * generating and ingesting it again: the MCP files' 12,000-event demo store cost about 1.5 s of CPU
 * on SQLite and more on PostgreSQL (client and server), in some ten files. Each file gets its own copy
 * to change. A SQLite store is kept as a file in the cache folder; a PostgreSQL one as a database of
 * the shared server (the runner's, which ends with the run) that later stores are created from.
 * Outside a suite run nothing is kept. Files race as for the initdb template: each that finds nothing
 * builds its own and offers it; the first offer is kept, and every offer holds the same data.
 */

function cacheDir(): string | undefined {
  return process.env.EGRESS_TRIAGE_TEST_CACHE || undefined;
}

function isPostgres(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

/** The cached store `key` copied to `db` (a SQLite path not yet created, or an empty database's URL); false when none is kept. */
export async function copyCachedStore(key: string, db: string): Promise<boolean> {
  const cache = cacheDir();
  if (!cache) return false;
  if (!isPostgres(db)) {
    const kept = join(cache, `${key}.db`);
    if (!existsSync(kept) || existsSync(db)) return false;
    copyFileSync(kept, db);
    return true;
  }
  const { admin, name } = serverOf(db);
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    const template = templateName(key);
    if ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [template])).rowCount === 0) return false;
    // the database the caller made for this store is empty: it is made again as a copy of the kept one
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name} TEMPLATE ${template} STRATEGY FILE_COPY`);
    return true;
  } finally {
    await c.end();
  }
}

/** Keeps the closed store at `db` as `key` for later files of this suite run, unless one is kept already. */
export async function offerStore(key: string, db: string): Promise<void> {
  const cache = cacheDir();
  if (!cache) return;
  if (!isPostgres(db)) {
    // a store closed as the CLI closes it has no write-ahead log left; one that has is not offered
    if (existsSync(`${db}-wal`) && statSync(`${db}-wal`).size > 0) return;
    const kept = join(cache, `${key}.db`);
    const offered = `${kept}.${process.pid}`;
    try {
      copyFileSync(db, offered);
      renameSync(offered, kept);
    } finally {
      rmSync(offered, { force: true });
    }
    return;
  }
  const { admin, name } = serverOf(db);
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${templateName(key)} TEMPLATE ${name} STRATEGY FILE_COPY`);
  } catch {
    // another file offered it first (the name exists), or a connection of ours to the store had not
    // ended yet: the data is the same either way, and this file already has its store
  } finally {
    await c.end();
  }
}

function serverOf(db: string): { admin: string; name: string } {
  const u = new URL(db);
  const name = decodeURIComponent(u.pathname.slice(1));
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`unexpected test database name "${name}" in ${db}`);
  u.pathname = '/postgres';
  return { admin: u.toString(), name };
}

function templateName(key: string): string {
  return `cached_${key.toLowerCase().replace(/[^a-z0-9_]+/g, '_')}`;
}
