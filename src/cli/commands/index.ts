import type { Command } from 'commander';

/** Each command module registers its subcommands on the root program. */
export type CommandRegistrar = (program: Command) => void;

interface CommandModule {
  /** the top-level commands the module registers (test/cli/command-index.test.ts holds them to it) */
  names: readonly string[];
  load: () => Promise<{ register: CommandRegistrar }>;
}

// Order here is the order `--help` lists them.
export const COMMAND_MODULES: readonly CommandModule[] = [
  { names: ['ingest'], load: () => import('./ingest.js') },
  { names: ['detections'], load: () => import('./detections.js') },
  { names: ['baseline'], load: () => import('./baseline.js') },
  { names: ['stats'], load: () => import('./stats.js') },
  { names: ['demo'], load: () => import('./demo.js') },
  // ADD COMMAND MODULES BELOW (one line each)
  { names: ['analyze'], load: () => import('./analyze.js') },
  { names: ['rules'], load: () => import('./rules.js') },
  { names: ['risky'], load: () => import('./risky.js') },
  { names: ['generate'], load: () => import('./generate.js') },
  { names: ['mcp', 'serve'], load: () => import('./mcp.js') },
  { names: ['policy', 'approvals', 'audit'], load: () => import('./policy.js') },
  { names: ['gateway'], load: () => import('./gateway.js') },
  { names: ['db'], load: () => import('./db.js') },
  { names: ['dashboard'], load: () => import('./dashboard.js') },
];

/**
 * The registrars a command line needs. Loading every command module costs most of a second of CPU
 * (the MCP SDK, both database drivers, Redis), paid by every run of the CLI; a command needs only
 * its own module. The root program takes no option with a value, so the first word that is not an
 * option names the command, and `help rules` needs rules' module as `rules --help` does. The version
 * alone needs none. Anything else (no command, `help` alone, a mistyped name) loads them all, so the
 * root help and commander's "unknown command" see the whole list.
 */
export async function loadCommandRegistrars(args: readonly string[]): Promise<CommandRegistrar[]> {
  if (args.length === 1 && (args[0] === '-V' || args[0] === '--version')) return [];
  const words = args.filter((a) => !a.startsWith('-'));
  const named = words[0] === 'help' ? words[1] : words[0];
  const own = COMMAND_MODULES.find((m) => named !== undefined && m.names.includes(named));
  const mods = await Promise.all((own ? [own] : COMMAND_MODULES).map((m) => m.load()));
  return mods.map((m) => m.register);
}
