/**
 * `npm run bench -- dashboard-queries`: the Detections page's queries (storage/dashboard-port.ts) on
 * a SQLite store of 1,000,000 detections built by the analysis bench's bulkLoad (same generator,
 * same seed). Times, warm, per call: the first page, a page half-way down (500,000 rows deep, by
 * cursor), the page before it, filtered first pages, the bounded count and the first CSV chunk.
 * Each is reported as wall and CPU time (this process: SQLite runs in it) and as a ratio to a
 * reference measured in the same run on the same table: a bare
 * `SELECT * FROM detections WHERE tenant_id = ? ORDER BY ts DESC, id DESC LIMIT 50`.
 * The query plans of the page queries are printed too. Set DASHBOARD_BENCH_SIZE to change the size.
 *
 * On PostgreSQL it also times `detections list` (DetectionRepository.list, what the CLI and MCP
 * call) against the one statement it was before, in the same run: DETECTION_SELECT's ten-table join
 * with the filter, ORDER BY and LIMIT, beside the same total. Warm, on the pool (plans cached by
 * each connection), and cold, each call on a new connection as a CLI call is.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { bulkLoad } from './analysis.js';
import { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { detectionQueryKey, encodeDetectionCursor } from '../src/storage/detection-cursor.js';
import { detectionsCsv } from '../src/dashboard-data/detections-export.js';
import { parseDetectionFilter, type DetectionFilter } from '../src/domain/filter.js';
import type { DashboardQueries } from '../src/storage/dashboard-port.js';
import { PgStore } from '../src/storage/postgres/pg-store.js';
import { DETECTION_SELECT, Params, PgDetectionRepository } from '../src/storage/postgres/detection-repo.js';
import { createPool, type PgPool } from '../src/storage/postgres/pool.js';
import { PostgresServer } from '../test/helpers/postgres.js';
import { copyToPostgres } from './analysis-pg.js';
import { serverCpuMs } from './postgres-cpu.js';

const ITERATIONS = 30;
const LIMIT = 50;
const COUNT_UP_TO = 10_000;

interface Timing {
  p50_ms: number;
  min_ms: number;
  cpu_ms: number;
}

/** `serverCpu`: CPU ms of a server process tree (PostgreSQL), added to this process's */
async function time(fn: () => Promise<unknown>, serverCpu: () => number = () => 0, iterations = ITERATIONS): Promise<Timing> {
  await fn(); // warm: statements prepared, pages cached
  const xs: number[] = [];
  const c0 = process.cpuUsage();
  const s0 = serverCpu();
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  const c = process.cpuUsage(c0);
  const server = serverCpu() - s0;
  xs.sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { p50_ms: r(xs[Math.floor(xs.length / 2)]!), min_ms: r(xs[0]!), cpu_ms: r(((c.user + c.system) / 1000 + server) / iterations) };
}

export async function runDashboardQueriesBench(): Promise<Record<string, unknown>> {
  const size = Number(process.env.DASHBOARD_BENCH_SIZE ?? 1_000_000);
  const path = join(tmpdir(), `egress-triage-dashboard-bench-${process.pid}.db`);
  process.stderr.write(`building a store of ${size} detections...\n`);
  const built = bulkLoad(path, size);
  const store = SqliteStore.open(path);
  try {
    const q = store.dashboard;
    const db = store.db;
    const tid = store.detections.tenantId('bench')!;
    const now = Date.parse('2026-11-01T00:00:00Z');
    const filter = (raw: Parameters<typeof parseDetectionFilter>[0]): DetectionFilter => parseDetectionFilter(raw, { now });
    const deep = db.prepare('SELECT ts, id FROM detections WHERE tenant_id = ? ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?').get(tid, Math.floor(built.detections / 2)) as { ts: number; id: number };
    // the unfiltered window's cursor: a cursor only pages the query that issued it
    const deepCursor = encodeDetectionCursor(deep.ts, deep.id, detectionQueryKey('bench', {}));
    const bare = db.prepare('SELECT * FROM detections WHERE tenant_id = ? ORDER BY ts DESC, id DESC LIMIT 50');

    const sqlite = await measureAll(q, async () => bare.all(tid), filter, deepCursor, overviewReads(store));
    let postgres: Record<string, unknown> | string = 'skipped (DASHBOARD_BENCH_PG=0)';
    if (process.env.DASHBOARD_BENCH_PG !== '0') postgres = await onPostgres(path, filter, deepCursor);
    return {
      detections: built.detections,
      jobs: built.jobs,
      build_ms: built.ms,
      page_size: LIMIT,
      count_up_to: COUNT_UP_TO,
      measured: 'wall p50 and CPU per call over 30 warm calls: this process (SQLite runs in it) plus, on PostgreSQL, the server processes (from /proc)',
      sqlite,
      postgres,
    };
  } finally {
    store.close();
    for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
  }
}

async function measureAll(
  q: DashboardQueries,
  bareSelect: () => Promise<unknown>,
  filter: (raw: Parameters<typeof parseDetectionFilter>[0]) => DetectionFilter,
  deepCursor: string,
  overview: Record<string, () => Promise<unknown>>,
  serverCpu: () => number = () => 0,
): Promise<Record<string, unknown>> {
  const reference = await time(bareSelect, serverCpu);
  const filters: Record<string, DetectionFilter> = {
    process_tailscaled: filter({ process: 'tailscaled' }),
    status_new_owner: filter({ status: 'new', owner: 'org-3' }),
    endpoint_host: filter({ endpoint: 'controlplane.tailscale.com' }),
    sha256_impostor: filter({ sha256: 'b2'.repeat(32) }),
    time_window_week: filter({ since: '2026-10-10T00:00:00Z', until: '2026-10-17T00:00:00Z' }),
  };
  const cases: Record<string, () => Promise<unknown>> = {
    first_page: () => q.detectionWindow('bench', { filter: {}, limit: LIMIT }),
    deep_page_500k: () => q.detectionWindow('bench', { filter: {}, limit: LIMIT, after: deepCursor }),
    prev_page_500k: () => q.detectionWindow('bench', { filter: {}, limit: LIMIT, before: deepCursor }),
    count_unfiltered: () => q.detectionWindow('bench', { filter: {}, limit: 0, countUpTo: COUNT_UP_TO }),
    first_page_with_count: () => q.detectionWindow('bench', { filter: {}, limit: LIMIT, countUpTo: COUNT_UP_TO }),
    ...overview,
    csv_first_chunk_1000_rows: async () => {
      const it = detectionsCsv(q, 'bench', {}, { batchSize: 1000 });
      await it.next(); // header
      const chunk = await it.next();
      await it.return(undefined);
      return chunk;
    },
  };
  for (const [name, f] of Object.entries(filters)) {
    cases[`filtered_page_${name}`] = () => q.detectionWindow('bench', { filter: f, limit: LIMIT });
    cases[`filtered_count_${name}`] = () => q.detectionWindow('bench', { filter: f, limit: 0, countUpTo: COUNT_UP_TO });
  }
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(cases)) {
    const t = await time(fn, serverCpu);
    out[name] = { ...t, ratio_p50: Math.round((t.p50_ms / reference.p50_ms) * 10) / 10, ratio_cpu: Math.round((t.cpu_ms / reference.cpu_ms) * 10) / 10 };
    process.stderr.write(`${name}: p50 ${t.p50_ms} ms, cpu ${t.cpu_ms} ms\n`);
  }
  const counts: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(filters)) counts[name] = (await q.detectionWindow('bench', { filter: f, limit: 0, countUpTo: COUNT_UP_TO })).count;
  return { reference_bare_select_limit_50: reference, ...out, counts };
}

/**
 * The overview's reads, before and after it stopped counting: detections.list (which totals the
 * tenant) against the window, and detections.stats (which counts every observation) against
 * overview.counts.
 */
function overviewReads(store: Pick<SqliteStore, 'detections' | 'overview' | 'dashboard'> | Pick<PgStore, 'detections' | 'overview' | 'dashboard'>): Record<string, () => Promise<unknown>> {
  return {
    overview_newest_10_by_list_before: () => store.detections.list('bench', {}, 10),
    overview_newest_10_by_window: () => store.dashboard.detectionWindow('bench', { filter: {}, limit: 10 }),
    overview_stats_before: () => store.detections.stats('bench'),
    overview_counts: () => store.overview.counts('bench'),
  };
}

/**
 * `detections list` on PostgreSQL, now (keys, then rows by a named statement) against before (one
 * statement joining ten tables around the filter and the ORDER BY), same filter, same total, same run.
 */
async function listBeforeAfter(
  url: string,
  pool: PgPool,
  tid: number,
  filter: (raw: Parameters<typeof parseDetectionFilter>[0]) => DetectionFilter,
  serverCpu: () => number,
): Promise<Record<string, unknown>> {
  const before = async (repo: PgDetectionRepository, p0: PgPool, f: DetectionFilter) => {
    await repo.tenantId('bench'); // as list did
    const p = new Params();
    const sql = `${DETECTION_SELECT} WHERE ${repo.where('d', tid, f, p)} ORDER BY d.ts DESC, d.id DESC LIMIT ${p.add(LIMIT + 1)} OFFSET ${p.add(0)}`;
    const tp = new Params();
    const total = `SELECT coalesce(sum(r.n), 0)::bigint AS n FROM detection_rollup r WHERE ${repo.where('r', tid, f, tp)}`;
    return Promise.all([p0.query(total, tp.values), p0.query(sql, p.values)]);
  };
  const repo = new PgDetectionRepository(pool);
  const filters: Record<string, DetectionFilter> = { unfiltered: {}, process_tailscaled: filter({ process: 'tailscaled' }), status_new_owner: filter({ status: 'new', owner: 'org-3' }) };
  const out: Record<string, unknown> = {};
  const ratio = (a: Timing, b: Timing) => ({ p50: Math.round((a.p50_ms / b.p50_ms) * 100) / 100, cpu: Math.round((a.cpu_ms / b.cpu_ms) * 100) / 100 });
  for (const [name, f] of Object.entries(filters)) {
    const warmBefore = await time(() => before(repo, pool, f), serverCpu);
    const warmAfter = await time(() => repo.list('bench', f, LIMIT), serverCpu);
    // cold: a new connection per call, as each `detections list` CLI call opens its own
    const cold = (fn: (r: PgDetectionRepository, p: PgPool) => Promise<unknown>) => async () => {
      const p = createPool(url, { max: 1 });
      try {
        await fn(new PgDetectionRepository(p), p);
      } finally {
        await p.end();
      }
    };
    const coldBefore = await time(cold((r, p) => before(r, p, f)), serverCpu, 10);
    const coldAfter = await time(cold((r) => r.list('bench', f, LIMIT)), serverCpu, 10);
    out[name] = { warm_before: warmBefore, warm_after: warmAfter, warm_after_vs_before: ratio(warmAfter, warmBefore), cold_before: coldBefore, cold_after: coldAfter, cold_after_vs_before: ratio(coldAfter, coldBefore) };
    process.stderr.write(`detections list ${name}: ${JSON.stringify(out[name])}\n`);
  }
  return out;
}

/** The same store copied row for row (same ids, so the same cursors) into a PostgreSQL this bench starts. */
async function onPostgres(sqlitePath: string, filter: (raw: Parameters<typeof parseDetectionFilter>[0]) => DetectionFilter, deepCursor: string): Promise<Record<string, unknown>> {
  const server = await PostgresServer.start({ sharedBuffers: '128MB', extra: ['-c max_wal_size=2GB'] });
  try {
    const url = await server.createDatabase('dashboard');
    process.stderr.write('copying the store into PostgreSQL...\n');
    const copied = await copyToPostgres(sqlitePath, url);
    const store = PgStore.connect(url);
    try {
      await store.pool.query('ANALYZE');
      const tid = (await store.pool.query<{ tenant_id: number }>("SELECT tenant_id FROM tenants WHERE name = 'bench'")).rows[0]!.tenant_id;
      const bare = () => store.pool.query('SELECT * FROM detection_rows WHERE tenant_id = $1 ORDER BY ts DESC, id DESC LIMIT 50', [tid]);
      const cpu = () => serverCpuMs(server);
      const list = await listBeforeAfter(url, store.pool, tid, filter, cpu);
      return { copy_ms: Math.round(copied.ms), ...(await measureAll(store.dashboard, bare, filter, deepCursor, overviewReads(store), cpu)), detections_list: list };
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
}
