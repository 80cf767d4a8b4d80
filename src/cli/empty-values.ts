import type { Command } from 'commander';
import { UserError } from './errors.js';

/**
 * Options that say why their own empty value is wrong, in the action (a store, a config, a grants
 * file, a cursor), and arguments that do: ingest's source paths, and a gateway's upstream command
 * line, which is the upstream's own and may hold an empty argument.
 */
const OWN_EMPTY_CHECK = new Set(['db', 'config', 'grants', 'cursor']);
const OWN_EMPTY_ARGUMENT: Record<string, string> = { ingest: 'files', gateway: 'command' };

/**
 * An empty value is never "not given" (README): every option and argument given as "" (or blanks)
 * is a usage error naming it, before the command does anything: an unset shell variable
 * (`--status "$S"`) would otherwise widen a filter to everything without a word. Without this `rules get ""` was
 * not found, `generate --out ""` an I/O error, and `ingest --allowed-endpoints ""` allowed nothing
 * in silence. Runs as a preAction hook (main.ts) on the command about to run.
 */
export function refuseEmptyValues(cmd: Command): void {
  for (const o of cmd.options) {
    const key = o.attributeName();
    const source = cmd.getOptionValueSource(key);
    // values given on the command line only: a default is not the user's
    if (OWN_EMPTY_CHECK.has(key) || source !== 'cli') continue;
    const v: unknown = cmd.getOptionValue(key);
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x === 'string' && x.trim() === '') throw new UserError(`${o.long ?? o.flags}: is empty; give a value or leave the option out`);
    }
  }
  cmd.registeredArguments.forEach((a, i) => {
    if (OWN_EMPTY_ARGUMENT[cmd.name()] === a.name()) return;
    const v: unknown = cmd.processedArgs[i];
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x === 'string' && x.trim() === '') throw new UserError(`<${a.name()}>: is empty; give a value`);
    }
  });
}
