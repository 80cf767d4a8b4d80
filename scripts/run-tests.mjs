// Runs every compiled test file with node's built-in runner, through its run() API: `node --test`
// sorts the files it is given, and the order matters here (LONGEST_FIRST). Node 20 lacks --test globs.
// Four files at a time on two cores: many tests wait on child processes (PostgreSQL, Redis, gateways,
// Chromium) more than they compute, and the suite has to stay well under 15 minutes.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/**
 * The longest files start first: run() starts files in the order given, and a long file started
 * last runs on alone while the other cores idle. Ordered by their wall time in a whole-suite run on
 * the 2-core project machine (2026-12-02: 53-181 s each, the median file 2 s). There the suite is
 * CPU-bound to its last minute either way, and the order changed its time little (875 s against
 * 876 s); it bounds the tail where a long file would otherwise start late. A file missing from the
 * list runs in alphabetical order after them; a name here that no longer exists is ignored.
 */
const LONGEST_FIRST = [
  'docs/snippets', 'cli/read-commands-backends', 'cli/filter-agreement', 'conformance/gateway-client',
  'ingest/concurrent-writers', 'dashboard/rules', 'cli/exit-codes', 'dashboard/baselines', 'dashboard/processes',
  'dashboard/policy-edit', 'gateway/stdio', 'dashboard/pages', 'analysis/analyze-cli-backends',
  'cli/cli', 'conformance/gateway', 'dashboard/audit', 'dashboard/auth', 'ingest/documents', 'storage/postgres/long-values',
  // 2026-12-03: no longer among the longest (crash 199 s -> 23 s, write-contract 146 s -> 26 s alone)
  'ingest/write-contract', 'ingest/crash',
].map((name) => join('dist/test', `${name}.test.js`));

const filter = process.argv.slice(2);
let files = collect('dist/test');
const rank = (f) => {
  const i = LONGEST_FIRST.indexOf(f);
  return i === -1 ? LONGEST_FIRST.length : i;
};
files.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
// What test processes may share within this run and no longer (test/helpers/postgres.ts: the initdb template).
const cache = mkdtempSync(join(tmpdir(), 'egress-triage-test-cache-'));
// Each file runs in a child process, which inherits this environment.
process.env.EGRESS_TRIAGE_TEST = '1';
// Node 20 reads and parses every certificate in NODE_EXTRA_CA_CERTS when a process starts, whether or
// not it ever opens a TLS connection: about 40 ms of CPU per process with Debian's bundle, and a run
// starts some two thousand node processes (test files, CLIs, servers, gateways). The suite touches
// nothing outside loopback and speaks no TLS, so its processes go without.
delete process.env.NODE_EXTRA_CA_CERTS;
process.env.EGRESS_TRIAGE_TEST_CACHE = cache;
process.on('exit', () => rmSync(cache, { recursive: true, force: true }));
// Ctrl-C or a CI timeout: still run the exit hooks above and below.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.once(signal, () => process.exit(code));

/**
 * One PostgreSQL server for every test file of the run: each file borrows it (usePostgres in
 * test/helpers/postgres.ts) and drops its own databases when done. Starting and stopping a server per
 * file cost about 0.8 s of CPU each, some sixty times a run. Sized for four files at their busiest.
 * Without PostgreSQL installed none is started, and the files that need it say how to install it.
 */
const { PostgresServer, SHARED_SERVER_ENV, postgresBinDir } = await import('../dist/test/helpers/postgres.js');
let binDir = null;
try {
  binDir = postgresBinDir();
} catch {
  // no server binaries: nothing to share
}
if (binDir) {
  // start() stops it when this process exits
  const server = await PostgresServer.start({ maxConnections: 300, sharedBuffers: '128MB' });
  process.env[SHARED_SERVER_ENV] = `${server.port} ${server.dir}`;
  // Its CPU is no test process's, so no timing of a test file counts it: said at the end (122-137 s
  // of a whole-suite run on 2026-12-08). Prepended: the exit hook start() added stops the server.
  process.prependListener('exit', () => {
    const s = server.cpuSeconds();
    if (s !== null) process.stdout.write(`ℹ shared PostgreSQL server CPU ${s.toFixed(1)} s\n`);
  });
}
run({ files, concurrency: 4 })
  .on('test:fail', (t) => {
    // as `node --test` counts it: a failing test marked todo fails nothing
    if (!t.todo) process.exitCode = 1;
  })
  .compose(spec())
  .pipe(process.stdout);
