import { after } from 'node:test';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from './free-port.js';

/**
 * A real PostgreSQL server for the tests: initdb into a temp folder, started on a free loopback port
 * with its unix socket in that folder, one fresh database per caller. In a whole-suite run
 * (scripts/run-tests.mjs) every test file borrows one server the runner started (EGRESS_TRIAGE_TEST_PG)
 * and drops its own databases when its tests end; run alone, a file starts its own and stops it.
 *
 * initdb refuses to run as root (CI runs as root), so the server then runs as the unprivileged
 * user `nobody`, owning the temp folder. Durability is off (fsync, full_page_writes): a test
 * database never needs to survive a power loss, and startup and writes get much cheaper.
 */

const PG_ROOT = '/usr/lib/postgresql';
const INSTALL_HINT =
  'install the PostgreSQL server (Debian/Ubuntu: "apt-get install -y postgresql"; .ci/run does this when it is missing), ' +
  'or point EGRESS_TRIAGE_PG_BIN at the folder holding initdb and pg_ctl';

/** The folder with initdb and pg_ctl: EGRESS_TRIAGE_PG_BIN, else the newest /usr/lib/postgresql/N/bin, preferring 15. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const candidates: string[] = [];
  if (env.EGRESS_TRIAGE_PG_BIN) candidates.push(env.EGRESS_TRIAGE_PG_BIN);
  else if (existsSync(PG_ROOT)) {
    const versions = readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    if (versions.includes('15')) versions.unshift('15');
    candidates.push(...versions.map((v) => join(PG_ROOT, v, 'bin')));
  }
  const dir = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (!dir) throw new Error(`PostgreSQL tests need initdb and pg_ctl, found none (looked in ${candidates.join(', ') || PG_ROOT + '/*/bin'}): ${INSTALL_HINT}`);
  return dir;
}

/** uid/gid to run the server as: ourselves, unless we are root (then `nobody`). */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  if (!line) throw new Error('PostgreSQL tests run as root need the unprivileged user "nobody" to run the server as (initdb refuses root): create it with "useradd -r nobody"');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function run(cmd: string, args: string[], opts: SpawnOptions): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/**
 * A new cluster in `data`. initdb takes about three seconds of CPU, and some fifty test files start a
 * server each, so within one suite run (scripts/run-tests.mjs sets EGRESS_TRIAGE_TEST_CACHE to a
 * folder it deletes afterwards) the first initdb is kept as a template and later servers copy it,
 * ownership and modes included (cp -a). Test processes race for the template: each that finds none
 * runs initdb itself and offers its result by an atomic rename; one wins, the others use their own.
 */
async function initdb(bin: string, data: string, spawnOpts: SpawnOptions): Promise<void> {
  const cache = process.env.EGRESS_TRIAGE_TEST_CACHE;
  const template = cache ? join(cache, `postgres-template-${bin.replace(/[^A-Za-z0-9]+/g, '-')}`) : undefined;
  if (template && existsSync(join(template, 'PG_VERSION'))) {
    const copy = await run('cp', ['-a', template, data], {});
    if (copy.code === 0) return;
    throw new Error(`copying the initdb template ${template} failed (exit ${copy.code}):\n${copy.output}`);
  }
  const init = await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], spawnOpts);
  if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code}) in ${data}:\n${init.output}`);
  if (!template) return;
  const offered = `${template}.${process.pid}`;
  const copy = await run('cp', ['-a', data, offered], {});
  try {
    if (copy.code === 0) renameSync(offered, template);
  } catch {
    // another test process offered its template first: theirs is as good
  } finally {
    rmSync(offered, { recursive: true, force: true });
  }
}

/** Where scripts/run-tests.mjs tells its test files about the server they share: "PORT DIR". */
export const SHARED_SERVER_ENV = 'EGRESS_TRIAGE_TEST_PG';

/** The database createStoreDatabase copies: a store migrated by this build, with no data. */
const MIGRATED_TEMPLATE = 'egress_triage_migrated_template';

export class PostgresServer {
  private stopped = false;
  private dbs = 0;
  /** Databases this process created on a borrowed server: it drops them instead of stopping the server. */
  private readonly created: string[] = [];
  /**
   * Database names carry the pid and this, so files sharing a server never collide, even when a
   * later process gets the pid of one whose databases are still being dropped.
   */
  private readonly token = randomBytes(3).toString('hex');

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly spawnOpts: SpawnOptions,
    private readonly borrowed = false,
  ) {}

  /** The server the runner started, as announced in EGRESS_TRIAGE_TEST_PG; null when there is none. */
  static borrow(env: NodeJS.ProcessEnv = process.env): PostgresServer | null {
    const announced = env[SHARED_SERVER_ENV];
    if (!announced) return null;
    const m = /^(\d+) (\/.+)$/.exec(announced);
    if (!m) throw new Error(`${SHARED_SERVER_ENV} must be "PORT DIR", got "${announced}"`);
    return new PostgresServer(m[2]!, Number(m[1]), postgresBinDir(env), {}, true);
  }

  /** initdb + start. The caller stops it (usePostgres() does so after the file's tests). */
  static async start(opts: { sharedBuffers?: string; maxConnections?: number; extra?: string[] } = {}): Promise<PostgresServer> {
    const bin = postgresBinDir();
    const user = serverUser();
    const dir = mkdtempSync(join(tmpdir(), 'egress-triage-pg-'));
    // The server user must own its folder; mkdtemp made it 0700 for us.
    if (user) chownSync(dir, user.uid, user.gid);
    const spawnOpts: SpawnOptions = { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' }, ...(user ?? {}) };
    const data = join(dir, 'data');
    try {
      await initdb(bin, data, spawnOpts);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      const hint = user ? ` (the server runs as "nobody", which must be able to reach ${dir}: check the permissions of TMPDIR and its parents)` : '';
      throw new Error(`${(e as Error).message}${hint}`);
    }
    // A port found free can be taken before the server binds it: try a few.
    let lastError = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const options = [
        `-p ${port}`, `-k ${dir}`, "-c listen_addresses=127.0.0.1", '-c fsync=off', '-c full_page_writes=off',
        '-c synchronous_commit=off', `-c shared_buffers=${opts.sharedBuffers ?? '32MB'}`, ...(opts.extra ?? []), `-c max_connections=${opts.maxConnections ?? 60}`, '-c max_locks_per_transaction=256',
      ].join(' ');
      const started = await run(join(bin, 'pg_ctl'), ['start', '-w', '-t', '120', '-D', data, '-l', join(dir, 'server.log'), '-o', options], spawnOpts);
      if (started.code === 0) {
        const server = new PostgresServer(dir, port, bin, spawnOpts);
        process.once('exit', () => server.stopSync());
        return server;
      }
      const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : '';
      lastError = `${started.output}\n${log}`;
      if (!/already in use|could not bind/i.test(log)) break;
    }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start:\n${lastError}`);
  }

  /**
   * CPU seconds the server has used so far, its ended backends included (the postmaster reaps them),
   * or null where /proc cannot tell (not Linux, a borrowed server's). For the runner's report.
   */
  cpuSeconds(): number | null {
    try {
      const pid = Number(readFileSync(join(this.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      // fields after the command name: utime stime cutime cstime are the 12th-15th, in clock ticks (100 Hz on Linux)
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
    } catch {
      return null;
    }
  }

  /** A connection URL for database `db` as the superuser over loopback TCP. */
  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  /**
   * A new, empty database; returns its URL. The cluster's default locale is C; `locale` gives the
   * database another one (C.UTF-8: lower() then folds non-ASCII letters, as on most servers).
   * FILE_COPY: PostgreSQL 15's default strategy copies the template through the WAL, about 130 ms of
   * server CPU a database against 16 ms (measured 2026-12-07; a run makes some two hundred). Its
   * cost, a checkpoint, is small with fsync off.
   */
  async createDatabase(prefix = 'test', locale?: 'C.UTF-8'): Promise<string> {
    const name = this.newName(prefix);
    await this.onServer((c) => c.query(`CREATE DATABASE ${name}${locale ? ` TEMPLATE template0 ENCODING 'UTF8' LOCALE '${locale}'` : ''} STRATEGY FILE_COPY`));
    if (this.borrowed) this.created.push(name);
    return this.url(name);
  }

  /**
   * A new database that already holds an egress-triage store with every migration applied and no
   * data: what `createDatabase` gives once the product's first write has migrated it. It is copied
   * from a template database this server keeps, made by the product's own migrations on first use,
   * so a test that writes to it right away skips the migration: some 0.2-0.4 s of server CPU a
   * database, paid about two hundred times a whole-suite run. Tests about migrations, schemas or an
   * empty database take createDatabase.
   */
  async createStoreDatabase(prefix = 'test'): Promise<string> {
    await (this.migrated ??= this.makeMigratedTemplate());
    const name = this.newName(prefix);
    await this.onServer((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${MIGRATED_TEMPLATE} STRATEGY FILE_COPY`));
    if (this.borrowed) this.created.push(name);
    return this.url(name);
  }

  private migrated: Promise<void> | undefined;

  /**
   * The migrated template, made once per server: test processes sharing a borrowed server take an
   * advisory lock, and the first makes it under a name of its own, then renames it, so no process
   * ever copies a half-migrated one. Nothing connects to it afterwards (a copy needs it unused).
   */
  private async makeMigratedTemplate(): Promise<void> {
    await this.onServer(async (c) => {
      await c.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATED_TEMPLATE]);
      try {
        if ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [MIGRATED_TEMPLATE])).rowCount) return;
        const building = this.newName('template_building');
        await c.query(`CREATE DATABASE ${building} STRATEGY FILE_COPY`);
        const { openStore } = await import('../../src/storage/open-store.js');
        const { resolveStoreLocation } = await import('../../src/storage/location.js');
        const store = await openStore(resolveStoreLocation(this.url(building), {}), 'create');
        await store.close();
        await c.query(`ALTER DATABASE ${building} RENAME TO ${MIGRATED_TEMPLATE}`);
        await c.query(`ALTER DATABASE ${MIGRATED_TEMPLATE} WITH IS_TEMPLATE true`);
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATED_TEMPLATE]);
      }
    });
  }

  private newName(prefix: string): string {
    return `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${this.token}_${++this.dbs}`;
  }

  private async onServer<T>(body: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      return await body(c);
    } finally {
      await c.end();
    }
  }

  /** Stops the server and deletes its folder; a borrowed server is left running, without this process's databases. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.borrowed) return this.dropCreated();
    await run(join(this.bin, 'pg_ctl'), ['stop', '-w', '-m', 'fast', '-D', join(this.dir, 'data')], this.spawnOpts);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** FORCE: a test's pool or CLI child may still hold a connection; the database goes anyway. */
  private async dropCreated(): Promise<void> {
    if (this.created.length === 0) return;
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      for (const name of this.created.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  }

  /** Last resort when the process exits without the after() hook having run (a borrowed server: the runner's). */
  private stopSync(): void {
    if (this.stopped || this.borrowed) return;
    this.stopped = true;
    spawnSync(join(this.bin, 'pg_ctl'), ['stop', '-w', '-m', 'immediate', '-D', join(this.dir, 'data')], { ...this.spawnOpts, stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let shared: Promise<PostgresServer> | null = null;

/**
 * The server of this test process: the runner's, or one started on first use. Either way stop()
 * runs after the calling file's tests (it drops this file's databases from a borrowed one).
 * Call at the top level of a test file; each test then takes its own database with createDatabase().
 */
export function usePostgres(): () => Promise<PostgresServer> {
  after(async () => {
    if (shared) await (await shared.catch(() => null))?.stop();
  });
  return () => (shared ??= Promise.resolve().then(() => PostgresServer.borrow() ?? PostgresServer.start()));
}
