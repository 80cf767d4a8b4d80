import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeTenant } from '../src/generate/index.js';

const CLI = resolve('dist/src/cli/main.js');
const BARE = resolve('dist/bench/bare-parse.js');

interface IngestTotals {
  records: number;
  accepted: number;
  detections: number;
  elapsedMs: number;
  eventsPerSecond: number;
  peakRssMiB: number;
}

interface BareTotals {
  lines: number;
  elapsedMs: number;
  linesPerSecond: number;
}

/** The real CLI in a child process, so its peak RSS is the ingest's own. */
function ingestChild(file: string, db: string): IngestTotals {
  removeStore(db);
  const r = spawnSync(process.execPath, [CLI, 'ingest', file, '--db', db, '--format', 'native', '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`ingest failed (${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { totals: IngestTotals }).totals;
}

function bareChild(file: string): BareTotals {
  const r = spawnSync(process.execPath, [BARE, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bare parse failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as BareTotals;
}

/** Issue 9: peak RSS of the ingest on the 5M-event file stays under this. */
const RSS_BUDGET_MIB = 400;

function removeStore(db: string): void {
  for (const s of ['', '-wal', '-shm']) rmSync(db + s, { force: true });
}

/** The store on disk: the database file plus whatever the WAL still holds. */
function storeBytes(db: string): number {
  let n = 0;
  for (const s of ['', '-wal']) if (existsSync(db + s)) n += statSync(db + s).size;
  return n;
}

/**
 * Ingest rate as a fraction of a bare `readline` + `JSON.parse` pass over the same file, run back
 * to back (the machine is shared, so absolute rates drift; the ratio is what is compared).
 * INGEST_BENCH_EVENTS / INGEST_BENCH_BIG_EVENTS change the sizes; a big size of 0 skips it.
 */
export async function runIngestBench(opts: { events?: number; bigEvents?: number; dir?: string } = {}): Promise<Record<string, unknown>> {
  const dir = resolve(opts.dir ?? 'bench/out');
  mkdirSync(dir, { recursive: true });
  const env = (k: string): number | undefined => (process.env[k] !== undefined ? Number(process.env[k]) : undefined);
  const small = opts.events ?? env('INGEST_BENCH_EVENTS') ?? 1_000_000;
  const big = opts.bigEvents ?? env('INGEST_BENCH_BIG_EVENTS') ?? 5_000_000;
  const out: Record<string, unknown> = {};
  for (const [label, n] of [['ingest_1M', small], ['ingest_5M', big]] as const) {
    if (!n) continue;
    const file = join(dir, `tenant-${n}.ndjson`);
    const t0 = Date.now();
    if (!existsSync(file)) await writeTenant({ runs: 20, seed: 42, events: n }, file);
    const genMs = Date.now() - t0;
    const db = join(dir, `ingest-${n}.db`);
    const bare = bareChild(file);
    const r = ingestChild(file, db);
    const bytes = storeBytes(db);
    const recordsPerSecond = r.records / Math.max(0.001, r.elapsedMs / 1000);
    out[label] = {
      events: r.accepted,
      file_mib: Math.round(statSync(file).size / 1048576),
      bare_parse_lines_per_s: bare.linesPerSecond,
      ingest_records_per_s: Math.round(recordsPerSecond),
      ratio_to_bare_parse: +(recordsPerSecond / bare.linesPerSecond).toFixed(2),
      detections: r.detections,
      elapsed_s: +(r.elapsedMs / 1000).toFixed(2),
      events_per_s: r.eventsPerSecond,
      peak_rss_mib: r.peakRssMiB,
      ...(label === 'ingest_5M' ? { peak_rss_within_budget: r.peakRssMiB < RSS_BUDGET_MIB } : {}),
      store_mib: +(bytes / 1048576).toFixed(1),
      store_bytes_per_detection: r.detections ? Math.round(bytes / r.detections) : null,
      generate_s: +(genMs / 1000).toFixed(2),
    };
    process.stderr.write(`${label}: ${JSON.stringify(out[label])}\n`);
    removeStore(db);
  }
  return out;
}
