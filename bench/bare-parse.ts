/**
 * The floor the ingest is measured against: `readline` + `JSON.parse` of every line, nothing else.
 * Run as a child process (like the ingest) so both pay the same start-up and neither shares a heap.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

async function main(): Promise<void> {
  const file = process.argv[2]!;
  const started = Date.now();
  let lines = 0;
  let kept = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line.length === 0) continue;
    const v = JSON.parse(line) as Record<string, unknown>;
    // touch the result so the parse cannot be optimised away
    if (v !== null && typeof v === 'object') kept++;
    lines++;
  }
  const elapsedMs = Date.now() - started;
  // user + system CPU since the process started, counted like the ingest's cpuMs
  const cpu = process.cpuUsage();
  const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  process.stdout.write(JSON.stringify({ lines, kept, elapsedMs, cpuMs, linesPerSecond: Math.round(lines / Math.max(0.001, elapsedMs / 1000)) }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
