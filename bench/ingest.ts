import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeTenant } from '../src/generate/index.js';

const CLI = resolve('dist/src/cli/main.js');

interface IngestTotals {
  accepted: number;
  detections: number;
  elapsedMs: number;
  eventsPerSecond: number;
  peakRssMiB: number;
}

/** The real CLI in a child process, so its peak RSS is the ingest's own. */
function ingestChild(file: string, db: string): IngestTotals {
  for (const s of ['', '-wal', '-shm']) rmSync(db + s, { force: true });
  const r = spawnSync(process.execPath, [CLI, 'ingest', file, '--db', db, '--format', 'native', '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`ingest failed (${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { totals: IngestTotals }).totals;
}

export async function runIngestBench(opts: { events?: number; bigEvents?: number; dir?: string } = {}): Promise<Record<string, unknown>> {
  const dir = resolve(opts.dir ?? 'bench/out');
  mkdirSync(dir, { recursive: true });
  const out: Record<string, unknown> = {};
  for (const [label, n] of [['ingest_1M', opts.events ?? 1_000_000], ['ingest_5M', opts.bigEvents ?? 5_000_000]] as const) {
    const file = join(dir, `tenant-${n}.ndjson`);
    const t0 = Date.now();
    if (!existsSync(file)) await writeTenant({ runs: 20, seed: 42, events: n }, file);
    const genMs = Date.now() - t0;
    const r = ingestChild(file, join(dir, `ingest-${n}.db`));
    out[label] = {
      events: r.accepted,
      file_mib: Math.round(statSync(file).size / 1048576),
      detections: r.detections,
      elapsed_s: +(r.elapsedMs / 1000).toFixed(2),
      events_per_s: r.eventsPerSecond,
      peak_rss_mib: r.peakRssMiB,
      generate_s: +(genMs / 1000).toFixed(2),
    };
    process.stderr.write(`${label}: ${JSON.stringify(out[label])}\n`);
  }
  return out;
}
