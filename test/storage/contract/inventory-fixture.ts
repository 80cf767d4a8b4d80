import { splitEndpoint } from '../../../src/domain/endpoint.js';
import { processVariantKey, type IngestPort, type JobKey } from '../../../src/storage/ingest-port.js';
import type { BaselineEntry } from '../../../src/storage/store.js';
import type { DetectionStatus } from '../../../src/domain/types.js';
import { HOLDER, proc } from './fixture.js';

/**
 * The stored world of the inventory and baseline-edit contract suites, written through the ingest
 * port so every backend holds the same facts. Every observation has its own minute (t(i)), except
 * one call that was both allowed and blocked in one run at one time (two observations, one time).
 * The expected answers in the suites are worked out by hand from this description.
 */

export const T = Date.UTC(2026, 10, 1);
export const t = (i: number) => T + i * 60_000;
export const at = (i: number) => new Date(t(i)).toISOString();

const CURL = proc('curl', '/usr/bin/curl', 'sha-curl');
const PYTHON = proc('python3', '/usr/bin/python3', 'sha-py');
const NODE = proc('node', '/usr/bin/node', 'sha-node');
const TAILSCALED = proc('tailscaled', '/usr/sbin/tailscaled', 'sha-ts');

export const JOB: Record<'build' | 'test' | 'web' | 'tool' | 'idle', JobKey> = {
  build: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build' },
  test: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'test' },
  // the same org as "acme", spelled as GitHub reported it for this repository
  web: { owner: 'Acme', repo: 'Web', workflow: '.github/workflows/deploy.yml', job: 'deploy' },
  tool: { owner: 'other-org', repo: 'tool', workflow: '.github/workflows/ci.yml', job: 'lint' },
  // a job that has no run (its org has no last run)
  idle: { owner: 'quiet-org', repo: 'idle', workflow: '.github/workflows/ci.yml', job: 'noop' },
};
type JobName = keyof typeof JOB;

/** legs of job runs: run 102 of build is a matrix job with two legs, each with its own GitHub job id */
export const RUNS = [
  { key: '101', job: 'build', runId: '101', ghJobId: 'gh-101', completed: true, learning: true },
  { key: '102a', job: 'build', runId: '102', ghJobId: 'gh-102a', completed: false, learning: true },
  { key: '102b', job: 'build', runId: '102', ghJobId: 'gh-102b', completed: false, learning: true },
  { key: '201', job: 'web', runId: '201', ghJobId: 'gh-201', completed: false, learning: false },
  { key: '301', job: 'test', runId: '301', ghJobId: 'gh-301', completed: false, learning: false },
  { key: '401', job: 'tool', runId: '401', ghJobId: 'gh-401', completed: false, learning: false },
] as const satisfies readonly { key: string; job: JobName; runId: string; ghJobId: string; completed: boolean; learning: boolean }[];
type RunName = (typeof RUNS)[number]['key'];

interface Obs {
  run: RunName;
  endpoint: string;
  process: typeof CURL;
  blocked: boolean;
  i: number;
}
const o = (run: RunName, i: number, endpoint: string, process = CURL, blocked = false): Obs => ({ run, endpoint, process, blocked, i });

export const OBSERVATIONS: Obs[] = [
  o('101', 1, 'github.com:443'),
  o('101', 2, 'api.github.com:443'),
  o('101', 3, 'webhook.site:443', CURL, true),
  o('101', 3, 'webhook.site:443', CURL, false),
  o('102a', 4, 'github.com:443', PYTHON),
  o('102b', 5, 'github.com:443'),
  o('102a', 6, '[2001:db8::1]:443'),
  o('102b', 7, '140.82.112.9:443'),
  o('201', 8, 'github.com:8443', NODE),
  o('201', 9, '100.64.0.7:41641', TAILSCALED),
  o('201', 10, 'evil.ngrok.io:443'),
  o('301', 11, 'github.com:443'),
  o('301', 12, 'files.pythonhosted.org:443', PYTHON),
  o('401', 13, 'github.com:443'),
  o('401', 14, 'gist.githubusercontent.com:443', CURL, true),
];

export const BASELINE: { job: JobName; endpoint: string; entry: BaselineEntry; i: number }[] = [
  { job: 'build', endpoint: 'github.com:443', entry: { runsSeen: 2, inBaseline: true, source: 'learned' }, i: 1 },
  { job: 'build', endpoint: 'api.github.com:443', entry: { runsSeen: 1, inBaseline: false, source: 'learned' }, i: 2 },
  { job: 'web', endpoint: 'github.com:8443', entry: { runsSeen: 0, inBaseline: true, source: 'expected' }, i: 8 },
  { job: 'test', endpoint: 'github.com:443', entry: { runsSeen: 1, inBaseline: false, source: 'learned' }, i: 11 },
  { job: 'tool', endpoint: 'github.com:443', entry: { runsSeen: 3, inBaseline: true, source: 'learned' }, i: 13 },
];

export const DETECTIONS: { run: RunName; endpoint: string; type: string; status: DetectionStatus; i: number }[] = [
  { run: '101', endpoint: 'webhook.site:443', type: 'Domain-Blocked', status: 'new', i: 3 },
  { run: '101', endpoint: 'api.github.com:443', type: 'New-Outbound-Network-Call', status: 'resolved', i: 2 },
  { run: '102b', endpoint: '140.82.112.9:443', type: 'New-Outbound-Network-Call', status: 'new', i: 7 },
  { run: '201', endpoint: 'evil.ngrok.io:443', type: 'New-Outbound-Network-Call', status: 'new', i: 10 },
  { run: '201', endpoint: '100.64.0.7:41641', type: 'New-Outbound-Network-Call', status: 'suppressed', i: 9 },
  { run: '401', endpoint: 'gist.githubusercontent.com:443', type: 'Domain-Blocked', status: 'new', i: 14 },
];

/** What only the second tenant holds: a call of its own, in its copy of the build job's first run. */
export const ONLY_GLOBEX = 'only-globex.example:443';

/**
 * Writes the world for one tenant in one batch. "globex" gets the same world plus ONLY_GLOBEX, so a
 * query that leaked across tenants would count everything twice.
 */
export async function seedInventoryTenant(port: IngestPort, tenant: string): Promise<void> {
  const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
  const scope = await port.beginSource({ atomic: false });
  try {
    const ti = await scope.tenant(tenant);
    const versions = (await ti.read({ jobs: [], runs: [], observations: [] })).versions;
    const jobNames = Object.keys(JOB) as JobName[];
    const jobRef = (j: JobName) => -1 - jobNames.indexOf(j);
    const runRef = (r: RunName) => -100 - RUNS.findIndex((x) => x.key === r);
    const obs = tenant === 'globex' ? [...OBSERVATIONS, o('101', 15, ONLY_GLOBEX)] : OBSERVATIONS;
    const span = (r: RunName) => obs.filter((x) => x.run === r).map((x) => t(x.i));
    await ti.write({
      lease: { token: lease.token, ttlMs: lease.ttlMs },
      expect: versions,
      newJobs: jobNames.map((j) => ({ tempRef: jobRef(j), key: JOB[j] })),
      newRuns: RUNS.map((r) => ({
        tempRef: runRef(r.key), jobRef: jobRef(r.job), runId: r.runId, runAttempt: 1, ghJobId: r.ghJobId,
        firstTs: Math.min(...span(r.key)), lastTs: Math.max(...span(r.key)), learning: r.learning, completed: r.completed, expected: [],
      })),
      runSpans: [],
      completedRuns: [],
      jobStates: [],
      baseline: BASELINE.map((b) => ({ jobRef: jobRef(b.job), endpoint: b.endpoint, entry: b.entry, firstTs: t(b.i), lastTs: t(b.i) })),
      observations: obs.map((x) => ({
        runRef: runRef(x.run), endpoint: x.endpoint, ip: null, process: x.process, variantKey: processVariantKey(x.process),
        blocked: x.blocked, protocol: 'tcp', ts: t(x.i),
      })),
      detections: DETECTIONS.map((d) => {
        const run = RUNS.find((r) => r.key === d.run)!;
        return {
          type: d.type, jobRef: jobRef(run.job), runRef: runRef(d.run), endpoint: d.endpoint, ip: null, directIp: false,
          port: splitEndpoint(d.endpoint).port, protocol: 'tcp', process: CURL, ts: t(d.i), status: d.status, ruleRef: 0, externalId: '',
        };
      }),
      imported: [],
    });
    await scope.commit();
  } finally {
    await lease.release();
  }
}

export async function seedInventory(port: IngestPort): Promise<void> {
  for (const tenant of ['acme', 'globex']) await seedInventoryTenant(port, tenant);
}
