import { Command } from 'commander';
import { out } from '../output.js';
import { formatTable, loadCliConfig, storeLocation, withPorts, withStoreOptions, printJson, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { BUILTIN_RISKY_DESTINATIONS, riskyDestinations } from '../../analysis/risky-destinations.js';
import { ForgetRiskyError, forgetRiskyDestination, riskyEntryKey } from '../../rules/risky-memory.js';
import { defaultActor, RuleError } from '../../rules/service.js';

/**
 * `risky list`, `risky forget` and `risky audit`: the risky destinations the store remembers (rules/risky-memory.ts).
 * Every command on the store judges by them next to the built-in list; forgetting one is the only
 * way to shorten that list, so it asks for --yes like any write that can make detections hideable.
 */
export function register(program: Command): void {
  const risky = program.command('risky').description('The risky destinations the store remembers from configs (never suppressed)');

  withStoreOptions(risky.command('list').description('List the built-in risky destinations and those the store remembers')).action(async (opts: StoreOptions) => {
    // withPorts has remembered the config's entries first, so they are listed too
    await withPorts(opts, ({ config, json }) => {
      const remembered = config.risky_destinations ?? [];
      if (json) return printJson({ built_in: BUILTIN_RISKY_DESTINATIONS, remembered });
      out(`built in (${BUILTIN_RISKY_DESTINATIONS.length}): ${BUILTIN_RISKY_DESTINATIONS.join(', ')}\n`);
      out(`remembered by the store (${remembered.length}): ${remembered.length ? remembered.join(', ') : 'none'}\n`);
    });
  });

  withStoreOptions(risky.command('forget <entry>').description('Stop judging by a remembered risky destination (a config that names it adds it again)'))
    .option('--yes', 'confirm the write')
    .option('--actor <who>', 'who is making the change, for the risky audit (default cli:<os user>)')
    .action(async (entry: string, opts: StoreOptions & { yes?: boolean; actor?: string }) => {
      // a store location that cannot be one is the first thing said, as by every command (common.ts)
      storeLocation(opts.db);
      // the list is the store's, not a tenant's: say so before and after (the risky audit records it)
      if (!opts.yes) throw new UserError(`forgetting ${entry} lets rules of every tenant in this store hide calls to it again: re-run with --yes to confirm (nothing was changed)`);
      await withPorts(opts, async ({ ports, json }) => {
        try {
          await forgetRiskyDestination(ports, entry, opts.actor ?? defaultActor());
        } catch (err) {
          if (err instanceof ForgetRiskyError) throw new UserError(err.message, err.reason === 'built-in' ? EXIT.REFUSED : EXIT.NOT_FOUND);
          if (err instanceof RuleError) throw new UserError(`--actor: ${err.message}`);
          throw err;
        }
        const key = riskyEntryKey(entry);
        // a config that names it makes the next command run with it remember it again
        const configNames = ((await loadCliConfig(opts)).risky_destinations ?? []).some((e) => riskyEntryKey(e) === key);
        if (json) return printJson({ forgotten: key, named_by_config: configNames });
        out(`forgot ${key} (for every tenant in this store)\n`);
        // fail closed: a flag may rest on more than the one contradiction it records, so no list change lifts it
        process.stderr.write(
          'egress-triage: binaries it showed to be suspected impostors stay flagged, and detections it made new stay new; to judge without them, ingest the telemetry again into a new store\n',
        );
        if (configNames) process.stderr.write(`egress-triage: the config this command read names ${key}: the next command run with it remembers it again\n`);
      }, 'read', { unparsedRiskyListOk: true });
    });

  withStoreOptions(risky.command('audit').description('Who changed the remembered risky destinations, and when (newest first; the list is the store\'s, for every tenant)')).action(
    async (opts: StoreOptions) => {
      await withPorts(opts, async ({ ports, json }) => {
        const rows = await ports.rulesPort(riskyDestinations()).riskyAudit();
        if (json) return printJson(rows);
        if (rows.length === 0) return out('the risky list has not changed\n');
        out(formatTable(['at', 'action', 'entry', 'actor'], rows.map((r) => [r.at, r.action, r.entry, r.actor])) + '\n');
      }, 'read', { unparsedRiskyListOk: true });
    },
  );
}
