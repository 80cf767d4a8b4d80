import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cliResult, tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';
import { PgStore } from '../../../src/storage/postgres/pg-store.js';
import { PgIngestPort } from '../../../src/storage/postgres/ingest-port.js';
import { migratePostgres, PG_MIGRATIONS } from '../../../src/storage/postgres/migrations.js';
import { IngestPipeline } from '../../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../../src/detection/engine.js';
import { suppressorFor } from '../../../src/rules/suppressor.js';
import { byValue, endpointMatches, PgDictionaries } from '../../../src/storage/postgres/dictionaries.js';
import { createPool } from '../../../src/storage/postgres/pool.js';

/**
 * Values far longer than a btree index row may be (about 2.7 kB after compression): an endpoint, a
 * process name and path (so its variant key and normalised name), and a StepSecurity detection id
 * (the detection's external id). SQLite stores them; PostgreSQL must store them too, and both
 * stores must then answer every read the same, re-ingest included.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

/** Incompressible text: a repeated character would compress below the btree limit and hide the bug. */
function noise(seed: number, n: number): string {
  let s = '';
  let x = seed;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += x.toString(36);
  }
  return s.slice(0, n);
}

const LONG = 3000;
const LONG_PROCESS = `builder-${noise(1, LONG)}`;
const LONG_PATH = `/opt/${noise(2, LONG)}/curl`;
const LONG_ID = `id-${noise(3, LONG)}`;
const LONG_HOST = `${noise(4, LONG)}.example`;
/** a DNS name near the longest (253): four labels of 60 characters and `.example` (251) */
const DNS_LONGEST = `${[5, 6, 7, 8].map((n) => noise(n, 60)).join('.')}.example`;

function call(run: number, domain: string, proc = 'curl', t = 0, path = `/usr/bin/${proc.slice(0, 16)}`): Record<string, unknown> {
  return {
    owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: String(1000 + run), run_attempt: 1, job_id: String(5000 + run),
    timestamp: new Date(Date.UTC(2026, 9, 1) + run * 3_600_000 + t * 1000).toISOString(), port: 443, protocol: 'tcp', domain,
    process: { name: proc, path, sha256: 'sha-x', parent: { name: 'bash', path: '/usr/bin/bash' } }, status: 'allowed',
  };
}

/** Two learning runs, then a run where a long-named process and a long-pathed curl call somewhere new. */
function nativeFile(long: boolean): string {
  const lines = [call(1, 'github.com'), call(2, 'github.com'), call(3, 'github.com'), call(4, 'github.com')];
  lines.push(call(3, 'exfil.example', long ? LONG_PROCESS : 'builder', 1), call(3, 'exfil.example', 'curl', 2, long ? LONG_PATH : '/opt/x/curl'));
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

/** Imported detections: one with a long id, one from a long-named tool, one to a long host (kept raw: no DNS name is that long). */
function stepSecurityFile(long: boolean): string {
  const detections = [0, 1, 2].map((i) => ({
    id: i === 0 && long ? LONG_ID : `id-${i}`,
    detection_id: 'New-Outbound-Network-Call', owner: 'acme', repo: 'web', run_id: 13579 + i + (i === 2 && long ? 100 : 0), run_attempt: 1, job: 'build', job_id: 24680 + i,
    workflow_path: '.github/workflows/build.yml', timestamp: `2026-11-02T10:0${i}:00Z`,
    tool: { name: i === 1 && long ? LONG_PROCESS : 'node', sha256: 'ab', parent: 'npm' },
    // An endpoint's host is a DNS name (at most 253 characters: a longer one is a rejected record);
    // the long value rides in the expected endpoints of a run of its own, a dictionary keyed by its SHA-256 too.
    endpoint: i === 2 && long ? `${DNS_LONGEST}:443` : 'webhook.site:443',
    expected_outbound_connections: i === 2 && long ? ['github.com:443', `${LONG_HOST}:443`] : ['github.com:443'],
  }));
  return JSON.stringify({ data: { detections } });
}

async function ok(args: string[]): Promise<string> {
  const r = await cliResult(args);
  assert.equal(r.status, 0, `${args.slice(0, 2).join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function ingestCli(db: string, native: string, ss: string): Promise<void> {
  await ok(['ingest', native, '--db', db, '--format', 'native', '--learning-runs', '2', '--json']);
  await ok(['ingest', ss, '--db', db, '--format', 'stepsecurity', '--learning-runs', '2', '--json']);
}

/** What a user sees of a store: counts, the detections (with filters on the long values), the analysis. */
async function views(db: string): Promise<Record<string, unknown>> {
  const json = async (args: string[]) => JSON.parse(await ok([...args, '--db', db, '--json'])) as Record<string, unknown>;
  const { db: _, ...stats } = await json(['stats']);
  return {
    stats,
    detections: await json(['detections', 'list', '--limit', '100']),
    byLongProcess: await json(['detections', 'list', '--process', LONG_PROCESS]),
    analysis: await json(['analyze', '--min-count', '1', '--status', 'all']),
  };
}

test('values longer than a btree row: PostgreSQL stores them and answers as SQLite does, re-ingest included', async () => {
  const native = tmp.file('long.ndjson', nativeFile(true));
  const ss = tmp.file('long-ss.json', stepSecurityFile(true));
  const sqlite = join(tmp.dir, 'long.db');
  const pgUrl = await (await server()).createDatabase('long');
  const seen: Record<string, unknown>[] = [];
  for (const db of [sqlite, pgUrl]) {
    await ingestCli(db, native, ss);
    const first = await views(db);
    await ingestCli(db, native, ss);
    assert.deepEqual(await views(db), first, 're-ingest stores nothing twice');
    seen.push(first);
  }
  const [s, p] = seen as [Record<string, unknown>, Record<string, unknown>];
  const text = JSON.stringify(s);
  for (const v of [LONG_PROCESS, LONG_ID, LONG_HOST, LONG_PATH]) assert.ok(text.includes(JSON.stringify(v).slice(1, -1)), `the SQLite views show ${v.slice(0, 12)}...`);
  assert.equal((s.detections as { total: number }).total, 5, 'two raised, three imported');
  assert.equal((s.byLongProcess as { total: number }).total, 2);
  assert.deepEqual(p, s);
});

test('migration onto a populated store: its data stays, and long values then go in', async () => {
  const url = await (await server()).createDatabase('populated');
  // Filled by today's ingest, which names each run's expected sample by id: migration 13 (that
  // layout, on runs alone) goes in ahead of 6-12, which the test is about and touches no run column.
  const before = PG_MIGRATIONS.filter((m) => m.version <= 5 || m.version === 13);
  const pg = PgStore.connect(url);
  try {
    // a store as the release before this migration left it, filled by the ingest of that schema
    await migratePostgres(pg.pool, before);
    const port = new PgIngestPort(pg.pool);
    const pipe = new IngestPipeline(
      { ingest: port, setLearningRuns: (n: number) => pg.setMeta('learning_runs', String(n)) },
      { tenant: 'default', format: 'auto', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 2 }, suppressorFor: (_s, tenant) => suppressorFor(pg, tenant) },
    );
    await pg.setMeta('learning_runs', '2');
    await pipe.ingest(tmp.file('short.ndjson', nativeFile(false)));
    await pipe.ingest(tmp.file('short-ss.json', stepSecurityFile(false)));
    const applied = (await pg.pool.query<{ v: number }>('SELECT version AS v FROM schema_migrations ORDER BY 1')).rows.map((r) => r.v);
    assert.deepEqual(applied, [1, 2, 3, 4, 5, 13]);
  } finally {
    await pg.close();
  }
  const sqlite = join(tmp.dir, 'populated.db');
  await ingestCli(sqlite, tmp.file('short2.ndjson', nativeFile(false)), tmp.file('short2-ss.json', stepSecurityFile(false)));
  await ok(['db', 'migrate', '--db', url]);
  assert.deepEqual(await views(url), await views(sqlite), 'the migrated store holds what it held');
  // the old rows keep their keys: their re-ingest adds nothing; then the long values go in on both
  for (const db of [url, sqlite]) {
    await ingestCli(db, tmp.file('short3.ndjson', nativeFile(false)), tmp.file('short3-ss.json', stepSecurityFile(false)));
    await ingestCli(db, tmp.file('long3.ndjson', nativeFile(true)), tmp.file('long3-ss.json', stepSecurityFile(true)));
  }
  // PostgreSQL's sequences skip the ids a conflicting insert drew: compare what the ids point at
  const withoutIds = (v: unknown) => JSON.parse(JSON.stringify(v), (k, x: unknown) => (k === 'id' ? undefined : x)) as unknown;
  const [p, s] = [withoutIds(await views(url)), withoutIds(await views(sqlite))];
  const text = JSON.stringify(s);
  for (const v of [LONG_PROCESS, LONG_ID, LONG_HOST]) assert.ok(text.includes(v), `the SQLite views show ${v.slice(0, 12)}...`);
  assert.deepEqual(p, s);
});

test('lookups by value use the unique indexes on the key; host and process name lookups use their hash indexes', async () => {
  const pool = createPool(await (await server()).createDatabase('plans'));
  try {
    await migratePostgres(pool);
    const c = await pool.connect();
    try {
      const dict = new PgDictionaries(1);
      await dict.endpointIds(c, ['github.com:443', `${LONG_HOST}:443`]);
      await dict.ipIds(c, ['10.0.0.1']);
      await dict.processIds(c, [{ process: { name: LONG_PROCESS, normName: LONG_PROCESS, path: LONG_PATH, sha256: null, parentChain: [] } }]);
      await dict.typeIds(c, ['New-Outbound-Network-Call']);
      // a table this small is read whole by choice; without that choice, the index is the only way
      await c.query('SET enable_seqscan = off');
      const plan = async (sql: string, params: unknown[]) =>
        JSON.stringify((await c.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`, params)).rows[0]!['QUERY PLAN']);
      const cases: [string, unknown[], string][] = [
        [byValue('endpoints', 'endpoint', 2), [1, ['github.com:443']], 'endpoints_by_value'],
        [byValue('ips', 'ip', 2), [1, ['10.0.0.1']], 'ips_by_value'],
        [byValue('processes', 'variant_key', 2), [1, ['x']], 'processes_by_value'],
        [byValue('detection_types', 'name', 1, false), [['New-Outbound-Network-Call']], 'detection_types_by_value'],
        [`SELECT id FROM endpoints WHERE tenant_id = $1 AND ${endpointMatches('endpoint', '$2')}`, [1, 'github.com:443'], 'endpoints_by_value'],
        ['SELECT id FROM endpoints WHERE tenant_id = $1 AND host = $2', [1, LONG_HOST], 'endpoints_by_host'],
        ['SELECT id FROM processes WHERE tenant_id = $1 AND norm_name = ANY($2::text[])', [1, [LONG_PROCESS]], 'processes_by_norm'],
      ];
      for (const [sql, params, index] of cases) assert.match(await plan(sql, params), new RegExp(`"Index Name":"${index}"`), sql);
      // and the lookups find what they should: one row each, the long values included
      assert.deepEqual((await c.query(`SELECT id FROM endpoints WHERE tenant_id = $1 AND ${endpointMatches('endpoint', '$2')}`, [1, `${LONG_HOST}:443`])).rows.length, 1);
      assert.deepEqual((await c.query('SELECT id FROM processes WHERE tenant_id = $1 AND norm_name = ANY($2::text[])', [1, [LONG_PROCESS]])).rows.length, 1);
    } finally {
      c.release();
    }
  } finally {
    await pool.end();
  }
});
