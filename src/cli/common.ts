import { Option, type Command } from 'commander';
import { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import { resolveDbPath, resolveTenant } from '../config/paths.js';
import { loadConfig, type ConfigFile } from '../config/config-file.js';
import { UserError } from './errors.js';
import { parseInstant } from '../domain/time.js';

export interface StoreOptions {
  db?: string;
  tenant?: string;
  config?: string;
  json?: boolean;
}

/** --db, --tenant, --config and --json, shared by every command that reads the store. */
export function withStoreOptions(cmd: Command, { json = true }: { json?: boolean } = {}): Command {
  cmd
    .addOption(new Option('--db <path>', 'SQLite store file (env EGRESS_TRIAGE_DB, default ./.egress-triage/egress.db)'))
    .addOption(new Option('--tenant <name>', 'tenant (env EGRESS_TRIAGE_TENANT, default "default")'))
    .addOption(new Option('--config <file>', 'config file (env EGRESS_TRIAGE_CONFIG, default ./egress-triage.yaml if present)'));
  if (json) cmd.option('--json', 'print machine-readable JSON');
  return cmd;
}

export interface CliContext {
  store: SqliteStore;
  tenant: string;
  dbPath: string;
  config: ConfigFile;
  json: boolean;
}

export function loadCliConfig(opts: StoreOptions): ConfigFile {
  try {
    return loadConfig(opts.config).config;
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

/** Opens the store for a command and closes it afterwards, whatever happens. */
export async function withStore<T>(opts: StoreOptions, fn: (ctx: CliContext) => Promise<T> | T): Promise<T> {
  let tenant: string;
  try {
    tenant = resolveTenant(opts.tenant);
  } catch (err) {
    throw new UserError(`--tenant: ${(err as Error).message}`);
  }
  const config = loadCliConfig(opts);
  const dbPath = resolveDbPath(opts.db);
  let store: SqliteStore;
  try {
    store = SqliteStore.open(dbPath);
  } catch (err) {
    throw new UserError(`cannot open store ${dbPath}: ${(err as Error).message}`);
  }
  try {
    return await fn({ store, tenant, dbPath, config, json: Boolean(opts.json) });
  } finally {
    store.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Plain aligned table; numbers right-aligned. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
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
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`${name}: expected an integer between ${min} and ${max}, got "${value}"`);
    return n;
  };
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
