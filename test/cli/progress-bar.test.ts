import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI, nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { statSync } from 'node:fs';

// The ingest progress bar as a terminal shows it (src/cli/commands/ingest.ts). script(1) gives the
// CLI a pseudo-terminal, which turns the bar on; everything it drew is in script's output. A store
// concern it is not: SQLite alone.

const tmp = tempDir();
after(() => tmp.cleanup());

const evs: EventSpec[] = [];
for (let i = 0; i < 2_000; i++) evs.push({ run: i % 4, domain: `h${i}.example.com`, process: 'node' });
const file = tmp.file('events.ndjson', ndjson(evs.map(nativeEvent)));

/** What the terminal received while `shell` ran in it. */
function onTerminal(shell: string): string {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
  // CI=true (set by .ci/run) turns the bar off on any terminal
  for (const k of ['CI', 'EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG']) delete env[k];
  const r = spawnSync('script', ['-qfec', shell, '/dev/null'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout;
}

/** The frames the bar drew: each starts at column 1 (ESC [1G) and ends by clearing the rest of the line. */
function frames(out: string): string[] {
  return [...out.matchAll(/\x1b\[1G([^\x1b]*)\x1b\[0K/g)].map((m) => m[1]!);
}

test('a file: the bar starts at 0% of the file size, not at 100% of nothing, and ends at 100%', () => {
  const out = onTerminal(`'${process.execPath}' '${CLI}' ingest '${file}' --db '${join(tmp.dir, 'file.db')}'`);
  const drawn = frames(out);
  assert.ok(drawn.length >= 2, `the bar was drawn: ${JSON.stringify(out)}`);
  const mib = (Math.round((Buffer.byteLength(ndjson(evs.map(nativeEvent))) / 1048576) * 10) / 10).toString();
  assert.match(drawn[0]!, new RegExp(`\\| 0% \\| 0/${mib.replace('.', '\\.')} MiB \\| 0 records`), 'the first frame');
  assert.match(drawn.at(-1)!, new RegExp(`\\| 100% \\| ${mib.replace('.', '\\.')}/${mib.replace('.', '\\.')} MiB \\| 2000 records`), 'the last frame');
  assert.ok(drawn.every((f) => !/ 0\/0 MiB/.test(f)), `no frame claims a total of nothing: ${JSON.stringify(drawn)}`);
});

test('a pipe: the bar shows what was read, with no percentage or ETA, since the size is unknown', () => {
  const out = onTerminal(`cat '${file}' | '${process.execPath}' '${CLI}' ingest - --db '${join(tmp.dir, 'pipe.db')}'`);
  const drawn = frames(out);
  assert.ok(drawn.length >= 2, `the bar was drawn: ${JSON.stringify(out)}`);
  assert.match(drawn[0]!, /^ <stdin> \| 0 MiB read \| 0 records/);
  assert.match(drawn.at(-1)!, /^ <stdin> \| [\d.]+ MiB read \| 2000 records/);
  assert.ok(drawn.every((f) => !/%|ETA/.test(f)), `no percentage of an unknown total: ${JSON.stringify(drawn)}`);
});

test('a gzip file: the bar follows the records decoded and ends at 100% of the file', () => {
  // a realistic tenant: one 1 MiB read of it holds most of its records, so a bar of bytes read sat
  // at 83% from its first batch on
  const gz = join(tmp.dir, 'tenant.ndjson.gz');
  const gen = runCli(['generate', '--runs', '20', '--seed', '1', '--out', gz]);
  assert.equal(gen.status, 0, gen.stderr);
  const total = Number(/generated ([\d,]+) events/.exec(gen.stderr + gen.stdout)![1]!.replaceAll(',', ''));
  const mib = (Math.round((statSync(gz).size / 1048576) * 10) / 10).toString().replace('.', '\\.');
  const drawn = frames(onTerminal(`'${process.execPath}' '${CLI}' ingest '${gz}' --db '${join(tmp.dir, 'gzip.db')}'`));
  assert.match(drawn.at(-1)!, new RegExp(`\\| 100% \\| ${mib}/${mib} MiB \\| ${total} records`), 'the last frame');
  for (const f of drawn) {
    const [, pct, records] = /\| (\d+)% \| [\d.]+\/[\d.]+ MiB \| (\d+) records/.exec(f)!;
    // compressed bytes and records advance together, within a step of the bar and the data's unevenness
    assert.ok(Math.abs(Number(pct) - (100 * Number(records)) / total) <= 10, `${pct}% at ${records} of ${total} records: ${f}`);
  }
});
