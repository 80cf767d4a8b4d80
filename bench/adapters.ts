/**
 * Micro-benchmark of the ingest record adapters: records/s of parse() on already-parsed JSON
 * (plus "native+json", which includes JSON.parse of the NDJSON line). Run directly with
 * `node dist/bench/adapters.js`, or call runAdapterBench() from the main bench script.
 */
import { pathToFileURL } from 'node:url';
import { adapterFor } from '../src/ingest/adapters/detect-format.js';
import type { IngestFormat, RecordContext } from '../src/ingest/adapters/types.js';

const PROCS = ['curl', 'node', 'git', 'dockerd', 'tailscaled', 'npm', 'python3', 'wget'];
const DOMAINS = ['github.com', 'registry.npmjs.org', 'objects.githubusercontent.com', 'pypi.org', 'api.ipify.org'];

function nativeRecord(i: number): Record<string, unknown> {
  const job = i >> 6; // 64 consecutive events per job, like a real run
  return {
    owner: `org${job % 5}`,
    repo: `repo${job % 17}`,
    workflow: '.github/workflows/ci.yml',
    job: 'build',
    run_id: 9_000_000_000 + job,
    run_attempt: 1,
    timestamp: new Date(1_740_000_000_000 + i * 37).toISOString(),
    ...(i % 7 === 0 ? { ip: `100.64.${i % 250}.${(i >> 3) % 250}` } : { domain: DOMAINS[i % DOMAINS.length], ip: '140.82.112.3' }),
    port: i % 11 === 0 ? 41641 : 443,
    protocol: i % 11 === 0 ? 'udp' : 'tcp',
    process: {
      name: PROCS[i % PROCS.length],
      path: `/usr/bin/${PROCS[i % PROCS.length]}`,
      sha256: 'a'.repeat(64),
      pid: 1000 + (i % 5000),
      parent: { name: 'bash', pid: 999, parent: { name: 'Runner.Worker' } },
    },
    status: i % 50 === 0 ? 'blocked' : 'allowed',
  };
}

function hardenRunnerRecord(i: number): Record<string, unknown> {
  return {
    ipAddress: '140.82.112.3',
    port: '443(https)',
    domainName: i % 7 === 0 ? '' : `${DOMAINS[i % DOMAINS.length]}.`,
    timestamp: new Date(1_740_000_000_000 + i * 37).toISOString(),
    tool: { name: PROCS[i % PROCS.length], sha256: 'b'.repeat(64), parent: { name: 'bash', sha256: 'c'.repeat(64), parent: null } },
    status: i % 50 === 0 ? 'Dropped' : 'Allowed',
    matched_policy: '',
    reason: '',
  };
}

function ecsRecord(i: number): Record<string, unknown> {
  const ts = new Date(1_740_000_000_000 + i * 37).toISOString();
  if (i % 2 === 0) {
    return {
      '@timestamp': ts,
      event: { category: ['network'], action: 'connection_attempted', outcome: 'success' },
      process: { name: PROCS[i % PROCS.length], executable: '/usr/bin/curl', pid: 42, hash: { sha256: 'd'.repeat(64) }, parent: { name: 'bash' } },
      destination: { domain: DOMAINS[i % DOMAINS.length], ip: '140.82.112.3', port: 443 },
      network: { transport: 'tcp' },
      labels: { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: '123', run_attempt: '1' },
    };
  }
  return {
    '@timestamp': ts,
    'process.name': PROCS[i % PROCS.length],
    'process.parent.name': 'bash',
    'destination.ip': '140.82.112.3',
    'destination.port': 443,
    'network.transport': 'tcp',
    'labels.owner': 'acme',
    'labels.repo': 'api',
    'labels.workflow': 'ci.yml',
    'labels.job': 'build',
    'labels.run_id': '123',
  };
}

function stepSecurityRecord(i: number): Record<string, unknown> {
  return {
    id: `det-${i}`,
    detection_id: 'New-Outbound-Network-Call',
    owner: 'acme',
    repo: 'api',
    run_id: 123 + (i >> 4),
    run_attempt: 1,
    job: 'build',
    job_id: 456,
    workflow_path: '.github/workflows/ci.yml',
    timestamp: new Date(1_740_000_000_000 + i * 37).toISOString(),
    tool: { name: PROCS[i % PROCS.length], sha256: 'e'.repeat(64), parent: i % 2 ? 'bash' : null },
    endpoint: i % 3 ? `${DOMAINS[i % DOMAINS.length]}:443` : '100.64.1.2:41641',
    direct_ip_address: i % 3 ? '' : '100.64.1.2',
    expected_outbound_connections: ['github.com:443', 'registry.npmjs.org:443'],
    is_resolved: false,
    is_suppressed: false,
    suppress_rule_id: '',
  };
}

function measure(format: IngestFormat, records: unknown[], n: number, withJson: boolean): number {
  const adapter = adapterFor(format);
  const rc: RecordContext = {
    source: 'bench',
    line: 0,
    tenant: 'default',
    defaults: { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', runId: '1', runAttempt: 1 },
    notes: {},
  };
  const lines = withJson ? records.map((r) => JSON.stringify(r)) : [];
  const m = records.length;
  let sink = 0;
  // warm-up
  for (let i = 0; i < Math.min(n, 20_000); i++) {
    rc.line = i + 1;
    const out = adapter.parse(withJson ? JSON.parse(lines[i % m]!) : records[i % m], rc);
    if (out.kind === 'call') sink += out.event.port;
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    rc.line = i + 1;
    const out = adapter.parse(withJson ? JSON.parse(lines[i % m]!) : records[i % m], rc);
    if (out.kind === 'call') sink += out.event.port;
    else if (out.kind === 'detection') sink += out.detection.expected.length;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink === -1) console.log(sink);
  return Math.round((n / ns) * 1e9);
}

/** records/s for each adapter (parse() only, except "native+json" which includes JSON.parse). */
export async function runAdapterBench(n = 300_000): Promise<Record<string, number>> {
  const pool = 4096;
  const mk = <T>(f: (i: number) => T) => Array.from({ length: pool }, (_, i) => f(i));
  const native = mk(nativeRecord);
  return {
    native: measure('native', native, n, false),
    'native+json': measure('native', native, n, true),
    'harden-runner': measure('harden-runner', mk(hardenRunnerRecord), n, false),
    ecs: measure('ecs', mk(ecsRecord), n, false),
    stepsecurity: measure('stepsecurity', mk(stepSecurityRecord), n, false),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await runAdapterBench();
  for (const [k, v] of Object.entries(res)) {
    console.log(`${k.padEnd(14)} ${v.toLocaleString('en-US').padStart(12)} records/s  ${(1e6 / v).toFixed(3)} µs/record`);
  }
}
