import { Command } from 'commander';
import { withPorts, withStoreOptions, printJson, formatTable, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { BaselineError } from '../../storage/baseline-port.js';
import { riskyDestinations } from '../../analysis/risky-destinations.js';

interface ShowOpts extends StoreOptions {
  owner: string;
  repo: string;
  workflow?: string;
  job?: string;
  all?: boolean;
}

interface ExpectOpts extends StoreOptions {
  owner: string;
  repo: string;
  workflow?: string;
  job?: string;
  endpoint: string;
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
    await withPorts(opts, async ({ ports, tenant, json }) => {
      const views = await ports.detections.baselines(tenant, { owner: opts.owner, repo: opts.repo, workflow: opts.workflow, job: opts.job });
      if (views.length === 0) throw new UserError(`no jobs found for ${opts.owner}/${opts.repo} in tenant "${tenant}"`, EXIT.NOT_FOUND);
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
  const expect = endpointCommand(
    base,
    'expect',
    'Mark an endpoint as expected for a repository\'s jobs: it joins their baselines at once (risky destinations are refused)',
  );
  withStoreOptions(expect).action(async (opts: ExpectOpts) => {
    checkEndpoint(opts.endpoint);
    await withPorts(opts, async ({ ports, tenant, json, config }) => {
      let r;
      try {
        r = await ports.baselines.markExpected(tenant, opts, opts.endpoint, riskyOf(config.risky_destinations));
      } catch (err) {
        if (err instanceof BaselineError) throw new UserError(`--endpoint: ${err.message}`, EXIT.REFUSED);
        throw err;
      }
      if (r.jobs.length === 0) throw new UserError(`no jobs found for ${where(opts)} in tenant "${tenant}"`, EXIT.NOT_FOUND);
      if (json) return printJson({ tenant, endpoint: opts.endpoint, jobs: r.jobs });
      process.stdout.write(`${opts.endpoint} is now expected in ${r.jobs.length} job(s) of ${opts.owner}/${opts.repo}\n`);
    });
  });
  const unexpect = endpointCommand(
    base,
    'unexpect',
    'Undo `baseline expect`: the endpoint leaves the baselines it was expected in and is flagged again until re-learned',
  );
  withStoreOptions(unexpect).action(async (opts: ExpectOpts) => {
    checkEndpoint(opts.endpoint);
    await withPorts(opts, async ({ ports, tenant, json }) => {
      const r = await ports.baselines.unmarkExpected(tenant, opts, opts.endpoint);
      if (r.jobs.length === 0) throw new UserError(`${opts.endpoint} is not expected in any job of ${where(opts)} in tenant "${tenant}"`, EXIT.NOT_FOUND);
      if (json) return printJson({ tenant, endpoint: opts.endpoint, jobs: r.jobs });
      process.stdout.write(`${opts.endpoint} is no longer expected in ${r.jobs.length} job(s) of ${opts.owner}/${opts.repo}\n`);
    });
  });
}

/** expect and unexpect name the same target: one endpoint in the jobs of one repository. */
function endpointCommand(base: Command, name: string, description: string): Command {
  return base
    .command(name)
    .description(description)
    .requiredOption('--owner <owner>', 'GitHub org / owner')
    .requiredOption('--repo <repo>', 'repository name')
    .requiredOption('--endpoint <host:port>', 'endpoint, e.g. api.example.com:443 (port required)')
    .option('--workflow <path>', 'only this workflow')
    .option('--job <job>', 'only this job');
}

function checkEndpoint(endpoint: string): void {
  if (!/^[^\s:]+:\d{1,5}$/.test(endpoint) && !/^\[[^\]]+\]:\d{1,5}$/.test(endpoint)) {
    throw new UserError(`--endpoint: expected host:port (e.g. api.example.com:443), got "${endpoint}"`);
  }
}

function where(o: ExpectOpts): string {
  return `${o.owner}/${o.repo}${o.workflow ? ' ' + o.workflow : ''}${o.job ? ' job ' + o.job : ''}`;
}

function riskyOf(extra: string[] | undefined) {
  try {
    return riskyDestinations(extra);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}
