// Runs every compiled test file with node's built-in runner. Node 20 lacks --test globs.
// Four files at a time on two cores: many tests wait on child processes (PostgreSQL, Redis, gateways,
// Chromium) more than they compute, and the suite has to stay well under 15 minutes.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = collect('dist/test').sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
// What test processes may share within this run and no longer (test/helpers/postgres.ts: the initdb template).
const cache = mkdtempSync(join(tmpdir(), 'egress-triage-test-cache-'));
const res = spawnSync(process.execPath, ['--test', '--test-concurrency=4', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, EGRESS_TRIAGE_TEST: '1', EGRESS_TRIAGE_TEST_CACHE: cache },
});
rmSync(cache, { recursive: true, force: true });
process.exit(res.status ?? 1);
