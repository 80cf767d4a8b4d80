import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cliResult, runCli } from '../helpers.js';
import type { PostgresServer } from './postgres.js';

/**
 * One generated tenant ingested by the real CLI into a SQLite file in `dir` and into a fresh
 * PostgreSQL database of `server`: the two stores a cross-backend CLI test compares.
 */
export async function sameDataOnBothStores(
  dir: string,
  server: PostgresServer,
  o: { database: string; seed: number; events: number; learningRuns: number },
): Promise<{ sqlite: string; pgUrl: string }> {
  const input = join(dir, 'tenant.ndjson');
  const g = runCli(['generate', '--runs', '8', '--seed', String(o.seed), '--events', String(o.events), '--out', input]);
  assert.equal(g.status, 0, g.stderr);
  const sqlite = join(dir, 'store.db');
  const pgUrl = await server.createStoreDatabase(o.database);
  for (const db of [sqlite, pgUrl]) {
    const r = await cliResult(['ingest', input, '--db', db, '--format', 'native', '--learning-runs', String(o.learningRuns)]);
    assert.equal(r.status, 0, r.stderr);
  }
  return { sqlite, pgUrl };
}
