import type { Command } from 'commander';

/** Each command module registers its subcommands on the root program. */
export type CommandRegistrar = (program: Command) => void;

// Order here is the order `--help` lists them.
export async function loadCommandRegistrars(): Promise<CommandRegistrar[]> {
  const mods = await Promise.all([
    import('./ingest.js'),
    import('./detections.js'),
    import('./baseline.js'),
    import('./stats.js'),
    import('./demo.js'),
    // ADD COMMAND MODULES BELOW (one line each)
    import('./analyze.js'),
    import('./rules.js'),
    import('./generate.js'),
    import('./mcp.js'),
    import('./policy.js'),
    import('./gateway.js'),
    import('./db.js'),
    import('./dashboard.js'),
  ]);
  return mods.map((m: { register: CommandRegistrar }) => m.register);
}
