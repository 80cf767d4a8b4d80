import { normalizeProcessName } from '../../../src/domain/process-name.js';
import { processVariantKey, type DetectionWrite, type IngestPort, type IngestWriteBatch, type JobKey } from '../../../src/storage/ingest-port.js';
import type { DetectionStatus, Protocol } from '../../../src/domain/types.js';
import type { ProcessVariant } from '../../../src/storage/store.js';

/**
 * The stored world the contract suite asserts on, described in domain terms and written through
 * the ingest port, so every backend is seeded identically and assertions compute their expected
 * answers from this description, never from one backend's output.
 */

export interface FixtureDetection {
  tenant: string;
  job: JobKey;
  runId: string;
  ghJobId: string;
  type: string;
  endpoint: string;
  host: string;
  port: number;
  ip: string | null;
  directIp: boolean;
  process: ProcessVariant;
  protocol: Protocol | null;
  ts: number;
  status: DetectionStatus;
}

export const T0 = Date.UTC(2026, 9, 1);
const H = 3_600_000;

export function proc(name: string, path: string, sha: string): ProcessVariant {
  return { name, normName: normalizeProcessName(name), path, sha256: sha, parentChain: [{ name: 'bash', path: '/usr/bin/bash' }] };
}

const CURL = proc('curl', '/usr/bin/curl', 'sha-curl');
const TAILSCALED = proc('tailscaled', '/usr/sbin/tailscaled', 'sha-ts');
// a whole digest: the filter takes only those (domain/digest.ts)
export const PYTHON_SHA = '7e57a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1';
const PYTHON = proc('python3', '/usr/bin/python3', PYTHON_SHA);

export const JOBS: Record<string, JobKey> = {
  api: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build' },
  web: { owner: 'Acme', repo: 'Web', workflow: '.github/workflows/deploy.yml', job: 'deploy' },
  globex: { owner: 'globex', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build' },
};

function d(tenant: string, job: JobKey, runId: string, i: number, over: Partial<FixtureDetection>): FixtureDetection {
  const endpoint = over.endpoint ?? 'github.com:443';
  const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(':')), Number(endpoint.slice(endpoint.lastIndexOf(':') + 1))];
  return {
    tenant, job, runId, ghJobId: `gh-${runId}`, type: 'New-Outbound-Network-Call', endpoint, host, port, ip: null, directIp: false,
    process: CURL, protocol: 'tcp', ts: T0 + i * H, status: 'new', ...over,
  };
}

/** 14 detections of acme over 3 runs of 2 jobs, 3 of globex; two pairs share a timestamp (ties break by id). */
export const DETECTIONS: FixtureDetection[] = [
  d('acme', JOBS.api!, '1001', 1, {}),
  d('acme', JOBS.api!, '1001', 2, { endpoint: 'github.com:8443' }),
  d('acme', JOBS.api!, '1001', 3, { endpoint: '100.64.0.7:41641', host: '100.64.0.7', ip: '100.64.0.7', directIp: true, process: TAILSCALED, protocol: 'udp' }),
  d('acme', JOBS.api!, '1001', 3, { endpoint: 'controlplane.tailscale.com:443', process: TAILSCALED, ip: '192.0.2.10', status: 'suppressed' }),
  d('acme', JOBS.api!, '1001', 4, { type: 'Domain-Blocked', endpoint: 'webhook.site:443' }),
  d('acme', JOBS.api!, '1002', 5, { endpoint: 'api.ipify.org:443', process: PYTHON }),
  d('acme', JOBS.api!, '1002', 6, { endpoint: 'github.com:443', process: PYTHON, status: 'resolved' }),
  d('acme', JOBS.api!, '1002', 7, { endpoint: 'pypi.org:443', process: PYTHON }),
  d('acme', JOBS.api!, '1002', 7, { endpoint: 'files.pythonhosted.org:443', process: PYTHON }),
  d('acme', JOBS.web!, '2001', 8, { endpoint: 'registry.npmjs.org:443' }),
  d('acme', JOBS.web!, '2001', 9, { endpoint: 'github.com:443', type: 'Domain-Blocked', status: 'suppressed' }),
  d('acme', JOBS.web!, '2001', 10, { endpoint: '203.0.113.5:443', host: '203.0.113.5', ip: '203.0.113.5', directIp: true }),
  d('acme', JOBS.web!, '2001', 11, { endpoint: 'github.com:443', process: TAILSCALED }),
  d('acme', JOBS.web!, '2001', 12, { endpoint: 'api.github.com:443' }),
  d('globex', JOBS.globex!, '1001', 1, { endpoint: 'github.com:443' }),
  d('globex', JOBS.globex!, '1001', 2, { endpoint: 'evil.example:443' }),
  d('globex', JOBS.globex!, '1001', 13, { endpoint: 'github.com:443', process: TAILSCALED }),
];

/** Baseline entries (tenant acme, job api): one learned from runs, one expected by a person. */
export const BASELINE = [
  { job: JOBS.api!, endpoint: 'github.com:443', entry: { runsSeen: 3, inBaseline: true, source: 'learned' as const }, ts: T0 + 2 * H },
  { job: JOBS.api!, endpoint: 'registry.npmjs.org:443', entry: { runsSeen: 0, inBaseline: true, source: 'expected' as const }, ts: T0 + 3 * H },
  { job: JOBS.api!, endpoint: 'pypi.org:443', entry: { runsSeen: 1, inBaseline: false, source: 'learned' as const }, ts: T0 + 4 * H },
];
/** completed runs per job (acme api: 2 of 2, everything else still open) */
export const COMPLETED: Record<string, number> = { api: 2, web: 0, globex: 0 };
export const VERDICT = { matchedPolicy: 'block-exfil', reason: 'webhook.site is on the exfiltration list' };

export const HOLDER = { source: 'contract-fixture', pid: process.pid, host: 'contract' };

function toWrite(x: FixtureDetection, jobRef: number, runRef: number): DetectionWrite {
  return {
    type: x.type, jobRef, runRef, endpoint: x.endpoint, ip: x.ip, directIp: x.directIp, port: x.port, protocol: x.protocol,
    process: x.process, ts: x.ts, status: x.status, ruleRef: 0, externalId: '',
  };
}

function emptyBatch(token: string, ttlMs: number, expect: IngestWriteBatch['expect']): IngestWriteBatch {
  return { lease: { token, ttlMs }, expect, newJobs: [], newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [] };
}

/**
 * Writes the fixture for one tenant in two batches, as an ingest does: the first creates jobs and
 * runs (temporary refs) with the first half of the detections, the second names them by their
 * stored refs. Returns what each write reported.
 */
export interface StoredRefs {
  jobRefs: Map<string, number>;
  runRefs: Map<string, number>;
}

/**
 * With `again` (the refs of an earlier seed), the same data is written again the way an ingest
 * re-reading the same source does: naming the stored jobs and runs instead of creating them.
 */
export async function seedTenant(port: IngestPort, tenant: string, again?: StoredRefs): Promise<{ stored: boolean[] } & StoredRefs> {
  const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
  const scope = await port.beginSource({ atomic: false });
  try {
    const t = await scope.tenant(tenant);
    const versions = (await t.read({ jobs: [], runs: [], observations: [] })).versions;
    const mine = DETECTIONS.filter((x) => x.tenant === tenant);
    const jobNames = Object.keys(JOBS).filter((k) => mine.some((x) => x.job === JOBS[k]));
    const runs = [...new Set(mine.map((x) => `${jobNames.find((k) => JOBS[k] === x.job)}/${x.runId}`))];
    const first = emptyBatch(lease.token, lease.ttlMs, versions);
    if (!again) first.newJobs = jobNames.map((k, i) => ({ tempRef: -1 - i, key: JOBS[k]! }));
    const jobTemp = (k: string) => (again ? again.jobRefs.get(k)! : -1 - jobNames.indexOf(k));
    if (!again) first.newRuns = runs.map((r, i) => {
      const [k, runId] = r.split('/') as [string, string];
      const ds = mine.filter((x) => x.job === JOBS[k] && x.runId === runId);
      return {
        tempRef: -100 - i, jobRef: jobTemp(k), runId, runAttempt: 1, ghJobId: `gh-${runId}`,
        firstTs: Math.min(...ds.map((x) => x.ts)), lastTs: Math.min(...ds.map((x) => x.ts)), learning: false, completed: false, expected: ['github.com:443'],
      };
    });
    const runTemp = (x: FixtureDetection) => again ? again.runRefs.get(`${jobNames.find((k) => JOBS[k] === x.job)}/${x.runId}`)! : -100 - runs.indexOf(`${jobNames.find((k) => JOBS[k] === x.job)}/${x.runId}`);
    const half = Math.ceil(mine.length / 2);
    first.detections = mine.slice(0, half).map((x) => toWrite(x, jobTemp(jobNames.find((k) => JOBS[k] === x.job)!), runTemp(x)));
    first.observations = mine.map((x) => ({
      runRef: runTemp(x), endpoint: x.endpoint, ip: x.ip, process: x.process, variantKey: processVariantKey(x.process), blocked: x.type === 'Domain-Blocked',
      protocol: x.protocol, ts: x.ts, ...(x.endpoint === 'webhook.site:443' ? { verdict: VERDICT } : {}),
    }));
    first.baseline = BASELINE.filter((b) => jobNames.some((k) => JOBS[k] === b.job)).map((b) => ({
      jobRef: jobTemp(jobNames.find((k) => JOBS[k] === b.job)!), endpoint: b.endpoint, entry: b.entry, firstTs: b.ts, lastTs: b.ts,
    }));
    const r1 = await t.write(first);

    const jobRefs = again?.jobRefs ?? new Map(jobNames.map((k, i) => [k, r1.jobRefs[i]!]));
    const runRefs = again?.runRefs ?? new Map(runs.map((r, i) => [r, r1.runRefs[i]!]));
    const runRef = (x: FixtureDetection) => runRefs.get(`${jobNames.find((k) => JOBS[k] === x.job)}/${x.runId}`)!;
    // The 'expected' baseline entry stands for a person's `baseline expect`: it bumps the job-state version.
    const second = emptyBatch(lease.token, lease.ttlMs, (await t.read({ jobs: [], runs: [], observations: [] })).versions);
    second.detections = mine.slice(half).map((x) => toWrite(x, jobRefs.get(jobNames.find((k) => JOBS[k] === x.job)!)!, runRef(x)));
    second.runSpans = mine.map((x) => ({ ref: runRef(x), firstTs: x.ts, lastTs: x.ts }));
    const done = jobNames.filter((k) => COMPLETED[k]! > 0);
    second.completedRuns = runs.filter((r) => done.includes(r.split('/')[0]!)).map((r) => runRefs.get(r)!);
    second.jobStates = jobNames.map((k) => ({ ref: jobRefs.get(k)!, completedRuns: COMPLETED[k]!, openRun: COMPLETED[k]! > 0 ? null : runRefs.get(runs.find((r) => r.startsWith(`${k}/`))!)! }));
    second.source = { source: 'fixture.ndjson', format: 'native', startedAt: new Date(T0).toISOString(), lines: mine.length, accepted: mine.length, rejected: 0, detections: mine.length };
    const r2 = await t.write(second);
    await scope.commit();
    return { stored: [...r1.detectionsStored, ...r2.detectionsStored], jobRefs, runRefs };
  } finally {
    await lease.release();
  }
}

export async function seed(port: IngestPort): Promise<Map<string, StoredRefs>> {
  const refs = new Map<string, StoredRefs>();
  for (const tenant of ['acme', 'globex']) refs.set(tenant, await seedTenant(port, tenant));
  return refs;
}
