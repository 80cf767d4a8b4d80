/**
 * `npm run bench -- dashboard`: how long the dashboard's pages take to render in a real browser on a
 * store with 1M detections. Builds the store with the analysis bench's bulk loader (bench/analysis.ts)
 * plus one run ingested by the real CLI (so a run page has calls), starts the real built server
 * (`dashboard`, a child process) and drives headless Debian Chromium through playwright-core.
 *
 * Per page: wall time from navigation start to the load event (the browser's Navigation Timing: the
 * server's answer, parsing, the stylesheet and the module script), median and max over the
 * iterations, and the server process's CPU time (user+sys from /proc) per render. The reference,
 * measured in the same run: the server's 404 page, the same layout, assets and session handling
 * with no store read.
 *
 * The Detections page is measured unfiltered, filtered, and 500,000 rows deep (by the cursor the
 * page itself would carry there: the (ts, id) key of that row, read from the store file before the
 * server starts), and by following its "Older" link page after page. Its CSV export is fetched by
 * the page's own fetch (same session, same browser): time to the first body chunk of the whole
 * tenant's export (then cancelled), and the whole export of two bounded filters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bulkLoad } from './analysis.js';
import { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { detectionQueryKey, encodeDetectionCursor } from '../src/storage/detection-cursor.js';
import { cliResult, ndjson, nativeEvent, tempDir } from '../test/helpers.js';
import type { Page } from 'playwright-core';
import { launchBrowser, newPage } from '../test/dashboard/browser.js';
import { startServer } from '../test/dashboard/server.js';

const TENANT = 'bench';

/** user+sys CPU ms of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** the analysis bench's impostor binary of tailscaled (bench/analysis.ts PROCS): a rare match */
const IMPOSTOR_SHA = 'b2'.repeat(32);
const WALK_HOPS = 20;

/** The cursor the Detections page would carry to show the rows after the n-th newest. */
function cursorAt(db: string, n: number): string {
  const store = SqliteStore.open(db);
  try {
    const tid = store.detections.tenantId(TENANT)!;
    const row = store.db.prepare('SELECT ts, id FROM detections WHERE tenant_id = ? ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?').get(tid, n) as { ts: number; id: number };
    // the unfiltered Detections page's cursor: a cursor only pages the query that issued it
    return encodeDetectionCursor(row.ts, row.id, detectionQueryKey(TENANT, {}));
  } finally {
    store.close();
  }
}

/** From the first Detections page, follows its "Older" link `hops` times, as a person paging would. */
async function followOlder(page: Page, base: string, pid: number, hops: number): Promise<Record<string, unknown>> {
  await page.goto(base + '/detections', { waitUntil: 'load' });
  const walls: number[] = [];
  const cpu0 = cpuMs(pid);
  for (let i = 0; i < hops; i++) {
    const href = await page.getAttribute('a[rel=next]', 'href');
    if (!href) throw new Error(`no "Older" link after ${i} hops`);
    await page.goto(base + href, { waitUntil: 'load' });
    walls.push(await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return n.loadEventEnd - n.startTime;
    }));
  }
  const cpu = (cpuMs(pid) - cpu0) / hops;
  const rows = await page.evaluate(() => document.querySelectorAll('main tbody tr').length);
  const r = { load_p50_ms: round(median(walls)), load_max_ms: round(Math.max(...walls)), server_cpu_ms_per_render: round(cpu), iterations: hops, table_rows: rows, rows_deep: hops * 50 };
  process.stderr.write(`detections_follow_older: ${JSON.stringify(r)}\n`);
  return r;
}

/**
 * Fetches a CSV export from inside the page (its session, its browser): ms to the first body chunk
 * and, when `whole`, to the end; otherwise the download is cancelled after the first chunk.
 */
async function timeCsv(page: Page, url: string, pid: number, iterations: number, whole: boolean, status = 200): Promise<Record<string, unknown>> {
  const once = () =>
    page.evaluate(
      async ({ url, whole }) => {
        const t0 = performance.now();
        const res = await fetch(url);
        const reader = res.body!.getReader();
        const first = await reader.read();
        const firstMs = performance.now() - t0;
        let bytes = first.value?.length ?? 0;
        let lines = first.value ? first.value.filter((b) => b === 10).length : 0;
        if (whole) {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            bytes += value.length;
            lines += value.filter((b) => b === 10).length;
          }
        } else await reader.cancel();
        return { status: res.status, firstMs, totalMs: performance.now() - t0, bytes, lines };
      },
      { url, whole },
    );
  const warm = await once();
  if (warm.status !== status) throw new Error(`${url}: HTTP ${warm.status}`);
  const firsts: number[] = [];
  const totals: number[] = [];
  let last = warm;
  const cpu0 = cpuMs(pid);
  for (let i = 0; i < iterations; i++) {
    last = await once();
    firsts.push(last.firstMs);
    totals.push(last.totalMs);
  }
  const cpu = (cpuMs(pid) - cpu0) / iterations;
  const r = {
    first_chunk_p50_ms: round(median(firsts)),
    total_p50_ms: round(median(totals)),
    total_max_ms: round(Math.max(...totals)),
    server_cpu_ms_per_export: round(cpu),
    iterations,
    ...(whole ? { rows: last.lines - 1, bytes: last.bytes } : { first_chunk_bytes: last.bytes }),
  };
  process.stderr.write(`${url}: ${JSON.stringify(r)}\n`);
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

export async function runDashboardBench(opts: { detections?: number; iterations?: number } = {}): Promise<Record<string, unknown>> {
  const total = opts.detections ?? Number(process.env.DASHBOARD_BENCH_SIZE ?? 1_000_000);
  const iterations = opts.iterations ?? 9;
  const t = tempDir('egress-triage-bench-dash-');
  const db = join(t.dir, 'bench.db');
  try {
    process.stderr.write(`building a store with ${total} detections...\n`);
    const load = bulkLoad(db, total);
    // one real run through the real ingest, so the run page measured has calls and a detection
    const spec = { owner: 'bench-org', repo: 'bench-repo', job: 'build', tenant: TENANT };
    const events = [
      ...[1, 2, 3, 4, 5, 6].flatMap((run) => [nativeEvent({ ...spec, run, domain: 'registry.npmjs.org', process: 'node' }), nativeEvent({ ...spec, run, domain: 'github.com', process: 'git' })]),
      ...Array.from({ length: 40 }, (_, i) => nativeEvent({ ...spec, run: 7, t: i, domain: i % 2 ? 'registry.npmjs.org' : `cdn${i}.example`, process: 'node' })),
    ];
    const ing = await cliResult(['ingest', t.file('run.ndjson', ndjson(events)), '--db', db, '--tenant', TENANT, '--format', 'native']);
    if (ing.status !== 0) throw new Error(`ingest failed: ${ing.stderr}`);
    const deepRows = Math.floor(load.detections / 2);
    const deepCursor = cursorAt(db, deepRows);

    const server = await startServer('dashboard', ['--db', db, '--tenant', TENANT]);
    const browser = await launchBrowser();
    try {
      const { page, close } = await newPage(browser);
      const pid = server.child.pid!;
      const suggested = '/processes/preview?detection_id=New-Outbound-Network-Call&c.process=tailscaled&c.process_sha256=' + 'a1'.repeat(32);
      const pages: Record<string, string> = {
        reference_404: '/no-such-page',
        processes: '/processes',
        rule_preview: suggested,
        rule_preview_page_100: `${suggested}&page=100`,
        overview: '/',
        run: '/github/bench-org/bench-repo/actions/runs/1007?jobId=5007&tab=network-events',
        detections: '/detections',
        detections_process_tailscaled_status_new: '/detections?process=tailscaled&status=new',
        detections_sha256_impostor: `/detections?sha256=${IMPOSTOR_SHA}`,
        detections_one_week: '/detections?since=2026-10-10T00:00:00Z&until=2026-10-17T00:00:00Z',
        detections_half_way_deep: `/detections?after=${encodeURIComponent(deepCursor)}`,
      };
      const out: Record<string, unknown> = {};
      for (const [name, path] of Object.entries(pages)) {
        // one warm-up (the first request of a page warms the analysis's caches and the browser's)
        const first = await page.goto(server.base + path);
        if (!first || (first.status() !== 200 && name !== 'reference_404')) throw new Error(`${path}: HTTP ${first?.status()}`);
        const walls: number[] = [];
        const serverMs: number[] = [];
        const cpu0 = cpuMs(pid);
        for (let i = 0; i < iterations; i++) {
          await page.goto(server.base + path, { waitUntil: 'load' });
          const nav = await page.evaluate(() => {
            const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
            return { load: n.loadEventEnd - n.startTime, ttfb: n.responseStart - n.requestStart };
          });
          walls.push(nav.load);
          serverMs.push(nav.ttfb);
        }
        const cpu = (cpuMs(pid) - cpu0) / iterations;
        out[name] = { load_p50_ms: round(median(walls)), load_max_ms: round(Math.max(...walls)), ttfb_p50_ms: round(median(serverMs)), server_cpu_ms_per_render: round(cpu), iterations };
        // what was on the page, so the numbers say what they measured
        const facts = await page.evaluate(() => ({
          process_groups: document.querySelectorAll('section.process').length,
          would_suppress: document.querySelector('[data-field=would-suppress]')?.textContent ?? null,
          table_rows: document.querySelectorAll('main tbody tr').length,
          count: document.querySelector('[data-field=count]')?.textContent ?? null,
        }));
        out[name] = { ...(out[name] as object), ...facts };
        process.stderr.write(`${name}: ${JSON.stringify(out[name])}\n`);
      }
      out.detections_follow_older = await followOlder(page, server.base, pid, WALK_HOPS);
      (out.detections_half_way_deep as Record<string, unknown>).rows_deep = deepRows;
      // the exports are fetched, not navigated to: their reference is the 404 page fetched the same way
      const csv: Record<string, unknown> = {
        reference_404_fetch: await timeCsv(page, server.base + '/no-such-page', pid, iterations, true, 404),
        csv_whole_tenant: await timeCsv(page, server.base + '/detections.csv', pid, iterations, false),
        csv_sha256_impostor: await timeCsv(page, `${server.base}/detections.csv?sha256=${IMPOSTOR_SHA}`, pid, iterations, true),
        csv_one_day: await timeCsv(page, `${server.base}/detections.csv?since=2026-10-15T00:00:00Z&until=2026-10-16T00:00:00Z`, pid, 3, true),
      };
      const ref = (out.reference_404 as { load_p50_ms: number }).load_p50_ms;
      const ratios: Record<string, number> = {};
      for (const [name, v] of Object.entries(out)) if (name !== 'reference_404') ratios[name] = round((v as { load_p50_ms: number }).load_p50_ms / ref);
      const fetchRef = (csv.reference_404_fetch as { total_p50_ms: number }).total_p50_ms;
      for (const [name, v] of Object.entries(csv)) {
        if (name === 'reference_404_fetch') continue;
        const c = v as { first_chunk_p50_ms: number; total_p50_ms: number; rows?: number };
        ratios[`${name}_first_chunk`] = round(c.first_chunk_p50_ms / fetchRef);
        if (c.rows !== undefined) ratios[`${name}_whole`] = round(c.total_p50_ms / fetchRef);
      }
      await close();
      return {
        detections: load.detections,
        store_build_ms: Math.round(load.ms),
        pages: out,
        csv_export: csv,
        load_p50_vs_reference: ratios,
        measured: 'wall ms in Chromium (Navigation Timing, start to load event; CSV: the page\'s fetch, to the first body chunk and to the end) and server user+sys CPU ms from /proc',
      };
    } finally {
      await browser.close();
      await server.stop();
    }
  } finally {
    t.cleanup();
  }
}
