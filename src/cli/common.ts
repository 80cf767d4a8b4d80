import { Option, type Command } from 'commander';
import { revealInvisible } from '../domain/reveal-invisible.js';
import { resolveConfigPath, resolveTenant } from '../config/paths.js';
import type { ConfigFile } from '../config/config-file.js';
import { parseInstant } from '../domain/time.js';
import { dashboardUrlProblem, resolveDashboardUrl } from '../domain/dashboard.js';
import { existsSync, statSync } from 'node:fs';
import { UserError, storeProblem } from './errors.js';
import { EXIT } from './exit-codes.js';
import { out } from './output.js';
import { explainStoreError, openStore, StoreMissingError, StoreUnavailableError, type OpenStore } from '../storage/open-store.js';
import { postgresUrlProblem, resolveStoreLocation, type StoreLocation } from '../storage/location.js';

export interface StoreOptions {
  db?: string;
  tenant?: string;
  config?: string;
  json?: boolean;
}

const DB_HELP = 'store: a SQLite file, or a postgres://user:password@host:port/database URL for the shared PostgreSQL store';

/** --db, --tenant, --config and --json, shared by every command that reads the store (withPorts). */
export function withStoreOptions(cmd: Command, { json = true }: { json?: boolean } = {}): Command {
  cmd
    .addOption(new Option('--db <location>', `${DB_HELP} (env EGRESS_TRIAGE_DB, default ./.egress-triage/egress.db)`))
    .addOption(new Option('--tenant <name>', 'tenant (env EGRESS_TRIAGE_TENANT, default "default")'))
    .addOption(new Option('--config <file>', 'config file (env EGRESS_TRIAGE_CONFIG, default ./egress-triage.yaml if present)'));
  if (json) cmd.option('--json', 'print machine-readable JSON');
  return cmd;
}

export async function loadCliConfig(opts: StoreOptions): Promise<ConfigFile> {
  // `--config "$CFG"` with the variable unset would otherwise run on no config, or on ./egress-triage.yaml
  if (opts.config !== undefined && opts.config.trim() === '') throw new UserError('--config: is empty; give a config file path, or leave --config out');
  const path = resolveConfigPath(opts.config);
  if (path === null) return {};
  const { ConfigReadError, loadConfig } = await import('../config/config-file.js');
  const { RiskyCoverageError } = await import('../detection/allowed-endpoints.js');
  try {
    return loadConfig(path).config;
  } catch (err) {
    // Like a policy file: a config that exists but is invalid is rejected input; one that would allow
    // a risky destination is refused, as the same entry given by flag is.
    const msg = (err as Error).message;
    if (err instanceof ConfigReadError) throw new UserError(msg, EXIT.IO);
    throw new UserError(msg, err instanceof RiskyCoverageError ? EXIT.REFUSED : / does not exist$/.test(msg) ? EXIT.NOT_FOUND : EXIT.REJECTED);
  }
}

/**
 * How a command treats a store that does not exist yet. Only commands that put data in (`ingest`,
 * `demo`) may create one: anything else on a missing store is almost always a mistyped --db, and
 * answering "0 detections" from a fresh empty file would hide that.
 */
export type StoreMode = 'read' | 'create';

/**
 * The store that --db (or EGRESS_TRIAGE_DB) names, for every command that takes --db. An empty value
 * would be the current folder, and SQLite's ":memory:" a store that vanishes at exit (an ingest that
 * stores nothing, reads that answer from nothing): both are usage errors.
 */
export function storeLocation(flag: string | undefined): StoreLocation {
  if (flag !== undefined && flag.trim() === '') throw new UserError('--db is empty; give a SQLite file path or a postgres:// URL');
  // set but empty is not unset: it would fall back to the default store in silence, as --db "" does not
  const env = process.env.EGRESS_TRIAGE_DB;
  if (flag === undefined && env !== undefined && env.trim() === '') {
    throw new UserError('EGRESS_TRIAGE_DB is empty; give a SQLite file path or a postgres:// URL, or unset it for the default store');
  }
  const loc = resolveStoreLocation(flag);
  const named = loc.from === 'EGRESS_TRIAGE_DB' ? 'EGRESS_TRIAGE_DB' : '--db';
  // a URL of another scheme would be taken as a relative path (`mysql://x` made a folder `mysql:`)
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(flag ?? env ?? '');
  if (loc.backend === 'sqlite' && scheme) {
    throw new UserError(`${named}: ${scheme[1]}:// is no store egress-triage knows; give a SQLite file path or a postgres:// URL`);
  }
  // the driver parses it only on connecting, where a bad one was an internal error (exit 70); a file it
  // names that is there but unusable is the environment's doing, as for any file given (exit 5)
  const problem = loc.backend === 'postgres' ? postgresUrlProblem(loc.target) : null;
  if (problem !== null) throw new UserError(`${named}: ${loc.display}: ${problem.message}`, problem.kind === 'file' ? EXIT.IO : EXIT.USAGE);
  if (loc.backend === 'sqlite' && loc.target === ':memory:') {
    throw new UserError(
      `${named}: ":memory:" is an in-memory SQLite database that is gone when the command ends ` +
        '(nothing ingested would be kept, and reads would answer from an empty store); give a file path',
    );
  }
  if (loc.backend === 'sqlite') refuseNonFile(loc);
  return loc;
}

/**
 * A store is a regular file (or a path not yet made). A directory, a named pipe, a device or a socket
 * is refused before anything opens it: SQLite reported a directory or /dev/null as "disk I/O error",
 * `db status` read /dev/null as a store with every migration pending, and on a named pipe it waited
 * for a writer for ever.
 */
function refuseNonFile(loc: StoreLocation): void {
  let st;
  try {
    st = statSync(loc.target);
  } catch {
    return; // missing (created or reported as no store later) or unreadable (opening it says why)
  }
  if (st.isFile()) return;
  const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a named pipe' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a regular file';
  throw new UserError(`${loc.from}: ${loc.display} is ${kind}, not a store file: give the path of a store, or of a new file`, EXIT.IO);
}

/** A store path that must already exist: a clear NOT_FOUND error naming it and how to create one. */
export function requireExistingStore(dbPath: string, from: string): void {
  if (dbPath === ':memory:' || existsSync(dbPath)) return;
  throw new UserError(
    `no store at ${dbPath} (from ${from}): check the path, or create one with "egress-triage ingest FILE --db ${dbPath}" ` +
      '(or "egress-triage demo" for a sample)',
    EXIT.NOT_FOUND,
  );
}

export interface PortsContext {
  /** the store's ports, on whichever backend --db / EGRESS_TRIAGE_DB selects */
  ports: OpenStore;
  tenant: string;
  location: StoreLocation;
  config: ConfigFile;
  json: boolean;
}

/** A store failure as the documented exit code: NOT_FOUND for a missing database, IO for the rest. */
function storeFailure(loc: StoreLocation, err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return new UserError(err.message, err.kind === 'not_found' ? EXIT.NOT_FOUND : EXIT.IO);
  const problem = storeProblem(err);
  if (problem) return new UserError(`store ${loc.display}: ${problem}`, EXIT.IO);
  return err;
}

/**
 * Opens the store for a command through the backend picker (storage/open-store.ts), a SQLite file
 * or a PostgreSQL URL, and closes it afterwards, whatever happens.
 */
export async function withPorts<T>(
  opts: StoreOptions,
  fn: (ctx: PortsContext) => Promise<T> | T,
  mode: StoreMode = 'read',
  /**
   * A remembered risky entry that no longer parses fails every command closed, but the ones that
   * manage the list and judge by none of it (`risky forget`, `risky audit`) must still run: without
   * them, only hand-edited SQL could remove the entry.
   */
  o: {
    unparsedRiskyListOk?: boolean;
    /** the command answers about the tenant's data: a tenant the store has no data for gets a note (noteUnknownTenant) */
    aboutTenant?: boolean;
  } = {},
): Promise<T> {
  let tenant: string;
  try {
    tenant = resolveTenant(opts.tenant);
  } catch (err) {
    // name where the value came from: an exported EGRESS_TRIAGE_TENANT is no --tenant the user typed
    throw new UserError(`${opts.tenant !== undefined ? '--tenant' : 'EGRESS_TRIAGE_TENANT'}: ${(err as Error).message}`);
  }
  const config = await loadCliConfig(opts);
  const location = storeLocation(opts.db);
  // A missing SQLite file: say so, with how to create one.
  if (mode === 'read' && location.backend === 'sqlite') requireExistingStore(location.target, location.from);
  let ports: OpenStore;
  try {
    ports = await openStore(location, mode);
  } catch (err) {
    if (err instanceof StoreMissingError) throw new UserError(err.message, EXIT.NOT_FOUND);
    if (err instanceof StoreUnavailableError) throw storeFailure(location, err);
    throw new UserError(`cannot open store ${location.display}: ${storeProblem(err) ?? (err as Error).message}`, EXIT.IO);
  }
  try {
    const remembered = await rememberedRisky(ports, config, resolveConfigPath(opts.config), o.unparsedRiskyListOk === true);
    if (o.aboutTenant) await noteUnknownTenant(ports, tenant);
    return await fn({ ports, tenant, location, config: remembered, json: Boolean(opts.json) });
  } catch (err) {
    if (err instanceof UserError) throw err;
    let e = err;
    try {
      explainStoreError(location, err);
    } catch (explained) {
      e = explained;
    }
    throw storeFailure(location, e);
  } finally {
    await ports.close();
  }
}

/**
 * A reader asked about a tenant the store has no data for: says so on stderr, with the tenants it
 * has. The answer itself (no detections, an empty table) stands, but a mistyped --tenant must not
 * read as "all clear".
 */
async function noteUnknownTenant(ports: OpenStore, tenant: string): Promise<void> {
  const known = await ports.detections.tenants();
  if (known.includes(tenant)) return;
  const some = known.slice(0, 10).map((t) => JSON.stringify(t)).join(', ') + (known.length > 10 ? `, and ${known.length - 10} more` : '');
  const has = known.length === 0 ? 'it holds no tenant yet' : `its tenants: ${some}`;
  process.stderr.write(`egress-triage: note: the store has no data for tenant "${tenant}" (${has}); --tenant or EGRESS_TRIAGE_TENANT names another\n`);
}

/**
 * The config with the risky destinations the store remembers (rules/risky-memory.ts): the ones this
 * config names are remembered first, so every later command on the store judges by them too.
 */
async function rememberedRisky(ports: OpenStore, config: ConfigFile, configPath: string | null, unparsedOk: boolean): Promise<ConfigFile> {
  const { configActor, rejudgedMessage, rememberRiskyDestinations, StoredRiskyListError } = await import('../rules/risky-memory.js');
  let r;
  try {
    r = await rememberRiskyDestinations(ports, config.risky_destinations, configActor(configPath));
  } catch (err) {
    if (!(err instanceof StoredRiskyListError)) throw err;
    if (unparsedOk) return config;
    throw new UserError(err.message, EXIT.REJECTED);
  }
  const rejudged = rejudgedMessage(r.rejudged);
  if (rejudged !== null) process.stderr.write(rejudged);
  if (r.added.length > 0) {
    const released = r.released > 0 ? `; ${r.released} detection(s) that were suppressed or resolved are new again` : '';
    process.stderr.write(`egress-triage: the store now remembers the risky destination(s) ${r.added.join(', ')} for every command${released}\n`);
  }
  if (r.unremembered.length > 0) {
    process.stderr.write(`egress-triage: the store is read-only, so it cannot remember the risky destination(s) ${r.unremembered.join(', ')}; this command judges by them all the same\n`);
  }
  return r.list.length === 0 ? config : { ...config, risky_destinations: r.list };
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2) + '\n');
}

/**
 * Plain aligned table; numbers right-aligned. Cells hold stored text, which is the telemetry's (an
 * attacker's): control and format characters are written by name (revealInvisible), so a process
 * name cannot split a row, forge a line, or send escape sequences to the terminal.
 */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => revealInvisible(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

export function parseIntOption(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    // decimal digits only: Number("") and Number(" ") are 0, which turned --learning-runs "" into 0
    const n = /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`${name}: expected an integer between ${min} and ${max}, got "${value}"`);
    return n;
  };
}

/**
 * The base of every dashboard link a command prints: --dashboard-url, then EGRESS_TRIAGE_DASHBOARD_URL,
 * then the config file's dashboard_url, then the local dashboard. One that is no http(s) URL is refused,
 * naming where it came from (a config file's is rejected input, exit 1; the others are usage errors).
 */
export function dashboardUrlFor(flag: string | undefined, config: ConfigFile): string {
  const env = process.env.EGRESS_TRIAGE_DASHBOARD_URL;
  const [value, from, code] =
    flag !== undefined ? [flag, '--dashboard-url', EXIT.USAGE]
    : env !== undefined ? [env, 'EGRESS_TRIAGE_DASHBOARD_URL', EXIT.USAGE]
    : [config.dashboard_url, 'dashboard_url in the config file', EXIT.REJECTED];
  if (value === undefined) return resolveDashboardUrl(undefined, {});
  const problem = dashboardUrlProblem(value);
  if (problem) throw new UserError(`${from}: ${problem}`, code);
  return resolveDashboardUrl(value, {});
}

/** --cursor: the opaque next_cursor of a previous page; empty is a usage error, not "the first page". */
export function parseCursorOption(value: string): string {
  if (value.trim() === '') throw new UserError('--cursor is empty; give the next_cursor of a previous page, or leave the option out for the first page');
  return value;
}

/** A time option through the one time parser (domain/time.ts). Returns epoch ms. */
export function parseTimeOption(name: string) {
  return (value: string): number => {
    try {
      return parseInstant(value, Date.now())!;
    } catch (e) {
      throw new UserError(`${name}: ${(e as Error).message}`);
    }
  };
}

/** True when progress bars make sense: stderr is a terminal and output is not JSON. */
export function wantsProgress(json: boolean | undefined): boolean {
  return Boolean(process.stderr.isTTY) && !json && !process.env.CI;
}
