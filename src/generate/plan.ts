/**
 * Tenant planning: which orgs, repos, workflows and jobs exist, what each job normally talks to, and
 * which anomaly scenarios each job carries from which run on. Size is O(jobs), never O(events).
 */
import { Rng, derive, hashString } from './prng.js';
import type { ChainKey } from './catalog.js';
import {
  ANOMALY_RULES,
  IMPOSTOR_PER_RUN,
  POSTINSTALL_PER_RUN,
  SCENARIO,
  type AnomalyName,
} from './scenarios.js';

export type Stack = 'node' | 'python' | 'go' | 'java' | 'dotnet';

export interface GenerateOptions {
  /** Runs per job (one run of every workflow per round). Default 20. */
  runs?: number;
  /** Seed: any integer or string. Default 1. */
  seed?: number | string;
  /** Target total number of events: scales the number of jobs (and, for tiny tenants, events per run). */
  events?: number;
  /** Adds `"tenant"` to every event when set. */
  tenant?: string;
  /** Runs a job needs before anomalies appear (0-based run index >= learningRuns). Default 5. */
  learningRuns?: number;
}

export interface NormalEndpoint {
  domain: string;
  port: number;
  chain: ChainKey;
  weight: number;
  /** Fractions of the job's duration during which this endpoint is called. */
  from: number;
  to: number;
}

export interface ScenarioAssignment {
  name: AnomalyName;
  /** First run index (0-based) at which it may fire; always >= learningRuns. */
  startRun: number;
  /** Probability of firing in each run after the first. */
  perRun: number;
}

export interface PlannedJob {
  index: number;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  stack: Stack;
  /** Baseline endpoints, most essential first; trimmed for tiny per-run budgets. */
  endpoints: NormalEndpoint[];
  scenarios: ScenarioAssignment[];
}

export interface PlannedWorkflow {
  owner: string;
  repo: string;
  workflow: string;
  jobs: PlannedJob[];
}

export interface PlannedRepo {
  owner: string;
  name: string;
  stack: Stack;
  docker: boolean;
}

export interface TenantPlan {
  seed: number | string;
  seedKey: number;
  tenant: string | undefined;
  runs: number;
  learningRuns: number;
  orgs: string[];
  repos: PlannedRepo[];
  workflows: PlannedWorkflow[];
  jobs: PlannedJob[];
  /** Mean events per job run. */
  eventsPerJobRun: number;
  startMs: number;
  endMs: number;
  estimatedEvents: number;
}

const EXTRA_ORGS = [
  'hooli', 'vandelay-industries', 'stark-industries', 'wayne-enterprises', 'cyberdyne', 'tyrell-corp',
  'soylent', 'wonka-labs', 'massive-dynamic', 'oscorp', 'aperture-science', 'black-mesa', 'nakatomi',
  'monarch-solutions', 'dunder-mifflin', 'pied-piper', 'prestige-worldwide', 'virtucon', 'gekko-and-co',
  'sterling-cooper', 'bluth-company', 'los-pollos', 'rekall', 'weyland-yutani', 'ingen', 'dharma-initiative',
];

const REPO_POOL: ReadonlyArray<readonly [string, Stack]> = [
  ['web-app', 'node'], ['frontend', 'node'], ['dashboard', 'node'], ['admin-portal', 'node'], ['sdk-js', 'node'],
  ['docs-site', 'node'], ['storefront', 'node'], ['design-system', 'node'], ['mobile-app', 'node'],
  ['graphql-gateway', 'node'], ['data-pipeline', 'python'], ['ml-models', 'python'], ['etl-jobs', 'python'],
  ['sdk-python', 'python'], ['analytics', 'python'], ['scraper', 'python'], ['api-gateway', 'go'], ['cli', 'go'],
  ['k8s-operator', 'go'], ['ingest-service', 'go'], ['edge-proxy', 'go'], ['terraform-provider', 'go'],
  ['payments-service', 'java'], ['billing', 'java'], ['ledger', 'java'], ['search-service', 'java'],
  ['orders-api', 'java'], ['identity-server', 'dotnet'], ['reporting', 'dotnet'], ['erp-connector', 'dotnet'],
  ['desktop-client', 'dotnet'], ['notification-service', 'node'], ['infra-tools', 'go'], ['risk-engine', 'python'],
];

const STACKS: readonly Stack[] = ['node', 'python', 'go', 'java', 'dotnet'];
const CI = SCENARIO.workflows[0];
const RELEASE = SCENARIO.workflows[1];
const NIGHTLY = SCENARIO.workflows[2];

export function seedKeyOf(seed: number | string): number {
  return hashString(`egress-triage-seed:${String(seed)}`);
}

function orgName(i: number): string {
  if (i < SCENARIO.orgs.length) return SCENARIO.orgs[i]!;
  const j = i - SCENARIO.orgs.length;
  const base = EXTRA_ORGS[j % EXTRA_ORGS.length]!;
  const round = Math.floor(j / EXTRA_ORGS.length);
  return round === 0 ? base : `${base}-${round + 1}`;
}

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function ep(domain: string, chain: ChainKey, weight: number, from: number, to: number, port = 443): NormalEndpoint {
  return { domain, port, chain, weight, from, to };
}

/** The stable, learnable endpoint set of one job. */
function normalEndpoints(repo: PlannedRepo, workflow: string, job: string, rng: Rng): NormalEndpoint[] {
  const out: NormalEndpoint[] = [];
  // Essentials first: checkout and the package registry.
  out.push(ep('github.com', 'gitCheckout', 3, 0.05, 0.15));
  const install = (): void => {
    switch (repo.stack) {
      case 'node':
        out.push(ep('registry.npmjs.org', 'npm', 12, 0.15, 0.45));
        break;
      case 'python':
        out.push(ep('files.pythonhosted.org', 'pip', 8, 0.15, 0.45), ep('pypi.org', 'pip', 4, 0.15, 0.4));
        break;
      case 'go':
        out.push(ep('proxy.golang.org', 'go', 8, 0.15, 0.45), ep('sum.golang.org', 'go', 2, 0.15, 0.45));
        break;
      case 'java':
        if (hashString(repo.name) % 2 === 0) {
          out.push(ep('repo.maven.apache.org', 'mavenJava', 10, 0.15, 0.6));
        } else {
          out.push(
            ep('repo.maven.apache.org', 'gradleJava', 7, 0.15, 0.6),
            ep('services.gradle.org', 'gradleJava', 1, 0.12, 0.18),
            ep('plugins.gradle.org', 'gradleJava', 2, 0.15, 0.4),
          );
        }
        break;
      case 'dotnet':
        out.push(ep('api.nuget.org', 'dotnet', 6, 0.15, 0.45), ep('globalcdn.nuget.org', 'dotnet', 4, 0.15, 0.5));
        break;
    }
  };
  install();
  // Runner plumbing.
  out.push(
    ep('api.github.com', 'runnerWorker', 2, 0, 0.05),
    ep('codeload.github.com', 'runnerWorker', 1, 0, 0.05),
    ep('results-receiver.actions.githubusercontent.com', 'runnerWorker', 2, 0.9, 1),
    ep(`productionresultssa${rng.int(0, 19)}.blob.core.windows.net`, 'runnerWorker', 1, 0.92, 1),
    ep('api.github.com', 'actionsNode', 1, 0.02, 0.1),
  );
  if (repo.stack === 'go') out.push(ep('storage.googleapis.com', 'go', 2, 0.2, 0.5));
  if (repo.stack === 'node' && (job === 'build' || job === 'lint')) out.push(ep('objects.githubusercontent.com', 'npmNode', 1, 0.3, 0.5));
  if (repo.stack === 'python' && job === 'test') out.push(ep('github.com', 'gitShell', 1, 0.4, 0.5));
  switch (job) {
    case 'test':
      if (rng.chance(0.6)) out.push(ep('cli.codecov.io', 'curl', 1, 0.85, 0.9), ep('ingest.codecov.io', 'curl', 1, 0.9, 0.95));
      break;
    case 'build':
      if (repo.docker) {
        out.push(
          ep('registry-1.docker.io', 'dockerd', 3, 0.5, 0.8),
          ep('auth.docker.io', 'dockerd', 1, 0.5, 0.8),
          ep('production.cloudflare.docker.com', 'dockerd', 5, 0.5, 0.85),
        );
      }
      if (workflow === RELEASE) out.push(ep('objects.githubusercontent.com', 'actionsNode', 1, 0.85, 0.95));
      break;
    case 'e2e':
      if (repo.stack === 'node') {
        out.push(ep('cdn.playwright.dev', 'npxNode', 2, 0.45, 0.55), ep('playwright.download.prss.microsoft.com', 'npxNode', 2, 0.45, 0.55));
      } else {
        out.push(ep('registry-1.docker.io', 'dockerd', 2, 0.4, 0.6), ep('production.cloudflare.docker.com', 'dockerd', 4, 0.4, 0.6));
      }
      break;
    case 'deploy':
      if (repo.docker) out.push(ep('ghcr.io', 'dockerd', 4, 0.5, 0.8), ep('pkg-containers.githubusercontent.com', 'containerd', 1, 0.5, 0.7));
      out.push(ep('api.github.com', 'gh', 2, 0.8, 0.95), ep('uploads.github.com', 'gh', 1, 0.85, 0.95));
      if (rng.chance(0.5)) out.push(ep('sts.us-east-1.amazonaws.com', 'aws', 1, 0.6, 0.65), ep(`${repo.owner}-artifacts.s3.us-east-1.amazonaws.com`, 'aws', 3, 0.65, 0.8));
      break;
    default:
      break;
  }
  return out;
}

interface JobSpec {
  workflow: string;
  job: string;
}

function workflowsFor(repo: PlannedRepo, rng: Rng): JobSpec[] {
  const specs: JobSpec[] = [];
  if (rng.chance(0.8)) specs.push({ workflow: CI, job: 'lint' });
  specs.push({ workflow: CI, job: 'build' }, { workflow: CI, job: 'test' });
  if ((repo.stack === 'node' || repo.stack === 'java') && rng.chance(0.45)) specs.push({ workflow: CI, job: 'e2e' });
  if (rng.chance(0.55)) specs.push({ workflow: RELEASE, job: 'build' }, { workflow: RELEASE, job: 'deploy' });
  if (rng.chance(0.35)) specs.push({ workflow: NIGHTLY, job: 'test' }, { workflow: NIGHTLY, job: 'e2e' });
  return specs;
}

function clampInt(value: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.round(value)));
}

/** Builds the whole tenant plan. Pure function of the options. */
export function planTenant(opts: GenerateOptions = {}): TenantPlan {
  const runs = opts.runs ?? SCENARIO.defaults.runs;
  const learningRuns = opts.learningRuns ?? SCENARIO.defaults.learningRuns;
  const seed = opts.seed ?? SCENARIO.defaults.seed;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError('runs must be a positive integer');
  if (!Number.isInteger(learningRuns) || learningRuns < 0) throw new RangeError('learningRuns must be a non-negative integer');
  if (opts.events !== undefined && (!Number.isFinite(opts.events) || opts.events < 1)) throw new RangeError('events must be positive');
  const seedKey = seedKeyOf(seed);
  const rng = new Rng(derive(seedKey, 1));

  const perRunDefault = SCENARIO.defaults.eventsPerJobRun;
  const jobTarget =
    opts.events === undefined ? SCENARIO.defaults.jobs : Math.max(1, Math.round(opts.events / (runs * perRunDefault)));
  const orgCount = jobTarget <= 80 ? 4 : clampInt(Math.sqrt(jobTarget) / 3, 4, 500);
  const orgs = Array.from({ length: orgCount }, (_, i) => orgName(i));
  const orgPerm = orgs.map((_, i) => shuffled(REPO_POOL.map((_, k) => k), new Rng(derive(seedKey, 2, i))));
  const orgRepoCount = orgs.map(() => 0);

  const repos: PlannedRepo[] = [];
  const workflows: PlannedWorkflow[] = [];
  const jobs: PlannedJob[] = [];
  for (let r = 0; jobs.length < jobTarget; r++) {
    const o = r % orgCount;
    const owner = orgs[o]!;
    const c = orgRepoCount[o]!++;
    const perm = orgPerm[o]!;
    if (r < STACKS.length && c < REPO_POOL.length) {
      // The first repos cover every stack, so even small tenants show every registry.
      const want = STACKS[r]!;
      const at = perm.findIndex((k, pos) => pos >= c && REPO_POOL[k]![1] === want);
      if (at >= 0) [perm[c], perm[at]] = [perm[at]!, perm[c]!];
    }
    const [base, stack] = REPO_POOL[perm[c % REPO_POOL.length]!]!;
    const suffix = c >= REPO_POOL.length ? `-${Math.floor(c / REPO_POOL.length) + 1}` : '';
    const repo: PlannedRepo = { owner, name: base + suffix, stack, docker: rng.chance(stack === 'go' || stack === 'java' ? 0.7 : 0.4) };
    repos.push(repo);
    const byWorkflow = new Map<string, PlannedWorkflow>();
    for (const spec of workflowsFor(repo, rng)) {
      if (jobs.length >= jobTarget && byWorkflow.size > 0) break; // tiny tenants: stop at the target
      let wf = byWorkflow.get(spec.workflow);
      if (!wf) {
        wf = { owner, repo: repo.name, workflow: spec.workflow, jobs: [] };
        byWorkflow.set(spec.workflow, wf);
        workflows.push(wf);
      }
      const jobRng = new Rng(derive(seedKey, 3, jobs.length));
      const job: PlannedJob = {
        index: jobs.length,
        owner,
        repo: repo.name,
        workflow: spec.workflow,
        job: spec.job,
        stack,
        endpoints: normalEndpoints(repo, spec.workflow, spec.job, jobRng),
        scenarios: [],
      };
      wf.jobs.push(job);
      jobs.push(job);
    }
  }

  const eventsPerJobRun = opts.events === undefined ? perRunDefault : opts.events / (jobs.length * runs);
  assignScenarios(jobs, repos, runs, learningRuns, seedKey);

  const endMs = Date.parse(SCENARIO.endDate);
  const startMs = endMs - SCENARIO.days * 86_400_000;
  return {
    seed,
    seedKey,
    tenant: opts.tenant,
    runs,
    learningRuns,
    orgs,
    repos,
    workflows,
    jobs,
    eventsPerJobRun,
    startMs,
    endMs,
    estimatedEvents: Math.round(jobs.length * runs * eventsPerJobRun),
  };
}

function assignScenarios(jobs: PlannedJob[], repos: PlannedRepo[], runs: number, learningRuns: number, seedKey: number): void {
  const post = runs - learningRuns;
  if (post <= 0) return; // everything is still learning: no anomalies at all
  const spread = Math.max(1, Math.ceil(post * 0.4));
  const J = jobs.length;
  const names = Object.keys(ANOMALY_RULES) as (keyof typeof ANOMALY_RULES)[];
  names.forEach((name, k) => {
    const rule = ANOMALY_RULES[name];
    const prefer = rule.preferJobs;
    // Anchor: guarantees every scenario exists at least once, spread across the tenant.
    let anchor = Math.floor(((k + 0.5) * J) / names.length) % J;
    if (prefer) {
      for (let step = 0; step < J; step++) {
        const cand = (anchor + step) % J;
        if (prefer.includes(jobs[cand]!.job)) {
          anchor = cand;
          break;
        }
      }
    }
    for (const job of jobs) {
      const rng = new Rng(derive(seedKey, 4, job.index, k));
      const share = !prefer || prefer.includes(job.job) ? rule.share : rule.share / 3;
      if (job.index === anchor) {
        // Guaranteed first firing; anchors are staggered so tiny tenants do not pile them into one run.
        job.scenarios.push({ name, startRun: learningRuns + (k % Math.min(post, 4)), perRun: rule.perRun });
      } else if (rng.chance(share)) {
        job.scenarios.push({ name, startRun: learningRuns + rng.int(0, spread - 1), perRun: rule.perRun });
      }
    }
  });

  // Repo-level scenarios: the impostor in one or two repos, the malicious postinstall in one.
  const rng = new Rng(derive(seedKey, 5));
  const nodeRepos = repos.filter((r) => r.stack === 'node');
  const pool = nodeRepos.length > 0 ? nodeRepos : repos;
  const impostorCount = repos.length >= 6 && pool.length >= 3 ? SCENARIO.impostor.maxRepos : 1;
  const impostorRepos = rng.sample(pool, impostorCount);
  const rest = pool.filter((r) => !impostorRepos.includes(r));
  const postinstallRepo = rest.length > 0 ? rng.pick(rest) : pool[0]!;
  const npmJobs = new Set(['build', 'test', 'e2e', 'lint']);
  for (const job of jobs) {
    const inRepo = (r: PlannedRepo): boolean => r.owner === job.owner && r.name === job.repo;
    if (impostorRepos.some(inRepo) && npmJobs.has(job.job)) {
      job.scenarios.push({ name: 'impostor', startRun: learningRuns + rng.int(0, Math.min(2, post - 1)), perRun: IMPOSTOR_PER_RUN });
    }
    if (inRepo(postinstallRepo) && npmJobs.has(job.job)) {
      job.scenarios.push({ name: 'npm-postinstall', startRun: learningRuns + rng.int(0, Math.min(3, post - 1)), perRun: POSTINSTALL_PER_RUN });
    }
  }
}
