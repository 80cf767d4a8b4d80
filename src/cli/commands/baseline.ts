import { Command } from 'commander';
import { withStore, withStoreOptions, printJson, formatTable, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';

interface ShowOpts extends StoreOptions {
  owner: string;
  repo: string;
  workflow?: string;
  job?: string;
  all?: boolean;
}

export function register(program: Command): void {
  const base = program.command('baseline').description('Inspect learned per-job baselines');
  const show = base
    .command('show')
    .description('Show the baseline of each job of a repository')
    .requiredOption('--owner <owner>', 'GitHub org / owner')
    .requiredOption('--repo <repo>', 'repository name')
    .option('--workflow <path>', 'only this workflow, e.g. .github/workflows/ci.yml')
    .option('--job <job>', 'only this job')
    .option('--all', 'also list endpoints seen but not yet in the baseline');
  withStoreOptions(show).action(async (opts: ShowOpts) => {
    await withStore(opts, async ({ store, tenant, json }) => {
      const views = await store.detections.baselines(tenant, { owner: opts.owner, repo: opts.repo, workflow: opts.workflow, job: opts.job });
      if (views.length === 0) throw new UserError(`no jobs found for ${opts.owner}/${opts.repo} in tenant "${tenant}"`, 1);
      if (json) return printJson({ tenant, jobs: views });
      for (const v of views) {
        const state = v.learning ? `learning (${v.completedRuns} completed runs)` : `${v.completedRuns} completed runs`;
        process.stdout.write(`${v.owner}/${v.repo}  ${v.workflow}  job ${v.job}: ${state}\n`);
        const eps = opts.all ? v.endpoints : v.endpoints.filter((e) => e.inBaseline);
        const rows = eps.map((e) => [e.endpoint, e.runsSeen, e.inBaseline ? e.source : 'pending', e.lastSeen.slice(0, 10)]);
        process.stdout.write(formatTable(['endpoint', 'runs', 'state', 'last seen'], rows).replace(/^/gm, '  ') + '\n\n');
      }
    });
  });
}
