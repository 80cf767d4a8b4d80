import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { runCli, tempDir } from '../helpers.js';
import { EXIT } from '../../src/cli/exit-codes.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/** Subcommand names listed under "Commands:" in a --help text. */
function subcommands(help: string): string[] {
  const i = help.indexOf('\nCommands:\n');
  if (i < 0) return [];
  return help
    .slice(i + 11)
    .split('\n')
    .map((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== 'help');
}

/**
 * The --help text of every command path, nested ones included, found by walking --help itself; read once
 * for the whole file (a CLI process per command). Each must exit 0 and start with its usage line.
 */
let helpOnce: Map<string, string> | undefined;
const everyHelp = () => (helpOnce ??= allHelp());

function allHelp(prefix: string[] = [], into = new Map<string, string>()): Map<string, string> {
  const r = runCli([...prefix, '--help']);
  assert.equal(r.status, EXIT.OK, `${prefix.join(' ')} --help: ${r.stderr}`);
  assert.match(r.stdout, /^Usage: egress-triage/m, prefix.join(' '));
  into.set(prefix.join(' '), r.stdout);
  for (const c of subcommands(r.stdout)) allHelp([...prefix, c], into);
  return into;
}

// Commands whose output is data a script might read.
const DATA_COMMANDS = [
  'ingest', 'detections list', 'baseline show', 'baseline expect', 'stats', 'demo', 'generate', 'analyze',
  'rules list', 'rules get', 'rules preview', 'rules create', 'rules update', 'rules delete', 'rules audit', 'risky list', 'risky forget', 'risky audit',
  'policy explain', 'policy validate', 'approvals list', 'approvals approve', 'approvals deny', 'audit',
];

test('every command and subcommand has --help; every data command has --json', () => {
  const help = everyHelp();
  for (const c of DATA_COMMANDS) assert.match(help.get(c) ?? '', /--json\b/, `${c} is a command with --json`);
  for (const c of ['mcp', 'serve', 'gateway', 'policy validate', 'approvals approve']) assert.ok(help.has(c), c);
  assert.match(help.get('')!, /Exit codes: 0 ok, 1 input rejected, 2 usage, 3 not found, 4 refused, 5 I\/O, 70 internal/);
});

test('--help of every command that reads the store says it takes a PostgreSQL URL', () => {
  const help = everyHelp();
  const readers = [
    'stats', 'detections list', 'baseline show', 'baseline expect', 'baseline unexpect', 'ingest', 'analyze',
    'rules list', 'rules get', 'rules preview', 'rules create', 'rules update', 'rules delete', 'rules audit', 'mcp', 'serve',
  ];
  for (const c of readers) {
    assert.ok(help.has(c), c);
    assert.match(help.get(c)!.replace(/\s+/g, ' '), /--db <location> store: a SQLite file, or a postgres:\/\/user:password@host:port\/database URL/, c);
  }
});

test('demo replaces only a store it created; --force replaces any other', () => {
  const own = join(tmp.dir, 'own.db');
  const args = ['--events', '1000', '--runs', '6', '--json'];
  const first = runCli(['demo', '--db', own, ...args]);
  assert.equal(first.status, EXIT.OK, first.stderr);
  assert.doesNotMatch(first.stderr, /replacing/, 'a new store replaces nothing');
  const again = runCli(['demo', '--db', own, ...args]);
  assert.equal(again.status, EXIT.OK, `demo replaces its own store: ${again.stderr}`);
  assert.match(again.stderr, /^egress-triage: note: replacing .*own\.db \(made by an earlier demo; its detections, rules and audit are deleted\)$/m, 'and says so');
  // demo's "Try next" points EGRESS_TRIAGE_DB at its store: what the user ingests there later is theirs
  const theirs = join(tmp.dir, 'their-telemetry.ndjson');
  writeFileSync(theirs, readFileSync(join(tmp.dir, 'demo-events.ndjson.gz')));
  const added = runCli(['ingest', theirs, '--db', own]);
  assert.equal(added.status, EXIT.OK, added.stderr);
  const kept = readFileSync(own);
  const keptAt = statSync(own).mtimeMs;
  const protectedStore = runCli(['demo', '--db', own, ...args]);
  assert.equal(protectedStore.status, EXIT.REFUSED, protectedStore.stderr);
  assert.match(protectedStore.stderr, /^egress-triage: .*own\.db was created by demo, but later ingests wrote into it \(.*their-telemetry\.ndjson\): refusing to delete their data\. Give another --db, or --force to replace it$/m);
  assert.ok(readFileSync(own).equals(kept), 'the store is untouched');
  assert.equal(statSync(own).mtimeMs, keptAt);
  const replaced = runCli(['demo', '--db', own, '--force', ...args]);
  assert.equal(replaced.status, EXIT.OK, replaced.stderr);
  assert.equal(runCli(['demo', '--db', own, ...args]).status, EXIT.OK, 'demo made it again: its own to replace');

  const mine = join(tmp.dir, 'mine.db');
  const ing = runCli(['ingest', '-', '--db', mine], { input: readFileSync(join(tmp.dir, 'demo-events.ndjson.gz')) });
  assert.equal(ing.status, EXIT.OK, ing.stderr);
  const before = readFileSync(mine);
  const mtime = statSync(mine).mtimeMs;
  const refused = runCli(['demo', '--db', mine, ...args]);
  assert.equal(refused.status, EXIT.REFUSED);
  assert.match(refused.stderr, /mine\.db exists and was not created by demo: refusing to delete it.*--force/);
  assert.ok(readFileSync(mine).equals(before), 'the store is untouched');
  assert.equal(statSync(mine).mtimeMs, mtime);

  const other = join(tmp.dir, 'notes.txt');
  writeFileSync(other, 'not a store');
  assert.equal(runCli(['demo', '--db', other, ...args]).status, EXIT.REFUSED, 'any other file is refused too');
  assert.equal(readFileSync(other, 'utf8'), 'not a store');

  const forced = runCli(['demo', '--db', mine, '--force', ...args]);
  assert.equal(forced.status, EXIT.OK, forced.stderr);
  assert.match(forced.stderr, /^egress-triage: note: replacing .*mine\.db \(with --force; everything in it is deleted\)$/m);
  assert.ok(JSON.parse(forced.stdout).ingest.totals.accepted > 0);
  assert.equal(runCli(['demo', '--db', mine, ...args]).status, EXIT.OK, 'after --force it is a demo store');
});

test('every command that takes --db refuses ":memory:" and an empty --db as usage errors, before doing anything', () => {
  const policy = join(tmp.dir, 'memory-policy.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const input = join(tmp.dir, 'memory-input.ndjson');
  writeFileSync(input, '');
  // what each command needs besides --db to get as far as opening its store
  const needs: Record<string, string[]> = {
    ingest: [input],
    'baseline show': ['--owner', 'a', '--repo', 'b'],
    'baseline expect': ['--owner', 'a', '--repo', 'b', '--endpoint', 'example.com:443'],
    'baseline unexpect': ['--owner', 'a', '--repo', 'b', '--endpoint', 'example.com:443'],
    'rules get': ['x'], 'rules update': ['x'], 'rules delete': ['x'], 'risky forget': ['x'],
    'approvals approve': ['x'], 'approvals deny': ['x', '--reason', 'no'],
    'policy explain': [policy, '--tool', 't'],
    gateway: ['--policy', policy, '--', 'true'],
  };
  const withDb = [...everyHelp()].filter(([, help]) => /^\s+--db\b/m.test(help)).map(([path]) => path);
  assert.ok(withDb.length >= 20, withDb.join(', '));
  for (const path of withDb) {
    // --db before the rest: after gateway's "--" it would be the upstream command's
    const args = (db: string) => [...(path ? path.split(' ') : []), '--db', db, ...(needs[path] ?? [])];
    const mem = runCli(args(':memory:'), { input: '' });
    assert.equal(mem.status, EXIT.USAGE, `${path}: ${mem.stderr}`);
    assert.match(mem.stderr, /^egress-triage: --db: ":memory:" is an in-memory SQLite database .*give a file path$/m, path);
    // an empty value meets the same check (cli/common.ts) as ":memory:" above: a few commands show it
    if (!['ingest', 'stats', 'gateway', 'rules preview'].includes(path)) continue;
    const empty = runCli(args(''), { input: '' });
    assert.equal(empty.status, EXIT.USAGE, `${path}: ${empty.stderr}`);
    assert.match(empty.stderr, /^egress-triage: --db is empty; give a SQLite file path or a postgres:\/\/ URL$/m, path);
  }
  const env = runCli(['stats'], { env: { EGRESS_TRIAGE_DB: ':memory:' } });
  assert.equal(env.status, EXIT.USAGE);
  assert.match(env.stderr, /^egress-triage: EGRESS_TRIAGE_DB: ":memory:"/m);
  // a URL of a scheme no store has is refused, not taken as a relative path (a folder `mysql:` appeared)
  const mysql = runCli(['stats', '--db', 'mysql://x'], { cwd: tmp.dir });
  assert.equal(mysql.status, EXIT.USAGE);
  assert.equal(mysql.stderr, 'egress-triage: --db: mysql:// is no store egress-triage knows; give a SQLite file path or a postgres:// URL\n');
  // set but empty is refused as --db "" is, not taken as unset (runCli leaves out what is '', so ' ')
  const blankEnv = runCli(['stats'], { env: { EGRESS_TRIAGE_DB: ' ' }, cwd: tmp.dir });
  assert.equal(blankEnv.status, EXIT.USAGE);
  assert.equal(blankEnv.stderr, 'egress-triage: EGRESS_TRIAGE_DB is empty; give a SQLite file path or a postgres:// URL, or unset it for the default store\n');
  const sqliteUrl = runCli(['stats'], { env: { EGRESS_TRIAGE_DB: 'sqlite:///tmp/x.db' } });
  assert.equal(sqliteUrl.status, EXIT.USAGE);
  assert.match(sqliteUrl.stderr, /^egress-triage: EGRESS_TRIAGE_DB: sqlite:\/\/ is no store egress-triage knows/m);
  assert.equal(existsSync(join(tmp.dir, 'mysql:')), false);
});

test('a bad tenant from the environment names EGRESS_TRIAGE_TENANT, not a --tenant that was never given', () => {
  // a bad tenant from the environment names the variable, not a --tenant that was never given
  const badTenantEnv = runCli(['stats'], { env: { EGRESS_TRIAGE_TENANT: 'a b' }, cwd: tmp.dir });
  assert.equal(badTenantEnv.status, EXIT.USAGE);
  assert.match(badTenantEnv.stderr, /^egress-triage: EGRESS_TRIAGE_TENANT: invalid tenant "a b"/m);
  const badTenantFlag = runCli(['stats', '--tenant', 'a b'], { env: { EGRESS_TRIAGE_TENANT: 'ok' }, cwd: tmp.dir });
  assert.match(badTenantFlag.stderr, /^egress-triage: --tenant: invalid tenant "a b"/m);
});

test('an empty option or argument is a usage error naming it, on every command, before anything is done (an empty value is never "not given")', () => {
  const db = join(tmp.dir, 'empty-values.db');
  const cases: [string[], string][] = [
    [['generate', '--runs', '6', '--out', ''], '--out: is empty; give a value or leave the option out'],
    [['policy', 'validate', ' '], '<file>: is empty; give a value'],
    [['rules', 'get', '', '--db', db], '<rule-id>: is empty; give a value'],
    [['approvals', 'approve', '', '--db', db], '<id>: is empty; give a value'],
    [['risky', 'forget', '', '--yes', '--db', db], '<entry>: is empty; give a value'],
    [['ingest', '--allowed-endpoints', '', '-', '--db', db], '--allowed-endpoints: is empty; give a value or leave the option out'],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args, { input: '' });
    assert.equal(r.status, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, `egress-triage: ${message}\n`, args.join(' '));
  }
  // nothing was created by any of them
  assert.equal(existsSync(db), false);
});

test('generate into a folder that does not exist fails with exit 5 naming the file, gzipped or not (behind gzip it exited 0 having written nothing)', () => {
  for (const name of ['x.ndjson', 'x.ndjson.gz']) {
    const out = join(tmp.dir, 'no-such-folder', name);
    const r = runCli(['generate', '--runs', '1', '--out', out]);
    assert.equal(r.status, EXIT.IO, `${name}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `egress-triage: cannot write ${out}: ENOENT: no such file or directory, open '${out}'\n`, name);
  }
});
