import { Command } from 'commander';
import { out } from '../output.js';
import { withPorts, withStoreOptions, printJson, formatTable, type StoreOptions } from '../common.js';

export function register(program: Command): void {
  const cmd = program.command('stats').description('Summarise what the store holds for a tenant');
  withStoreOptions(cmd).action(async (opts: StoreOptions) => {
    await withPorts(opts, async ({ ports, tenant, json, location }) => {
      const dbPath = location.display;
      const s = await ports.detections.stats(tenant);
      if (json) return printJson({ db: dbPath, ...s });
      out(
        `tenant ${s.tenant} (${dbPath})\n` +
          `  jobs ${s.jobs} (${s.learningJobs} still learning), runs ${s.runs}, distinct calls ${s.observations}, ` +
          `baseline endpoints ${s.baselineEndpoints}, active rules ${s.rules}\n\n`,
      );
      out(formatTable(['detection type', 'status', 'count'], s.detections.map((d) => [d.type, d.status, d.count])) + '\n');
    }, 'read', { aboutTenant: true });
  });
}
