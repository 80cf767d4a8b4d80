import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, runCli, tempDir } from '../helpers.js';
import { usePostgres } from '../helpers/postgres.js';
import { resolveStoreLocation } from '../../src/storage/location.js';

/** `db status` and `db migrate` on both backends, through the built CLI. */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

interface StatusJson {
  backend: string;
  db: string;
  upToDate: boolean;
  missing: string[];
  applied: { version: number }[];
  pending: { version: number }[];
  migrated?: number[];
}

function json(r: ReturnType<typeof runCli>): StatusJson {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusJson;
}

test('the store location picks the backend: a postgres URL is PostgreSQL, anything else a SQLite path', () => {
  assert.equal(resolveStoreLocation('postgres://u:pw@db.internal:5432/et').backend, 'postgres');
  assert.equal(resolveStoreLocation('postgresql://db/et').backend, 'postgres');
  assert.equal(resolveStoreLocation(undefined, { EGRESS_TRIAGE_DB: 'postgres://db/et' }).from, 'EGRESS_TRIAGE_DB');
  assert.equal(resolveStoreLocation('postgres://u:pw@db/et').display, 'postgres://u:***@db/et', 'the password is never shown');
  // the driver takes it as a query parameter too, in any case or escape
  for (const [url, shown] of [
    ['postgres://u@db/et?password=S3cret', 'postgres://u@db/et?password=***'],
    ['postgres://u@db/et?sslmode=disable&PassWord=S3cret', 'postgres://u@db/et?sslmode=disable&PassWord=***'],
    ['postgres://u@db/et?%70assword=S3cret', 'postgres://u@db/et?password=***'],
    ['postgres://u:pw@db/et?password=S3cret', 'postgres://u:***@db/et?password=***'],
    // a URL the parser refuses is masked as text
    ['postgres://u@[db/et?password=S3cret&x=1', 'postgres://u@[db/et?password=***&x=1'],
    // a password holding "/", ":" or "#" is what makes a URL unparsable: it goes whole (found by the diff review)
    ['postgres://admin:S3cret/x@db.example/app', 'postgres://admin:***@db.example/app'],
    ['postgres://admin:hun:S3cret@db.example:54x/app', 'postgres://admin:***@db.example:54x/app'],
  ]) {
    assert.equal(resolveStoreLocation(url).display, shown, url);
    assert.ok(!resolveStoreLocation(url).display.includes('S3cret'), url);
  }
  const file = resolveStoreLocation('./postgres.db');
  assert.deepEqual([file.backend, file.target.endsWith('/postgres.db')], ['sqlite', true]);
  assert.equal(resolveStoreLocation(undefined, {}).backend, 'sqlite', 'SQLite stays the default');
});

test('SQLite: status on a missing store is "not found"; migrate creates it; status then shows every version applied', () => {
  const db = join(tmp.dir, 'store.db');
  const missing = runCli(['db', 'status', '--db', db]);
  assert.equal(missing.status, 3);
  assert.match(missing.stderr, /^egress-triage: no store at .*store\.db \(from --db\)/);
  assert.equal(existsSync(db), false, 'status created nothing');
  const m = json(runCli(['db', 'migrate', '--db', db, '--json']));
  assert.equal(m.backend, 'sqlite');
  assert.ok(m.migrated!.length >= 6);
  const s = json(runCli(['db', 'status', '--json'], { env: { EGRESS_TRIAGE_DB: db } }));
  assert.deepEqual([s.upToDate, s.pending, s.applied.map((a) => a.version), s.missing], [true, [], m.migrated, []]);
  assert.match(runCli(['db', 'migrate', '--db', db]).stdout, /already up to date/);
  // reading a WAL database makes -wal and -shm files: the commands that made them remove them
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.startsWith('store.db')), ['store.db'], 'db migrate and db status leave nothing beside the store');
});

test('PostgreSQL: status shows everything pending, migrate applies it, a second migrate applies nothing', async () => {
  const url = (await (await server()).createDatabase('cli')).replace('postgres@', 'postgres:s3cret@');
  const before = json(runCli(['db', 'status', '--db', url, '--json']));
  assert.deepEqual([before.backend, before.upToDate, before.applied.length], ['postgres', false, 0]);
  assert.ok(before.pending.length >= 1);
  assert.ok(!before.db.includes('s3cret'));
  const text = runCli(['db', 'status'], { env: { EGRESS_TRIAGE_DB: url } });
  assert.match(text.stdout, /^postgres store postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/cli_\w+: \d+ migration\(s\) pending/);
  assert.match(text.stdout, /run "egress-triage db migrate"/);
  const m = json(runCli(['db', 'migrate', '--db', url, '--json']));
  assert.deepEqual(m.migrated, before.pending.map((p) => p.version));
  const after = json(runCli(['db', 'status', '--db', url, '--json']));
  assert.deepEqual([after.upToDate, after.pending, after.missing], [true, [], []]);
  assert.deepEqual(json(runCli(['db', 'migrate', '--db', url, '--json'])).migrated, []);
});

test('PostgreSQL: concurrent `db migrate` processes apply each migration exactly once', async () => {
  const url = await (await server()).createDatabase('cli');
  const outs = await Promise.all(
    Array.from({ length: 4 }, () =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, [CLI, 'db', 'migrate', '--db', url, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let [stdout, stderr] = ['', ''];
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.once('exit', (code) => done({ code, stdout, stderr }));
      }),
    ),
  );
  for (const o of outs) assert.equal(o.code, 0, o.stderr);
  const all = outs.flatMap((o) => (JSON.parse(o.stdout) as StatusJson).migrated!);
  assert.deepEqual(all.sort(), json(runCli(['db', 'status', '--db', url, '--json'])).applied.map((a) => a.version).sort());
});

test('PostgreSQL: an unreachable server, or a database that does not exist, is a clear error with its exit code', async () => {
  const down = runCli(['db', 'status', '--db', 'postgres://postgres:pw@127.0.0.1:1/egress']);
  assert.equal(down.status, 5);
  assert.match(down.stderr, /^egress-triage: PostgreSQL store postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/egress: cannot reach the server \(ECONNREFUSED/);
  assert.ok(!down.stderr.includes('pw@'));
  const s = await server();
  const nodb = runCli(['db', 'migrate', '--db', s.url('no_such_db')]);
  assert.equal(nodb.status, 3);
  assert.match(nodb.stderr, /database "no_such_db" does not exist: create it first/);
  assert.ok(!/\n\s+at /.test(nodb.stderr), 'no stack trace');
  // TLS asked of a server without it, a socket folder with no server, a URL the driver cannot parse:
  // each was an internal error (exit 70) or "not found"
  // the modes the driver verifies as verify-full: its ten-line SECURITY WARNING is not printed, the
  // message is the one line (docs/scale-out.md says how the driver reads them)
  for (const mode of ['prefer', 'require', 'verify-ca', 'verify-full']) {
    const tls = runCli(['db', 'status', '--db', `${s.url('egress')}?sslmode=${mode}&password=S3cret`]);
    assert.equal(tls.status, 5, tls.stderr);
    assert.match(tls.stderr, /^egress-triage: PostgreSQL store \S+: cannot make a TLS connection \(The server does not support SSL connections\); check sslmode in the URL\S*\n$/, mode);
    assert.ok(!tls.stderr.includes('S3cret'), 'the password parameter is masked');
  }
  const socket = runCli(['db', 'status', '--db', `${s.url('egress')}?host=/tmp/no-such-socket-folder`]);
  assert.equal(socket.status, 5, socket.stderr);
  assert.match(socket.stderr, /cannot reach the server \(ENOENT/);
  for (const url of ['postgres://u@127.0.0.1:99999/et', 'postgresql://u@[::1:55432/et']) {
    const bad = runCli(['db', 'status', '--db', url]);
    assert.equal(bad.status, 2, `${url}: ${bad.stderr}`);
    assert.match(bad.stderr, /^egress-triage: --db: .*: not a valid URL; write postgres:\/\/user@host:port\/database\n$/);
  }
  // Settings the driver reads only on connecting: `?port=abc` started no connection, and the command
  // ended with exit 0 and nothing said; `?connect_timeout=abc` meant no time-out.
  for (const [query, said] of [
    ['port=abc', '?port=abc is no port: give a number from 1 to 65535'],
    ['port=0', '?port=0 is no port: give a number from 1 to 65535'],
    ['connect_timeout=abc&password=S3cret', '?connect_timeout=abc is not a whole number'],
    ['keepalives_idle=-1', '?keepalives_idle=-1 is not a whole number'],
    ['sslmode=on', '?sslmode=on is no SSL mode: use one of disable, prefer, require, verify-ca, verify-full, no-verify'],
    ['sslmode=verify-full&sslrootcert=/no/such/ca.pem', '?sslrootcert=/no/such/ca.pem: no such file'],
    // each file the driver reads as it parses the URL, not only the CA: a client certificate and its key
    ['sslmode=require&sslcert=/no/such/client.crt', '?sslcert=/no/such/client.crt: no such file'],
    ['sslmode=require&sslkey=/no/such/client.key', '?sslkey=/no/such/client.key: no such file'],
    // libpq's verify-ca checks the chain to a CA the URL must name (the driver refused it on connecting, exit 5)
    ['sslmode=verify-ca&uselibpqcompat=true', "?sslmode=verify-ca with uselibpqcompat=true needs ?sslrootcert=, the CA the server's certificate must chain to (or use sslmode=verify-full)"],
  ]) {
    const bad = runCli(['db', 'status', '--db', `${s.url('egress')}?${query}`]);
    assert.equal(bad.status, 2, `${query}: ${bad.stderr}`);
    assert.ok(bad.stderr.endsWith(`: ${said}\n`), bad.stderr);
    assert.ok(!bad.stderr.includes('S3cret'), 'the password parameter is masked');
  }
  // a file parameter naming a directory: the driver's bare EISDIR named neither the parameter nor the path
  const folder = join(tmp.dir, 'certs');
  mkdirSync(folder);
  for (const key of ['sslrootcert', 'sslcert', 'sslkey']) {
    const dir = runCli(['db', 'status', '--db', `${s.url('egress')}?sslmode=require&${key}=${folder}&password=S3cret`]);
    assert.equal(dir.status, 5, `${key}: ${dir.stderr}`);
    assert.match(dir.stderr, new RegExp(`^egress-triage: --db: \\S+: \\?${key}=${folder} is a directory; give the file of the (CA certificate|client certificate|client key) in it\n$`));
    assert.ok(!dir.stderr.includes('S3cret'), 'the password parameter is masked');
  }
  // well-formed settings are the driver's, and reach the server
  const good = runCli(['db', 'status', '--db', `${s.url('postgres')}?connect_timeout=5&sslmode=disable&keepalives=1`]);
  assert.equal(good.status, 0, good.stderr);
});

test('db is listed in --help with its exit codes', () => {
  assert.match(runCli(['--help']).stdout, /\bdb\b.*schema/);
  assert.match(runCli(['db', 'migrate', '--help']).stdout, /postgres:\/\/[\s\S]*Exit codes: 0 ok, 3 no such store or database, 5/);
});

/** Records a schema version no build of today knows, as a newer egress-triage would. */
async function fromTheFuture(db: string, version: number): Promise<void> {
  if (db.startsWith('postgres://')) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    try {
      await c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from a newer egress-triage')", [version]);
    } finally {
      await c.end();
    }
    return;
  }
  const { default: Database } = await import('better-sqlite3');
  const d = new Database(db);
  d.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from a newer egress-triage', '2030-01-01')").run(version);
  d.close();
}

test('a store a newer egress-triage migrated is refused by every command that would write it, exit 5, and left as it was; db status names the versions', async () => {
  const sqlite = join(tmp.dir, 'newer.db');
  const pgUrl = await (await server()).createDatabase('newer');
  for (const db of [sqlite, pgUrl]) {
    assert.equal(runCli(['db', 'migrate', '--db', db]).status, 0);
    const status = json(runCli(['db', 'status', '--db', db, '--json']));
    const future = Math.max(...status.applied.map((a) => a.version)) + 1;
    await fromTheFuture(db, future);
    const before = db === sqlite ? readFileSync(sqlite) : null;
    for (const args of [['db', 'migrate'], ['stats'], ['rules', 'list']]) {
      const r = runCli([...args, '--db', db]);
      assert.equal(r.status, 5, `${args.join(' ')} on ${db}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`the store was migrated by a newer egress-triage \\(schema version ${future}; this one knows up to ${future - 1}\\)`), args.join(' '));
    }
    if (before) assert.ok(readFileSync(sqlite).equals(before), 'the SQLite file is untouched');
    const after = runCli(['db', 'status', '--db', db, '--json']);
    assert.equal(after.status, 0, after.stderr);
    assert.deepEqual((JSON.parse(after.stdout) as { unknown: number[] }).unknown, [future]);
  }
});

test('an existing file that is no store is not made one: an empty file is no store to a reader; another application\'s database is refused to every command, unchanged', async () => {
  const { default: Database } = await import('better-sqlite3');
  const empty = join(tmp.dir, 'empty.db');
  writeFileSync(empty, '');
  const read = runCli(['stats', '--db', empty]);
  assert.equal(read.status, 3, read.stderr);
  assert.match(read.stderr, /no store at .*empty\.db \(from --db\): the file is empty/);
  assert.equal(readFileSync(empty).length, 0, 'a reader leaves it empty');
  const gen = join(tmp.dir, 'few.ndjson');
  assert.equal(runCli(['generate', '--events', '300', '--runs', '3', '--out', gen]).status, 0);
  assert.equal(runCli(['ingest', gen, '--db', empty]).status, 0, 'a writer makes its store in an empty file (mktemp)');

  const foreign = join(tmp.dir, 'other-app.db');
  const d = new Database(foreign);
  d.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (12.5)");
  d.close();
  const before = readFileSync(foreign);
  for (const args of [['stats'], ['analyze', '--json'], ['ingest', gen], ['db', 'migrate'], ['audit'], ['approvals', 'list']]) {
    const r = runCli([...args, '--db', foreign]);
    assert.equal(r.status, 5, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /other-app\.db is a SQLite database of something else \(tables invoices\), not an egress-triage store/, args[0]);
  }
  assert.ok(readFileSync(foreign).equals(before), 'the other application\'s database is untouched');
  const status = runCli(['db', 'status', '--db', foreign]);
  assert.equal(status.status, 5, 'db status refuses it too, not listing its tables as pending migrations');
  assert.match(status.stderr, /other-app\.db is a SQLite database of something else \(tables invoices\)/);
  assert.ok(readFileSync(foreign).equals(before), 'db status leaves it in its own journal mode');
  assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.startsWith('other-app.db')), ['other-app.db'], 'and makes no file beside it');
});
