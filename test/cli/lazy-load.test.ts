import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, tempDir } from '../helpers.js';
import { EXIT } from '../../src/cli/exit-codes.js';

// Every CLI run used to load every backend and the MCP SDK before it did anything: most of a second
// of CPU per run. A command on a SQLite store now loads neither database driver's modules, Redis,
// the schema library, nor the SDK. The modules a run loads are recorded by a loader hook. The CLI
// is the bundle (scripts/bundle-cli.mjs): a chunk it loads stands for the modules it holds, which
// rolldown names in a `// path` comment at the start of each.

const tmp = tempDir();
after(() => tmp.cleanup());

const hook = tmp.file(
  'record-loads.mjs',
  // ES modules through a load hook; CommonJS ones (pg and ioredis are required on first use) from
  // the require cache as the process exits.
  `import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
process.on('exit', () => appendFileSync(process.env.RECORD_LOADS_TO, Object.keys(createRequire(import.meta.url).cache).map((p) => 'file://' + p + '\\n').join('')));
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.RECORD_LOADS_TO, url + '\\n');
  return next(url, context);
}`,
  )}));
`,
);

const MODULE_MARK = /^\/\/ ((?:node_modules|dist)\/\S+\.[cm]?js)$/gm;

/** A loaded URL, or for a chunk of the bundle the URLs of the modules it holds. */
function modulesOf(url: string): string[] {
  if (!url.startsWith('file:') || !url.includes('/dist/bundle/')) return [url];
  const held = [...readFileSync(fileURLToPath(url), 'utf8').matchAll(MODULE_MARK)].map((m) => `bundled:/${m[1]}`);
  return [url, ...held];
}

/** The module URLs one CLI run loads, with its exit status. */
function loadsOf(args: string[]): { status: number | null; stderr: string; urls: string[] } {
  const list = join(tmp.dir, `loads-${args[0]}-${Date.now()}.txt`);
  writeFileSync(list, '');
  const env: NodeJS.ProcessEnv = { ...process.env, RECORD_LOADS_TO: list };
  for (const k of ['EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG']) delete env[k];
  const r = spawnSync(process.execPath, ['--import', hook, CLI, ...args], { env, encoding: 'utf8' });
  const loaded = [...new Set(readFileSync(list, 'utf8').split('\n').filter(Boolean))];
  return { status: r.status, stderr: r.stderr, urls: loaded.flatMap(modulesOf) };
}

/** Libraries a SQLite command has no use for: both network drivers, the schema and YAML libraries, the SDK. */
const LIBRARIES = /\/node_modules\/(pg|pg-copy-streams|ioredis|zod|yaml|@modelcontextprotocol\/[^/]+)\//;
/** The other backends' own modules. errors.js only reads error codes (open-store.ts explains a failure with it). */
const OTHER_BACKENDS = /\/dist\/src\/(storage\/postgres\/(?!errors\.js$)|state\/redis\/)/;

const db = join(tmp.dir, 'store.db');

test('commands on a SQLite store load no other backend, no Redis, no schema library and no MCP SDK', () => {
  const sample = join(tmp.dir, 'sample.ndjson');
  assert.equal(loadsOf(['generate', '--runs', '6', '--events', '3000', '--out', sample]).status, EXIT.OK);
  const ingest = loadsOf(['ingest', sample, '--db', db, '--json']);
  assert.equal(ingest.status, EXIT.OK, ingest.stderr);
  assert.ok(ingest.urls.some((u) => u.includes('/dist/src/storage/sqlite/')), 'the hook records the SQLite backend it did load');
  for (const [args, r] of [[['ingest'], ingest] as const, ...[['stats'], ['detections', 'list'], ['analyze'], ['rules', 'list']].map((a) => [a, loadsOf([...a, '--db', db, '--json'])] as const)]) {
    assert.equal(r.status, EXIT.OK, `${args.join(' ')}: ${r.stderr}`);
    assert.deepEqual(r.urls.filter((u) => LIBRARIES.test(u) || OTHER_BACKENDS.test(u)), [], args.join(' '));
  }
});

test('the policy commands on a SQLite store load no network driver, schema library or SDK', () => {
  // Their picker (open-policy-state.ts) is synchronous, so it holds every policy-state backend's
  // own modules; the drivers behind them load only when a connection is made.
  for (const args of [['audit'], ['approvals', 'list']]) {
    const r = loadsOf([...args, '--db', db, '--json']);
    assert.equal(r.status, EXIT.OK, `${args.join(' ')}: ${r.stderr}`);
    assert.deepEqual(r.urls.filter((u) => LIBRARIES.test(u)), [], args.join(' '));
  }
});

test('a postgres:// store loads the PostgreSQL backend, and only then', () => {
  // Nothing listens on port 1: the command fails with an I/O error after loading the backend.
  const r = loadsOf(['stats', '--db', 'postgres://nobody@127.0.0.1:1/none', '--json']);
  assert.equal(r.status, EXIT.IO, r.stderr);
  assert.ok(r.urls.some((u) => /\/dist\/src\/storage\/postgres\/pg-store\.js$/.test(u)), 'pg-store loaded');
  assert.ok(r.urls.some((u) => /\/node_modules\/pg\//.test(u)), 'the pg driver loaded (recorded from the require cache)');
});
