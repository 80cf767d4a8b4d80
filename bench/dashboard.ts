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
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bulkLoad } from './analysis.js';
import { cliResult, ndjson, nativeEvent, tempDir } from '../test/helpers.js';
import { launchBrowser, newPage } from '../test/dashboard/browser.js';
import { startServer } from '../test/dashboard/server.js';

const TENANT = 'bench';

/** user+sys CPU ms of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

export async function runDashboardBench(opts: { detections?: number; iterations?: number } = {}): Promise<Record<string, unknown>> {
  const total = opts.detections ?? 1_000_000;
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
        }));
        out[name] = { ...(out[name] as object), ...facts };
        process.stderr.write(`${name}: ${JSON.stringify(out[name])}\n`);
      }
      const ref = (out.reference_404 as { load_p50_ms: number }).load_p50_ms;
      const ratios: Record<string, number> = {};
      for (const [name, v] of Object.entries(out)) if (name !== 'reference_404') ratios[name] = round((v as { load_p50_ms: number }).load_p50_ms / ref);
      await close();
      return { detections: load.detections, store_build_ms: Math.round(load.ms), pages: out, load_p50_vs_reference: ratios, measured: 'wall ms in Chromium (Navigation Timing, start to load event) and server user+sys CPU ms from /proc' };
    } finally {
      await browser.close();
      await server.stop();
    }
  } finally {
    t.cleanup();
  }
}
