import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTenant } from '../../src/generate/index.js';

const MAIN = join(process.cwd(), 'dist/bundle/cli/main.js');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('egress-triage generate --runs 8 --seed 1 --out FILE --json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gen-cli-'));
  try {
    const out = join(dir, 'x.ndjson');
    const r = run(['generate', '--runs', '8', '--seed', '1', '--out', out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as Record<string, unknown> & { scenarios: Record<string, number> };
    for (const k of ['out', 'events', 'runs', 'jobs', 'repos', 'orgs', 'seed', 'scenarios']) assert.ok(k in summary, k);
    assert.equal(summary.out, out);
    assert.equal(summary.runs, 8);
    assert.equal(summary.seed, 1);
    const text = readFileSync(out, 'utf8');
    const lines = text.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, summary.events);
    assert.ok(summary.scenarios.impostor! > 0 && summary.scenarios.tailscale! > 0);
    // Same bytes as the library.
    const lib = join(dir, 'lib.ndjson');
    await writeTenant({ runs: 8, seed: 1 }, lib);
    assert.ok(readFileSync(lib).equals(readFileSync(out)));
    // Stdout mode prints the same stream; the human summary goes to stderr.
    const piped = run(['generate', '--runs', '8', '--seed', '1']);
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stdout, text);
    assert.match(piped.stderr, /generated [\d,]+ events/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generate rejects bad flags with exit code 2', () => {
  for (const args of [['--runs', 'x'], ['--runs', '0'], ['--events', '-5'], ['--json'], ['--seed', ' ']]) {
    const r = run(['generate', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /egress-triage: /);
  }
});
