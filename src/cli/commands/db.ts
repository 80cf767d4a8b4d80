import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { formatTable, printJson, storeLocation } from '../common.js';
import { UserError, storeProblem } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { openSchema, StoreUnavailableError } from '../../storage/open-store.js';
import type { StoreLocation } from '../../storage/location.js';
import type { SchemaStatus } from '../../storage/schema-port.js';

interface DbOpts {
  db?: string;
  json?: boolean;
}

const DB_HELP =
  'store: a SQLite file, or a postgres://user:password@host:port/database URL for the shared PostgreSQL store ' +
  '(env EGRESS_TRIAGE_DB, default ./.egress-triage/egress.db)';

const EXIT_HELP = '\nExit codes: 0 ok, 3 no such store or database, 5 the store cannot be reached or written.\n';

function dbOptions(cmd: Command): Command {
  return cmd.addOption(new Option('--db <location>', DB_HELP)).option('--json', 'print machine-readable JSON').addHelpText('after', EXIT_HELP);
}

/** Runs fn on the store's schema, turning environment failures into the documented exit codes. */
async function withSchema<T>(loc: StoreLocation, fn: (s: ReturnType<typeof openSchema>) => Promise<T>): Promise<T> {
  const schema = openSchema(loc);
  try {
    return await fn(schema);
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw new UserError(err.message, err.kind === 'not_found' ? EXIT.NOT_FOUND : EXIT.IO);
    const problem = storeProblem(err);
    if (problem) throw new UserError(`store ${loc.display}: ${problem}`, EXIT.IO);
    throw err;
  } finally {
    await schema.close();
  }
}

/** A damaged store's state line: which tables are gone, and what that means for the other commands. */
function damagedState(missing: string[]): string {
  const [tables, them] = missing.length === 1 ? [`table ${missing[0]} is`, 'it'] : [`tables ${missing.join(', ')} are`, 'them'];
  return `damaged: ${tables} missing, though its migrations made ${them}; commands that need ${them} refuse the store (exit 5): restore it from a backup`;
}

function printStatus(loc: StoreLocation, s: SchemaStatus): void {
  const state = s.unknown.length
    ? 'newer than this egress-triage'
    : s.pending.length
      ? `${s.pending.length} migration(s) pending`
      : s.missing.length
        ? damagedState(s.missing)
        : 'up to date';
  out(`${loc.backend} store ${loc.display}: ${state}\n`);
  const rows: (string | number)[][] = [
    ...s.applied.map((m) => [m.version, m.name, s.unknown.includes(m.version) ? 'unknown to this build' : `applied ${m.appliedAt}`]),
    ...s.pending.map((m) => [m.version, m.name, 'pending']),
  ];
  if (rows.length) out('\n' + formatTable(['version', 'migration', 'state'], rows) + '\n');
  if (s.pending.length && !s.unknown.length) out(`\nrun "egress-triage db migrate" to apply them\n`);
}

export function register(program: Command): void {
  const db = program.command('db').description('Inspect and migrate the store schema (SQLite or PostgreSQL)');

  dbOptions(db.command('status').description('Show which schema migrations the store has and which are pending; changes nothing')).action(
    async (opts: DbOpts) => {
      const loc = storeLocation(opts.db);
      const s = await withSchema(loc, async (schema) => {
        if (loc.backend === 'sqlite' && loc.target !== ':memory:' && !existsSync(loc.target)) {
          throw new UserError(`no store at ${loc.display} (from ${loc.from}): create it with "egress-triage db migrate --db ${loc.display}" or by ingesting into it`, EXIT.NOT_FOUND);
        }
        return schema.status();
      });
      if (opts.json) return printJson({ backend: loc.backend, db: loc.display, upToDate: s.pending.length === 0 && s.unknown.length === 0 && s.missing.length === 0, ...s });
      printStatus(loc, s);
    },
  );

  dbOptions(db.command('migrate').description('Create the store or bring its schema up to date (safe to run from several processes at once)')).action(
    async (opts: DbOpts) => {
      const loc = storeLocation(opts.db);
      const { applied, status } = await withSchema(loc, async (schema) => ({ applied: await schema.migrate(), status: await schema.status() }));
      if (opts.json) return printJson({ backend: loc.backend, db: loc.display, migrated: applied, ...status });
      out(applied.length ? `${loc.backend} store ${loc.display}: applied migration(s) ${applied.join(', ')}\n` : `${loc.backend} store ${loc.display}: already up to date\n`);
    },
  );
}
