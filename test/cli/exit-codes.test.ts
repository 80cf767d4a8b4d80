import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CommanderError } from 'commander';
import { spawnSync } from 'node:child_process';
import { CLI, nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { failureOf, UserError } from '../../src/cli/errors.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest, storeSuite, fresh } = eachStore();
const missing = join(tmp.dir, 'typo.db');

function events(): EventSpec[] {
  const evs: EventSpec[] = [];
  for (let r = 0; r < 4; r++) {
    evs.push({ run: r, domain: 'github.com', process: 'git' });
    if (r >= 2) evs.push({ run: r, domain: 'webhook.site', process: 'curl' });
  }
  return evs;
}
const good = ndjson(events().map(nativeEvent));

/** Runs the real CLI and checks the exit code, and that stderr is a message, never a stack trace. */
function expectExit(args: string[], code: number, stderr: RegExp | null, input?: string | Buffer) {
  const r = runCli(args, { input });
  const what = `${args.join(' ')} -> ${r.status}\n${r.stderr}`;
  assert.equal(r.status, code, what);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace in stderr: ${what}`);
  assert.doesNotMatch(r.stderr, /internal error/, what);
  if (stderr) assert.match(r.stderr, stderr, what);
  return r;
}

// one store through these tests, in order: the setup's data, then the commands run against it
storeSuite((store, backend) => {
  let db = '';
  before(() => {
    db = store().db;
  });

  test('setup: a store with data', () => {
    expectExit(['ingest', '-', '--db', db, '--learning-runs', '2'], EXIT.OK, null, good);
  });

  test('0: every record accepted; --help and --version', () => {
    expectExit(['ingest', '-', '--db', db, '--learning-runs', '2'], EXIT.OK, null, good);
    expectExit(['ingest', '-', '--db', db], EXIT.OK, null, ''); // an empty source rejects nothing
    expectExit(['--help'], EXIT.OK, null);
    expectExit(['rules', 'list', '--help'], EXIT.OK, null);
    expectExit(['--version'], EXIT.OK, null);
  });

  test('1: ingest rejected some records, all of them, or binary garbage', () => {
    const some = expectExit(['ingest', '-', '--db', db, '--json'], EXIT.REJECTED, null, good + '{"owner": 1}\n');
    assert.equal(JSON.parse(some.stdout).totals.rejected, 1);
    assert.ok(JSON.parse(some.stdout).totals.accepted > 0);
    expectExit(['ingest', '-', '--db', db], EXIT.REJECTED, null, '{"nope": true}\n{"nope": 2}\n');
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) % 256;
    const bin = expectExit(['ingest', '-', '--db', db], EXIT.REJECTED, null, garbage);
    assert.match(bin.stdout, /binary/);
    expectExit(['ingest', '-', '--db', db, '--strict'], EXIT.REJECTED, null, good + 'not json\n');
    const badConfig = join(tmp.dir, 'bad-config.yaml');
    writeFileSync(badConfig, 'learning_runs: [\n');
    // the YAML error's own words, ending there (not with the "at line 2, column 1:" of a code frame left out)
    expectExit(['stats', '--db', db, '--config', badConfig], EXIT.REJECTED, /bad-config\.yaml:2:1: Flow sequence in block collection must be sufficiently indented and end with a \]$/m);
  });

  test('2: a rule without --yes is previewed, not created', () => {
    expectExit(['rules', 'create', '--db', db, '--condition', 'process=git', '--condition', 'owner=acme'], EXIT.USAGE, /--yes/);
  });

  test('3: a missing config file, rule or repository', () => {
    expectExit(['stats', '--db', db, '--config', join(tmp.dir, 'no-config.yaml')], EXIT.NOT_FOUND, /no-config\.yaml does not exist/);
    expectExit(['rules', 'get', 'no-such-rule', '--db', db], EXIT.NOT_FOUND, /no active rule "no-such-rule"/);
    expectExit(['rules', 'audit', 'no-such-rule', '--db', db], EXIT.NOT_FOUND, /no rule "no-such-rule" in tenant "default", active or deleted/);
    expectExit(['baseline', 'show', '--db', db, '--owner', 'acme', '--repo', 'nope'], EXIT.NOT_FOUND, /no jobs found/);
  });

  test('4: refused by a safety guard', () => {
    expectExit(['rules', 'create', '--db', db, '--condition', 'owner=acme', '--yes'], EXIT.REFUSED, /rule refused: .*risky/);
    expectExit(['rules', 'create', '--db', db, '--yes'], EXIT.REFUSED, /rule refused/);
    // demo's own store is a SQLite file: it refuses to replace one it did not create
    if (backend === 'sqlite') expectExit(['demo', '--db', db, '--events', '1000', '--runs', '6'], EXIT.REFUSED, /not created by demo/);
  });
});

// Once, not per backend: a usage error is refused before any store is opened, so the store here is a
// PostgreSQL URL nothing listens at (opening it would exit 5, IO).
test('2: usage errors, commander parse errors included, are refused before any store is opened', () => {
  const db = 'postgres://postgres@127.0.0.1:1/unreachable';
  expectExit(['stats', '--db', db, '--bogus'], EXIT.USAGE, /^egress-triage: unknown option '--bogus'/m);
  expectExit(['rules', 'get', '--db', db], EXIT.USAGE, /missing required argument 'rule-id'/);
  expectExit(['nosuch'], EXIT.USAGE, /unknown command 'nosuch'/);
  expectExit(['help', 'nosuch'], EXIT.USAGE, /^egress-triage: help: unknown command 'nosuch'$/m);
  assert.equal(runCli(['help', 'rules']).status, EXIT.OK);
  expectExit([], EXIT.USAGE, null);
  expectExit(['ingest', '--format', 'xml', '--db', db], EXIT.USAGE, /xml/, '');
  // `ingest "$FILE"` with the variable unset
  expectExit(['ingest', '', '--db', db], EXIT.USAGE, /^egress-triage: ingest: a source path is empty; give a file, or - for standard input$/m);
  expectExit(['detections', 'list', '--db', db, '--limit', '0'], EXIT.USAGE, /--limit/);
  expectExit(['analyze', '--db', db, '--since', 'soon'], EXIT.USAGE, /--since/);
  // an empty value is never "not given": a cursor, a time, a number of runs (Number("") was 0)
  for (const cmd of [['detections', 'list'], ['analyze']]) {
    expectExit([...cmd, '--db', db, '--cursor', ''], EXIT.USAGE, /^egress-triage: --cursor is empty; give the next_cursor/m);
    expectExit([...cmd, '--db', db, '--since', ''], EXIT.USAGE, /^egress-triage: --since: is empty; give a value/m);
    expectExit([...cmd, '--db', db, '--until', ''], EXIT.USAGE, /^egress-triage: --until: is empty; give a value/m);
  }
  for (const v of ['', ' ', '1e1', '0x2']) {
    expectExit(['ingest', '-', '--db', db, '--learning-runs', v], EXIT.USAGE, new RegExp(`--learning-runs: expected an integer .* got "${v}"`), good);
  }
  expectExit(['detections', 'list', '--db', db, '--until', '8640000000000001'], EXIT.USAGE, /--until: "8640000000000001" is out of range/);
  expectExit(['stats', '--db', db, '--config', ''], EXIT.USAGE, /^egress-triage: --config: is empty; give a config file path/m);
  // an empty filter value would widen the answer to everything: `--status "$S"` with S unset
  expectExit(['detections', 'list', '--db', db, '--status', ''], EXIT.USAGE, /^egress-triage: --status: is empty; give a value or leave the option out$/m);
  expectExit(['analyze', '--db', db, '--owner', ' '], EXIT.USAGE, /^egress-triage: --owner: is empty/m);
  expectExit(['analyze', '--db', db, '--detection-id', ''], EXIT.USAGE, /^egress-triage: --detection-id: is empty/m);
  // audit reads its options through the shared parsers too
  for (const v of ['1e3', '0', '99999999999999']) expectExit(['audit', '--db', db, '--limit', v], EXIT.USAGE, /^egress-triage: --limit: expected an integer between 1 and 1000000/m);
  expectExit(['audit', '--db', db, '--decision', 'bogus'], EXIT.USAGE, /^egress-triage: --decision: expected one of allow, deny/m);
  expectExit(['audit', '--db', db, '--since', ''], EXIT.USAGE, /^egress-triage: --since: is empty/m);
  expectExit(['audit', '--db', db, '--since', 'Nov 1'], EXIT.USAGE, /^egress-triage: --since: "Nov 1" is not a time/m);
  expectExit(['audit', '--db', db, '--tool', ''], EXIT.USAGE, /^egress-triage: --tool: is empty/m);
  // the built-in gateway's options say how --policy is enforced: without it they would be ignored
  expectExit(['mcp', '--db', db, '--state', 'redis://127.0.0.1:1'], EXIT.USAGE, /^egress-triage: --state: only with --policy/m);
  expectExit(['serve', '--db', db, '--identity', 'ci', '--audit-file', 'a.jsonl'], EXIT.USAGE, /^egress-triage: --audit-file, --identity: only with --policy/m);
});

// a missing SQLite file (PostgreSQL's missing database or schema: test/cli/db.test.ts, test/storage/open-store.test.ts)
test('3: a missing store or input file; no store is created', () => {
  const readers = [
    ['stats'], ['analyze', '--json'], ['detections', 'list'], ['rules', 'list'], ['rules', 'get', 'r1'], ['rules', 'audit'],
    ['rules', 'preview', '--condition', 'process=git'], ['baseline', 'show', '--owner', 'acme', '--repo', 'api'],
    ['approvals', 'list'], ['audit'], ['mcp'],
  ];
  for (const cmd of readers) {
    expectExit([...cmd, '--db', missing], EXIT.NOT_FOUND, new RegExp(`no store at ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(from --db\\).*egress-triage ingest`));
    assert.equal(existsSync(missing), false, `${cmd.join(' ')} created ${missing}`);
  }
  const env = runCli(['stats'], { env: { EGRESS_TRIAGE_DB: missing } });
  assert.equal(env.status, EXIT.NOT_FOUND);
  assert.match(env.stderr, /from EGRESS_TRIAGE_DB/);
  expectExit(['ingest', join(tmp.dir, 'nope.ndjson'), '--db', missing], EXIT.NOT_FOUND, /nope\.ndjson: no such file/);
  assert.equal(existsSync(missing), false, 'a mistyped input file must not create a store');
});

// SQLite files: a file that is not a store, a read-only store file
test('5: the file system refused: a directory, a file that is not a store', () => {
  const dir = join(tmp.dir, 'a-directory');
  mkdirSync(dir);
  expectExit(['ingest', dir, '--db', join(tmp.dir, 'dir-input.db')], EXIT.IO, /cannot read .*a-directory: it is a directory/);
  const notStore = join(tmp.dir, 'events.ndjson');
  writeFileSync(notStore, good);
  expectExit(['stats', '--db', notStore], EXIT.IO, /cannot open store .*events\.ndjson: .*not an intact egress-triage store/);
  assert.equal(readFileSync(notStore, 'utf8'), good, 'the file is left as it was');
  // demo's --db naming a directory: refused before anything is deleted
  expectExit(['demo', '--db', dir, '--force'], EXIT.IO, /^egress-triage: --db: .*a-directory is a directory, not a store file: give the path of a store, or of a new file$/m);
  // a store path that is no file: refused, named, by reads and writes alike (a named pipe hung
  // `db status`, /dev/null read as a store with every migration pending, a directory was "disk I/O error")
  const fifo = join(tmp.dir, 'a-pipe');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const notFile = (args: string[], path: string, kind: string, from = '--db', env: NodeJS.ProcessEnv = {}) => {
    const r = runCli(args, { timeoutMs: 30_000, env });
    const what = `${args.join(' ')} -> ${r.status} ${r.signal ?? ''}\n${r.stderr}`;
    assert.equal(r.status, EXIT.IO, what);
    assert.equal(r.stderr, `egress-triage: ${from}: ${path} is ${kind}, not a store file: give the path of a store, or of a new file\n`, what);
    assert.equal(r.stdout, '', what);
  };
  notFile(['db', 'status', '--db', fifo], fifo, 'a named pipe');
  notFile(['stats'], fifo, 'a named pipe', 'EGRESS_TRIAGE_DB', { EGRESS_TRIAGE_DB: fifo });
  notFile(['audit', '--db', fifo], fifo, 'a named pipe');
  notFile(['db', 'status', '--db', '/dev/null'], '/dev/null', 'a device');
  notFile(['ingest', '-', '--db', '/dev/null'], '/dev/null', 'a device');
  notFile(['db', 'migrate', '--db', dir], dir, 'a directory');
  notFile(['rules', 'list', '--db', dir], dir, 'a directory');
  // a config file that is a directory: named, an I/O failure (it was exit 1 with EISDIR and no path)
  expectExit(['stats', '--db', join(tmp.dir, 'no-store.db'), '--config', dir], EXIT.IO, /^egress-triage: config file .*a-directory: is a directory; give the config file in it$/m);
});

test('3 and 5: a policy file that is missing, or a directory; 1 when it is invalid', () => {
  const nope = join(tmp.dir, 'no-policy.yaml');
  const dir = join(tmp.dir, 'policy-dir.yaml');
  mkdirSync(dir);
  const bad = join(tmp.dir, 'bad-policy.yaml');
  writeFileSync(bad, 'version: 1\ntools:\n  x: { action: deny }\n');
  const store = join(tmp.dir, 'policy-exit.db');
  expectExit(['ingest', '-', '--db', store], EXIT.OK, null, good);
  // a file that cannot be read says why, not that the policy in it is invalid
  const said = [
    [nope, EXIT.NOT_FOUND, /no-policy\.yaml: cannot read the policy file: no such file$/m],
    [dir, EXIT.IO, /policy-dir\.yaml: cannot read the policy file: it is a directory$/m],
    [bad, EXIT.REJECTED, /bad-policy\.yaml:3:\d+: tools\.x/],
  ] as const;
  for (const [file, code, message] of said) {
    expectExit(['policy', 'validate', file], code, message);
    expectExit(['policy', 'explain', file, '--tool', 'x'], code, message);
    expectExit(['serve', '--policy', file, '--db', store], code, message);
  }
  // the other files a server reads: a grants file and a gateway config, missing or a directory
  for (const [file, code] of [[nope, EXIT.NOT_FOUND], [dir, EXIT.IO]] as const) {
    const name = file === nope ? /no-policy\.yaml/ : /policy-dir\.yaml/;
    const grants = expectExit(['serve', '--grants', file, '--db', store], code, /^egress-triage: --grants .*: cannot read the grants file: (no such file|it is a directory)$/m);
    assert.match(grants.stderr, name);
    const config = expectExit(['gateway', '--config', file, '--db', store], code, /^egress-triage: .*: cannot read the gateway config: (no such file|it is a directory)$/m);
    assert.match(config.stderr, name);
  }
  // an upstream that is no http(s) URL: refused before the gateway starts
  const policy = join(tmp.dir, 'allow.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  for (const url of ['javascript:alert(1)', 'ftp://example.com/mcp', 'not a url']) {
    // bounded: a gateway that took the URL would listen until killed
    const r = runCli(['gateway', '--policy', policy, '--db', store, '--upstream', url, '--listen', '127.0.0.1:0'], { timeoutMs: 20_000 });
    assert.equal(r.status, EXIT.USAGE, `${url}: ${r.signal ?? ''} ${r.stderr}`);
    assert.equal(r.stderr, `egress-triage: --upstream: "${url}" is not an http:// or https:// URL of an MCP endpoint\n`);
  }
});

test('5: a read-only store and an unreadable input are reported, not a crash', () => {
  const dir = join(tmp.dir, 'ro');
  mkdirSync(dir);
  const ro = join(dir, 'ro.db');
  expectExit(['ingest', '-', '--db', ro], EXIT.OK, null, good);
  chmodSync(ro, 0o444);
  chmodSync(dir, 0o755);
  const ing = spawnSync(...withoutDacOverride([process.execPath, CLI, 'ingest', '-', '--db', ro]), { input: good, encoding: 'utf8' });
  assert.ifError(ing.error);
  assert.equal(ing.status, EXIT.IO, ing.stderr);
  assert.doesNotMatch(ing.stderr, /^\s+at /m);
  assert.match(ing.stderr, /store .*ro\.db.*read-only.*permissions/);
  // An input file the user may not read is refused before any store is created.
  const secret = join(dir, 'secret.ndjson');
  writeFileSync(secret, good, { mode: 0o000 });
  const fresh = join(dir, 'fresh.db');
  const denied = spawnSync(...withoutDacOverride([process.execPath, CLI, 'ingest', secret, '--db', fresh]), { encoding: 'utf8' });
  assert.equal(denied.status, EXIT.IO, denied.stderr);
  assert.match(denied.stderr, /cannot read .*secret\.ndjson: EACCES/);
  assert.doesNotMatch(denied.stderr, /^\s+at /m);
  assert.equal(existsSync(fresh), false);
});

test('70: anything unexpected is an internal error with a message, its stack only on request', () => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
  const plain = failureOf(bug);
  assert.equal(plain.code, EXIT.INTERNAL);
  assert.match(plain.message!, /^internal error: Cannot read properties.*EGRESS_TRIAGE_DEBUG=1/);
  assert.doesNotMatch(plain.message!, /\n\s+at /);
  assert.match(failureOf(bug, true).message!, /\n\s+at /);
  assert.deepEqual(failureOf(new UserError('x', EXIT.NOT_FOUND)), { code: EXIT.NOT_FOUND, message: 'x' });
  assert.deepEqual(failureOf(new CommanderError(1, 'commander.unknownOption', 'error: unknown option')), { code: EXIT.USAGE, message: null });
  assert.deepEqual(failureOf(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')), { code: EXIT.OK, message: null });
  assert.equal(failureOf(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })).code, EXIT.IO);
  const locked = Object.assign(new Error('database is locked'), { name: 'SqliteError', code: 'SQLITE_BUSY' });
  assert.equal(failureOf(locked).code, EXIT.IO);
  // A SQL bug is not an environment problem.
  const sqlBug = Object.assign(new Error('no such column: x'), { name: 'SqliteError', code: 'SQLITE_ERROR' });
  assert.equal(failureOf(sqlBug).code, EXIT.INTERNAL);
});

test('every exit code is documented in the README table, with the same number', () => {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## Exit codes'));
  assert.ok(readme.includes('## Exit codes'));
  for (const [name, code] of Object.entries(EXIT)) assert.match(section, new RegExp(`^\\| ${code} \\| \`${name}\` \\|`, 'm'), name);
});

storeTest('gzip data cut off mid-way: file and byte reported, earlier records kept, nothing stored under --strict', async (at) => {
  const big: EventSpec[] = [];
  for (let r = 0; r < 6; r++) for (let i = 0; i < 400; i++) big.push({ run: r, domain: `h${i}.example.com`, process: 'node' });
  const gz = gzipSync(ndjson(big.map(nativeEvent)));
  const cut = join(at.dir, 'cut.ndjson.gz');
  writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.6)));
  const strictDb = at.db;
  const strict = expectExit(['ingest', cut, '--db', strictDb, '--strict', '--json'], EXIT.REJECTED, null);
  const s = JSON.parse(strict.stdout).sources[0];
  assert.equal(s.stored, false);
  assert.equal(s.errors[0].reason, 'truncated-input');
  assert.match(s.errors[0].message, new RegExp(`cut off at byte ${Math.floor(gz.length * 0.6)}\\b`));
  assert.equal(JSON.parse(runCli(['stats', '--db', strictDb, '--json']).stdout).runs, 0, '--strict stores nothing');
  // the lenient run on its own store: --strict above left the store empty, this one keeps what it read
  const lenientDb = (await fresh(at.backend)).db;
  const lenient = expectExit(['ingest', cut, '--db', lenientDb], EXIT.REJECTED, null);
  assert.match(lenient.stdout, /cut\.ndjson\.gz:\d+: input ends early: gzip data is cut off at byte \d+/);
  assert.match(lenient.stdout, /truncated-input=1/);
  const stats = JSON.parse(runCli(['stats', '--db', lenientDb, '--json']).stdout);
  assert.ok(stats.runs > 0, 'records before the cut are stored');
});

/**
 * Root ignores file modes (CAP_DAC_OVERRIDE), so as root the CLI runs with those two capabilities
 * dropped from its bounding set (util-linux setpriv): it stays root, the owner of the test's files,
 * and meets a real permission check whatever folder the checkout is in.
 */
function withoutDacOverride(argv: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [argv[0]!, argv.slice(1)];
  const caps = '-dac_override,-dac_read_search';
  return ['setpriv', [`--bounding-set=${caps}`, `--inh-caps=${caps}`, ...argv]];
}
