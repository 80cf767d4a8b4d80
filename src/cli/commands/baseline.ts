import { Command } from 'commander';
import { revealInvisible } from '../../domain/reveal-invisible.js';
import { withPorts, withStoreOptions, printJson, formatTable, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { riskyDestinations } from '../../analysis/risky-destinations.js';
import { BaselineEditError, checkExpectEndpoint, describeTarget, expectEndpoint, unexpectEndpoint } from '../../detection/baseline-edits.js';
import { filterFromOptions } from '../filter-options.js';

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
    // before the store is opened: a bad filter is a usage error whatever the store holds
    const scope = jobScope(opts);
    await withPorts(opts, async ({ ports, tenant, json }) => {
      const views = await ports.detections.baselines(tenant, scope);
      if (views.length === 0) throw new UserError(`no jobs found for ${describeTarget(scope)} in tenant "${tenant}"`, EXIT.NOT_FOUND);
      if (json) return printJson({ tenant, jobs: views });
      for (const v of views) {
        const state = v.learning ? `learning (${v.completedRuns} completed runs)` : `${v.completedRuns} completed runs`;
        // job names are the telemetry's text: written by name, their control characters cannot forge lines
        process.stdout.write(revealInvisible(`${v.owner}/${v.repo}  ${v.workflow}  job ${v.job}: ${state}`) + '\n');
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
    opts.endpoint = checkEndpoint(opts.endpoint);
    const t = target(opts);
    await withPorts(opts, async ({ ports, tenant, json, config }) => {
      const r = await edit(() => expectEndpoint(ports.baselines, tenant, t, riskyOf(config.risky_destinations)));
      if (json) return printJson({ tenant, endpoint: opts.endpoint, jobs: r.jobs, already_learned: r.learned });
      process.stdout.write(`${opts.endpoint} is now expected in ${r.jobs.length} job(s) of ${t.owner}/${t.repo}\n`);
      if (r.learned.length) {
        process.stdout.write(`${r.learned.length} other job(s) had already learned it: left as learned, so unexpect will not take it from them\n`);
      }
    });
  });
  const unexpect = endpointCommand(
    base,
    'unexpect',
    'Undo `baseline expect`: the endpoint leaves the baselines it was expected in and is flagged again until re-learned',
  );
  withStoreOptions(unexpect).action(async (opts: ExpectOpts) => {
    opts.endpoint = checkEndpoint(opts.endpoint);
    const t = target(opts);
    await withPorts(opts, async ({ ports, tenant, json }) => {
      const r = await edit(() => unexpectEndpoint(ports.baselines, tenant, t));
      if (json) return printJson({ tenant, endpoint: opts.endpoint, jobs: r.jobs });
      process.stdout.write(`${opts.endpoint} is no longer expected in ${r.jobs.length} job(s) of ${t.owner}/${t.repo}\n`);
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

/**
 * Checked before the store is opened (a malformed endpoint is a usage error whatever the store
 * holds); returns the canonical form, which is what is stored and reported.
 */
function checkEndpoint(endpoint: string): string {
  return edit(() => checkExpectEndpoint(endpoint));
}

function target(o: ExpectOpts) {
  return { ...jobScope(o), endpoint: o.endpoint };
}

/**
 * The jobs --owner, --repo, --workflow and --job name, read as every filter reads them (`--repo
 * owner/name` included; domain/filter.ts): `--owner initech --repo initech/api-gateway` looked for a
 * repository named "initech/api-gateway".
 */
function jobScope(o: { owner: string; repo: string; workflow?: string; job?: string }): { owner: string; repo: string; workflow?: string; job?: string } {
  const f = filterFromOptions({ owner: o.owner, repo: o.repo, workflow: o.workflow, job: o.job }, { status: 'all' });
  return { owner: f.owner!, repo: f.repo!, ...(f.workflow !== undefined ? { workflow: f.workflow } : {}), ...(f.job !== undefined ? { job: f.job } : {}) };
}

const EXIT_OF = { invalid_input: EXIT.USAGE, refused_risky: EXIT.REFUSED, not_found: EXIT.NOT_FOUND } as const;

/** The service's refusals as the CLI reports them: the option at fault first, the documented exit code. */
function edit<T>(fn: () => T): T {
  const fail = (err: unknown): never => {
    if (err instanceof BaselineEditError) throw new UserError(err.field ? `--endpoint: ${err.message}` : err.message, EXIT_OF[err.code]);
    throw err;
  };
  try {
    const r = fn();
    return (r instanceof Promise ? r.catch(fail) : r) as T;
  } catch (err) {
    return fail(err);
  }
}

function riskyOf(extra: string[] | undefined) {
  try {
    return riskyDestinations(extra);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}
