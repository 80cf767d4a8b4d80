import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeTenant } from '../src/generate/index.js';

const CLI = resolve('dist/bundle/cli/main.js');
const BARE = resolve('dist/bench/bare-parse.js');

interface IngestTotals {
  records: number;
  accepted: number;
  detections: number;
  elapsedMs: number;
  eventsPerSecond: number;
  peakRssMiB: number;
  cpuMs: number;
}

interface BareTotals {
  lines: number;
  elapsedMs: number;
  cpuMs: number;
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One round: the bare pass, then the ingest, back to back; both ratios are of this round alone. */
interface Round {
  bare: BareTotals;
  ingest: IngestTotals;
  /** ingest records/s over bare lines/s (wall clock) */
  ratio: number;
  /** bare CPU over ingest CPU (user+system, whole process, every thread): the same file, so the same work to do */
  cpuRatio: number;
}

function round(file: string, db: string): Round {
  const bare = bareChild(file);
  const ingest = ingestChild(file, db);
  const recordsPerSecond = ingest.records / Math.max(0.001, ingest.elapsedMs / 1000);
  return { bare, ingest, ratio: recordsPerSecond / bare.linesPerSecond, cpuRatio: bare.cpuMs / Math.max(1, ingest.cpuMs) };
}

/**
 * Ingest rate as a fraction of a bare `readline` + `JSON.parse` pass over the same file, run back
 * to back (the machine is shared, so absolute rates drift; the ratio is what is compared). The
 * 1M file is measured in INGEST_BENCH_ROUNDS rounds (default 3) and the median of the rounds'
 * ratios reported, with each round's; the 5M file (its peak RSS is the budget) in one.
 * Wall-clock and CPU (user+sys of each child process) ratios are both reported.
 * INGEST_BENCH_EVENTS / INGEST_BENCH_BIG_EVENTS change the sizes; a big size of 0 skips it.
 */
export async function runIngestBench(opts: { events?: number; bigEvents?: number; dir?: string; rounds?: number } = {}): Promise<Record<string, unknown>> {
  const dir = resolve(opts.dir ?? 'bench/out');
  mkdirSync(dir, { recursive: true });
  const env = (k: string): number | undefined => (process.env[k] !== undefined ? Number(process.env[k]) : undefined);
  const small = opts.events ?? env('INGEST_BENCH_EVENTS') ?? 1_000_000;
  const big = opts.bigEvents ?? env('INGEST_BENCH_BIG_EVENTS') ?? 5_000_000;
  const rounds = Math.max(1, opts.rounds ?? env('INGEST_BENCH_ROUNDS') ?? 3);
  const out: Record<string, unknown> = {};
  for (const [label, n, times] of [['ingest_1M', small, rounds], ['ingest_5M', big, 1]] as const) {
    if (!n) continue;
    const file = join(dir, `tenant-${n}.ndjson`);
    const t0 = Date.now();
    if (!existsSync(file)) await writeTenant({ runs: 20, seed: 42, events: n }, file);
    const genMs = Date.now() - t0;
    const db = join(dir, `ingest-${n}.db`);
    const rs: Round[] = [];
    let bytes = 0;
    for (let i = 0; i < times; i++) {
      rs.push(round(file, db));
      bytes = storeBytes(db);
      removeStore(db);
      process.stderr.write(`${label} round ${i + 1}/${times}: ratio ${rs[i]!.ratio.toFixed(3)}, cpu ratio ${rs[i]!.cpuRatio.toFixed(3)}\n`);
    }
    const last = rs[rs.length - 1]!;
    const r = last.ingest;
    const med = (f: (x: Round) => number) => median(rs.map(f));
    out[label] = {
      events: r.accepted,
      file_mib: Math.round(statSync(file).size / 1048576),
      rounds: times,
      ratio_to_bare_parse: +med((x) => x.ratio).toFixed(2),
      ratio_to_bare_parse_rounds: rs.map((x) => +x.ratio.toFixed(3)),
      cpu_ratio_to_bare_parse: +med((x) => x.cpuRatio).toFixed(2),
      cpu_ratio_to_bare_parse_rounds: rs.map((x) => +x.cpuRatio.toFixed(3)),
      bare_parse_lines_per_s: Math.round(med((x) => x.bare.linesPerSecond)),
      ingest_records_per_s: Math.round(med((x) => x.ingest.records / Math.max(0.001, x.ingest.elapsedMs / 1000))),
      bare_cpu_s: +(med((x) => x.bare.cpuMs) / 1000).toFixed(2),
      ingest_cpu_s: +(med((x) => x.ingest.cpuMs) / 1000).toFixed(2),
      detections: r.detections,
      elapsed_s: +(med((x) => x.ingest.elapsedMs) / 1000).toFixed(2),
      events_per_s: Math.round(med((x) => x.ingest.eventsPerSecond)),
      peak_rss_mib: Math.max(...rs.map((x) => x.ingest.peakRssMiB)),
      ...(label === 'ingest_5M' ? { peak_rss_within_budget: r.peakRssMiB < RSS_BUDGET_MIB } : {}),
      store_mib: +(bytes / 1048576).toFixed(1),
      store_bytes_per_detection: r.detections ? Math.round(bytes / r.detections) : null,
      generate_s: +(genMs / 1000).toFixed(2),
    };
    process.stderr.write(`${label}: ${JSON.stringify(out[label])}\n`);
  }
  return out;
}
