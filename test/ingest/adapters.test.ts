import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapterFor, detectFormat } from '../../src/ingest/adapters/detect-format.js';
import { EcsAdapter } from '../../src/ingest/adapters/ecs.js';
import { HardenRunnerAdapter } from '../../src/ingest/adapters/harden-runner.js';
import { NativeAdapter } from '../../src/ingest/adapters/native.js';
import { StepSecurityAdapter, unwrapStepSecurity } from '../../src/ingest/adapters/stepsecurity.js';
import {
  RecordError,
  type AdapterOutput,
  type RecordAdapter,
  type RecordContext,
} from '../../src/ingest/adapters/types.js';
import { epochToMs, parseContextLine, parseRfc3339 } from '../../src/ingest/adapters/validate.js';
import type { ImportedDetection, JobContext, NetworkCallEvent } from '../../src/domain/types.js';

const SHA_CURL = '4f2a0c8e6a1b5d3c9e7f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d';
const SHA_BASH = '9c1b7e5d3f0a2c4e6b8d0f1e3a5c7b9d2f4e6a8c0b1d3f5e7a9c2b4d6f8e0a1c';

function rc(defaults: Partial<JobContext> = {}, tenant = 'default'): RecordContext {
  return { source: 'test.ndjson', line: 1, tenant, defaults, notes: {} };
}

function call(out: AdapterOutput): NetworkCallEvent {
  assert.equal(out.kind, 'call');
  return (out as { kind: 'call'; event: NetworkCallEvent }).event;
}

function det(out: AdapterOutput): ImportedDetection {
  assert.equal(out.kind, 'detection');
  return (out as { kind: 'detection'; detection: ImportedDetection }).detection;
}

/** Asserts parse() throws a RecordError with this reason and field path. */
function rejects(adapter: RecordAdapter, record: unknown, reason: string, field: string | null, ctx = rc()): void {
  assert.throws(
    () => adapter.parse(record, ctx),
    (err: unknown) => {
      assert.ok(err instanceof RecordError, `expected RecordError, got ${String(err)}`);
      assert.equal(err.reason, reason, `reason (message: ${err.message})`);
      assert.equal(err.field, field, `field (message: ${err.message})`);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// native

function nativeRecord(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    owner: 'acme',
    repo: 'payments-api',
    workflow: '.github/workflows/ci.yml',
    job: 'build',
    run_id: 12345678901,
    run_attempt: 2,
    job_id: 33445566,
    timestamp: '2025-03-14T10:15:30.250Z',
    domain: 'Registry.NPMJS.org.',
    ip: '104.16.27.34',
    port: 443,
    protocol: 'tcp',
    process: {
      name: 'node',
      path: '/usr/local/bin/node',
      sha256: SHA_CURL,
      pid: 4242,
      parent: { name: 'npm', pid: 4200, parent: { name: 'bash', sha256: SHA_BASH, parent: null } },
    },
    status: 'allowed',
    ...over,
  };
}

test('native: full record maps to a NetworkCallEvent', () => {
  const ev = call(new NativeAdapter().parse(nativeRecord(), rc({}, 'fallback-tenant')));
  assert.equal(ev.tenant, 'fallback-tenant');
  assert.deepEqual({ ...ev.ctx }, {
    owner: 'acme',
    repo: 'payments-api',
    workflow: '.github/workflows/ci.yml',
    job: 'build',
    runId: '12345678901',
    runAttempt: 2,
    jobId: '33445566',
  });
  assert.equal(ev.timestamp, Date.UTC(2025, 2, 14, 10, 15, 30, 250));
  assert.equal(ev.domain, 'registry.npmjs.org');
  assert.equal(ev.ip, '104.16.27.34');
  assert.equal(ev.port, 443);
  assert.equal(ev.protocol, 'tcp');
  assert.equal(ev.status, 'allowed');
  assert.equal(ev.process.name, 'node');
  assert.equal(ev.process.path, '/usr/local/bin/node');
  assert.equal(ev.process.sha256, SHA_CURL);
  assert.equal(ev.process.pid, 4242);
  assert.equal(ev.process.parent?.name, 'npm');
  assert.equal(ev.process.parent?.parent?.name, 'bash');
  assert.equal(ev.process.parent?.parent?.sha256, SHA_BASH);
  assert.equal(ev.process.parent?.parent?.parent, null);
});

test('native: defaults, direct-IP call, string port, record tenant, blocked', () => {
  const a = new NativeAdapter();
  const rec = nativeRecord({
    tenant: 'team-b',
    run_id: '777',
    run_attempt: undefined,
    job_id: undefined,
    domain: undefined,
    ip: '100.100.3.7',
    port: '41641(tailscale)',
    protocol: 'UDP',
    status: 'blocked',
    timestamp: '2025-03-14T12:00:00+02:00',
  });
  const ev = call(a.parse(rec, rc()));
  assert.equal(ev.tenant, 'team-b');
  assert.equal(ev.ctx.runId, '777');
  assert.equal(ev.ctx.runAttempt, 1);
  assert.equal(ev.ctx.jobId, undefined);
  assert.equal(ev.domain, undefined);
  assert.equal(ev.ip, '100.100.3.7');
  assert.equal(ev.port, 41641);
  assert.equal(ev.protocol, 'udp');
  assert.equal(ev.status, 'blocked');
  assert.equal(ev.timestamp, Date.UTC(2025, 2, 14, 10, 0, 0));
  // status defaults to allowed; port as numeric string
  const ev2 = call(a.parse(nativeRecord({ status: undefined, port: '8443' }), rc()));
  assert.equal(ev2.status, 'allowed');
  assert.equal(ev2.port, 8443);
});

test('native: an IP literal in the domain field is a direct-IP call', () => {
  const ev = call(new NativeAdapter().parse(nativeRecord({ domain: '198.41.192.7', ip: undefined, port: 7844 }), rc()));
  assert.equal(ev.domain, undefined);
  assert.equal(ev.ip, '198.41.192.7');
});

test('native: CI context falls back to rc.defaults (flags) and is reused across records', () => {
  const a = new NativeAdapter();
  const defaults = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'test', runId: '9', runAttempt: 3, jobId: '11' };
  const rec = nativeRecord({ owner: undefined, repo: undefined, workflow: undefined, job: undefined, run_id: undefined, run_attempt: undefined, job_id: undefined });
  const e1 = call(a.parse(rec, rc(defaults)));
  assert.deepEqual({ ...e1.ctx }, defaults);
  const e2 = call(a.parse({ ...rec, timestamp: '2025-03-14T10:15:31Z' }, rc(defaults)));
  assert.equal(e2.ctx, e1.ctx, 'same job context object is reused');
  const e3 = call(a.parse(nativeRecord(), rc(defaults)));
  assert.notEqual(e3.ctx, e1.ctx);
  assert.equal(e3.ctx.owner, 'acme');
  assert.equal(e3.ctx.runId, '12345678901');
});

test('native: repo given as owner/repo', () => {
  const a = new NativeAdapter();
  assert.equal(call(a.parse(nativeRecord({ repo: 'acme/payments-api' }), rc())).ctx.repo, 'payments-api');
  const ev = call(a.parse(nativeRecord({ owner: undefined, repo: 'octo/site' }), rc()));
  assert.equal(ev.ctx.owner, 'octo');
  assert.equal(ev.ctx.repo, 'site');
});

test('the context every format builds (ContextBuilder): owner, repo or run id "." or ".." is rejected (a dot segment of every run link), other dotted names kept', () => {
  const a = new NativeAdapter();
  rejects(a, nativeRecord({ owner: '..' }), 'invalid-value', 'owner');
  rejects(a, nativeRecord({ repo: '.' }), 'invalid-value', 'repo');
  rejects(a, nativeRecord({ owner: undefined, repo: '../x' }), 'invalid-value', 'owner');
  rejects(a, nativeRecord({ run_id: '..' }), 'invalid-value', 'run_id');
  // from the flags too
  rejects(a, nativeRecord({ owner: undefined }), 'invalid-value', 'owner', rc({ owner: '..' }));
  const ev = call(a.parse(nativeRecord({ owner: '.acme', repo: '...', run_id: '1.2' }), rc()));
  assert.deepEqual([ev.ctx.owner, ev.ctx.repo, ev.ctx.runId], ['.acme', '...', '1.2']);
});

test('native: IPv6 accepted and lower-cased', () => {
  const ev = call(new NativeAdapter().parse(nativeRecord({ domain: undefined, ip: '2606:4700::6810:1B22' }), rc()));
  assert.equal(ev.ip, '2606:4700::6810:1b22');
});

test('native: bad input is rejected with reason and field path', () => {
  const a = new NativeAdapter();
  const noCtx = { owner: undefined, repo: undefined, workflow: undefined, job: undefined, run_id: undefined };
  // not an object
  rejects(a, 'hello', 'wrong-type', null);
  rejects(a, [1, 2], 'wrong-type', null);
  // missing fields
  rejects(a, nativeRecord({ timestamp: undefined }), 'missing-field', 'timestamp');
  rejects(a, nativeRecord({ port: undefined }), 'missing-field', 'port');
  rejects(a, nativeRecord({ process: undefined }), 'missing-field', 'process');
  rejects(a, nativeRecord({ process: { pid: 1 } }), 'missing-field', 'process.name');
  rejects(a, nativeRecord({ process: { name: 'node', parent: { name: 'npm', parent: { pid: 3 } } } }), 'missing-field', 'process.parent.parent.name');
  rejects(a, nativeRecord({ domain: undefined, ip: undefined }), 'missing-field', 'domain|ip');
  rejects(a, nativeRecord({ domain: '', ip: null }), 'missing-field', 'domain|ip');
  // wrong types
  rejects(a, nativeRecord({ owner: 42 }), 'wrong-type', 'owner');
  rejects(a, nativeRecord({ run_id: { id: 1 } }), 'wrong-type', 'run_id');
  rejects(a, nativeRecord({ timestamp: 1741947330 }), 'wrong-type', 'timestamp');
  rejects(a, nativeRecord({ port: true }), 'wrong-type', 'port');
  rejects(a, nativeRecord({ domain: ['github.com'] }), 'wrong-type', 'domain');
  rejects(a, nativeRecord({ ip: 1234 }), 'wrong-type', 'ip');
  rejects(a, nativeRecord({ process: 'node' }), 'wrong-type', 'process');
  rejects(a, nativeRecord({ process: { name: 7 } }), 'wrong-type', 'process.name');
  rejects(a, nativeRecord({ process: { name: 'node', parent: { name: ['npm'] } } }), 'wrong-type', 'process.parent.name');
  rejects(a, nativeRecord({ process: { name: 'node', parent: 'npm' } }), 'wrong-type', 'process.parent');
  rejects(a, nativeRecord({ process: { name: 'node', sha256: 5 } }), 'wrong-type', 'process.sha256');
  rejects(a, nativeRecord({ status: 1 }), 'wrong-type', 'status');
  // invalid values
  rejects(a, nativeRecord({ timestamp: 'yesterday' }), 'invalid-value', 'timestamp');
  rejects(a, nativeRecord({ timestamp: '2025-02-30T10:00:00Z' }), 'invalid-value', 'timestamp');
  rejects(a, nativeRecord({ timestamp: '2025-03-14T10:15:30' }), 'invalid-value', 'timestamp');
  rejects(a, nativeRecord({ ip: '999.1.1.1' }), 'invalid-value', 'ip');
  rejects(a, nativeRecord({ ip: '127.1' }), 'invalid-value', 'ip');
  rejects(a, nativeRecord({ ip: 'fe80::zz' }), 'invalid-value', 'ip');
  // an unusable name is refused only with no address beside it (test/ingest/unusable-domain.test.ts)
  rejects(a, nativeRecord({ domain: 'bad domain!.com', ip: undefined }), 'invalid-value', 'domain');
  rejects(a, nativeRecord({ port: 70000 }), 'invalid-value', 'port');
  rejects(a, nativeRecord({ port: -1 }), 'invalid-value', 'port');
  rejects(a, nativeRecord({ port: 44.3 }), 'invalid-value', 'port');
  rejects(a, nativeRecord({ port: 'https' }), 'invalid-value', 'port');
  rejects(a, nativeRecord({ port: '443(https' }), 'invalid-value', 'port');
  rejects(a, nativeRecord({ protocol: 'icmp' }), 'invalid-value', 'protocol');
  rejects(a, nativeRecord({ status: 'Dropped' }), 'invalid-value', 'status');
  rejects(a, nativeRecord({ run_attempt: 0 }), 'invalid-value', 'run_attempt');
  // a number past 2^53 is not the id that was written (9007199254740993 reads as ...992): two runs would merge
  rejects(a, nativeRecord({ run_id: 9007199254740993 }), 'invalid-value', 'run_id');
  rejects(a, nativeRecord({ job_id: 2 ** 60 }), 'invalid-value', 'job_id');
  assert.equal(a.parse(nativeRecord({ run_id: '9007199254740993' }), rc()).kind, 'call', 'as a string it is kept exactly');
  rejects(a, nativeRecord({ run_attempt: 1e30 }), 'invalid-value', 'run_attempt');
  rejects(a, nativeRecord({ process: { name: 'node', pid: -4 } }), 'invalid-value', 'process.pid');
  rejects(a, nativeRecord({ tenant: 'no spaces allowed' }), 'invalid-value', 'tenant');
  // missing context: absent from the record and from the defaults
  rejects(a, nativeRecord(noCtx), 'missing-context', 'repo');
  rejects(a, nativeRecord({ workflow: undefined }), 'missing-context', 'workflow');
  rejects(a, nativeRecord({ job: '' }), 'missing-context', 'job');
  rejects(a, nativeRecord({ run_id: undefined }), 'missing-context', 'run_id');
  rejects(a, nativeRecord({ owner: undefined }), 'missing-context', 'owner');
  rejects(a, nativeRecord({ ...noCtx, repo: 'api' }), 'missing-context', 'owner', rc({ workflow: 'w', job: 'j', runId: '1' }));
});

test('native: RecordError message names the field', () => {
  try {
    new NativeAdapter().parse(nativeRecord({ port: 'abc' }), rc());
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof RecordError);
    assert.match(err.message, /^port: /);
  }
});

// ---------------------------------------------------------------------------------------------
// harden-runner

const HR_CTX: Partial<JobContext> = { owner: 'acme', repo: 'api', workflow: '.github/workflows/release.yml', job: 'publish', runId: '555', runAttempt: 1 };

function hrRecord(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ipAddress: '140.82.112.3',
    port: '443(https)',
    domainName: 'github.com.',
    timestamp: '2025-03-14T10:00:00.123456789Z',
    tool: {
      name: 'curl',
      sha256: SHA_CURL,
      parent: { name: 'bash', sha256: SHA_BASH, parent: { name: 'Runner.Worker', sha256: 'abc', parent: null } },
    },
    status: 'Allowed',
    matched_policy: 'audit',
    reason: '',
    ...over,
  };
}

test('harden-runner: NetworkConnection with port "443(https)" and a parent chain', () => {
  const ev = call(new HardenRunnerAdapter().parse(hrRecord(), rc(HR_CTX)));
  assert.equal(ev.port, 443);
  assert.equal(ev.domain, 'github.com');
  assert.equal(ev.ip, '140.82.112.3');
  assert.equal(ev.timestamp, Date.UTC(2025, 2, 14, 10, 0, 0, 123));
  assert.equal(ev.status, 'allowed');
  assert.equal(ev.protocol, undefined);
  assert.equal(ev.process.name, 'curl');
  assert.equal(ev.process.sha256, SHA_CURL);
  assert.equal(ev.process.parent?.name, 'bash');
  assert.equal(ev.process.parent?.parent?.name, 'Runner.Worker');
  assert.equal(ev.ctx.owner, 'acme');
  assert.equal(ev.ctx.runId, '555');
  assert.equal(ev.ctx.workflow, '.github/workflows/release.yml');
});

test('harden-runner: "Unknown" tool is kept, Dropped is blocked, empty domain is direct-IP', () => {
  const ev = call(
    new HardenRunnerAdapter().parse(
      hrRecord({ domainName: '', ipAddress: '185.199.108.133', port: '9993', status: 'Dropped', tool: { name: 'Unknown', sha256: 'Unknown', parent: null } }),
      rc(HR_CTX),
    ),
  );
  assert.equal(ev.process.name, 'Unknown');
  assert.equal(ev.process.sha256, undefined);
  assert.equal(ev.process.parent, null);
  assert.equal(ev.status, 'blocked');
  assert.equal(ev.domain, undefined);
  assert.equal(ev.ip, '185.199.108.133');
  assert.equal(ev.port, 9993);
});

test('harden-runner: container tool and epoch timestamps', () => {
  const a = new HardenRunnerAdapter();
  const r = rc(HR_CTX);
  const ev = call(a.parse(hrRecord({ tool: { name: 'ghcr.io/acme/builder:1.2', sha256: 'ghcr.io/acme/builder:1.2', parent: null }, timestamp: 1741946400 }), r));
  // named as the image's repository is: no registry, tag or digest
  assert.equal(ev.process.name, 'builder');
  // the image name the agent puts in sha256 for a container is no hash: unknown; the image is the path
  assert.equal(ev.process.sha256, undefined);
  assert.equal(ev.process.path, 'container-image:ghcr.io/acme/builder:1.2');
  assert.deepEqual(r.notes, { 'container-image': 1 });
  // an image ID is no file's hash either
  const id = `sha256:${'4b'.repeat(32)}`;
  assert.equal(call(a.parse(hrRecord({ tool: { name: id, sha256: id, parent: null } }), rc(HR_CTX))).process.sha256, undefined);
  // the agent's Unknown tool is no container, however it is cased
  for (const unknown of ['Unknown', 'unknown']) assert.equal(call(a.parse(hrRecord({ tool: { name: unknown, sha256: unknown } }), rc(HR_CTX))).process.path, undefined);
  // a tool whose name merely differs from its hash is a binary as before
  assert.equal(call(a.parse(hrRecord({ tool: { name: 'curl', sha256: 'open /usr/bin/curl: no such file', parent: null } }), rc(HR_CTX))).process.path, undefined);
  assert.equal(ev.timestamp, 1741946400000);
  assert.equal(call(a.parse(hrRecord({ timestamp: 1741946400123 }), rc(HR_CTX))).timestamp, 1741946400123);
  assert.equal(call(a.parse(hrRecord({ timestamp: '1741946400' }), rc(HR_CTX))).timestamp, 1741946400000);
  assert.equal(call(a.parse(hrRecord({ timestamp: 1741946400123456 }), rc(HR_CTX))).timestamp, 1741946400123);
});

test('harden-runner: leading context line', () => {
  const a = new HardenRunnerAdapter();
  const line = { context: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: 123456789, run_attempt: 2, job_id: 987654321 } };
  const out = a.parse(line, rc());
  assert.equal(out.kind, 'context');
  const ctx = (out as { kind: 'context'; ctx: Partial<JobContext> }).ctx;
  assert.deepEqual(ctx, { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', runId: '123456789', runAttempt: 2, jobId: '987654321' });
  // the pipeline merges it into rc.defaults for the lines after it
  const ev = call(a.parse(hrRecord(), rc(ctx)));
  assert.equal(ev.ctx.runId, '123456789');
  assert.equal(ev.ctx.runAttempt, 2);
  assert.equal(ev.ctx.jobId, '987654321');
  // camelCase / repository variants
  assert.deepEqual(parseContextLine({ repository: 'octo/site', runId: '5', runAttempt: '3' }), { owner: 'octo', repo: 'site', runId: '5', runAttempt: 3 });
});

test('harden-runner: bad input', () => {
  const a = new HardenRunnerAdapter();
  const c = rc(HR_CTX);
  rejects(a, hrRecord({ tool: undefined }), 'missing-field', 'tool', c);
  // a tool without a name is the agent's zero Tool: Unknown, as {"name":"","sha256":""} is
  assert.equal(call(a.parse(hrRecord({ tool: { sha256: 'x' } }), c)).process.name, 'Unknown');
  assert.equal(call(a.parse(hrRecord({ tool: { name: 'curl', parent: { sha256: 'x' } } }), c)).process.parent?.name, 'Unknown');
  rejects(a, hrRecord({ tool: { name: 5 } }), 'wrong-type', 'tool.name', c);
  rejects(a, hrRecord({ tool: { name: 'curl', parent: 5 } }), 'wrong-type', 'tool.parent', c);
  rejects(a, hrRecord({ port: undefined }), 'missing-field', 'port', c);
  rejects(a, hrRecord({ port: '65536' }), 'invalid-value', 'port', c);
  rejects(a, hrRecord({ port: '443(https)x' }), 'invalid-value', 'port', c);
  rejects(a, hrRecord({ ipAddress: '', domainName: '' }), 'missing-field', 'domainName|ipAddress', c);
  rejects(a, hrRecord({ ipAddress: '10.0.0.256' }), 'invalid-value', 'ipAddress', c);
  rejects(a, hrRecord({ ipAddress: 17 }), 'wrong-type', 'ipAddress', c);
  rejects(a, hrRecord({ timestamp: 'not a time' }), 'invalid-value', 'timestamp', c);
  rejects(a, hrRecord({ timestamp: undefined }), 'missing-field', 'timestamp', c);
  rejects(a, hrRecord({ timestamp: {} }), 'wrong-type', 'timestamp', c);
  rejects(a, hrRecord({ status: 'Maybe' }), 'invalid-value', 'status', c);
  rejects(a, hrRecord(), 'missing-context', 'repo', rc());
  rejects(a, hrRecord(), 'missing-context', 'run_id', rc({ ...HR_CTX, runId: undefined }));
  rejects(a, { context: { owner: 5 } }, 'wrong-type', 'context.owner', c);
  rejects(a, { context: { run_attempt: 'x' } }, 'invalid-value', 'context.run_attempt', c);
  rejects(a, { context: { repository: 'nope' } }, 'invalid-value', 'context.repository', c);
});

// ---------------------------------------------------------------------------------------------
// ecs

const ECS_NESTED = {
  '@timestamp': '2025-03-14T10:00:05.000Z',
  event: { kind: 'event', category: ['network'], type: ['connection', 'start'], action: 'network_flow', outcome: 'success' },
  process: {
    name: 'tailscaled',
    executable: '/usr/sbin/tailscaled',
    pid: 812,
    hash: { sha256: SHA_CURL },
    parent: { name: 'sudo', executable: '/usr/bin/sudo', pid: 800 },
  },
  destination: { domain: 'controlplane.tailscale.com', ip: '192.200.0.101', port: 443 },
  network: { transport: 'tcp', direction: 'egress' },
  labels: { owner: 'acme', repo: 'infra', workflow: '.github/workflows/deploy.yml', job: 'deploy', run_id: '424242', run_attempt: '2', job_id: '99' },
};

const ECS_DOTTED = {
  '@timestamp': '2025-03-14T10:00:06Z',
  'event.action': 'connection_denied',
  'process.name': 'zerotier-one',
  'process.executable': '/usr/sbin/zerotier-one',
  'process.hash.sha256': SHA_BASH,
  'process.parent.name': 'systemd',
  'destination.ip': '103.195.103.66',
  'destination.port': '9993',
  'network.transport': 'UDP',
  'labels.github_repository': 'acme/infra',
  'labels.github_workflow': 'deploy',
  'labels.github_job': 'deploy',
  'labels.github_run_id': '424242',
};

test('ecs: nested document', () => {
  const ev = call(new EcsAdapter().parse(ECS_NESTED, rc()));
  assert.equal(ev.timestamp, Date.UTC(2025, 2, 14, 10, 0, 5));
  assert.equal(ev.process.name, 'tailscaled');
  assert.equal(ev.process.path, '/usr/sbin/tailscaled');
  assert.equal(ev.process.sha256, SHA_CURL);
  assert.equal(ev.process.pid, 812);
  assert.equal(ev.process.parent?.name, 'sudo');
  assert.equal(ev.process.parent?.path, '/usr/bin/sudo');
  assert.equal(ev.domain, 'controlplane.tailscale.com');
  assert.equal(ev.ip, '192.200.0.101');
  assert.equal(ev.port, 443);
  assert.equal(ev.protocol, 'tcp');
  assert.equal(ev.status, 'allowed');
  assert.deepEqual({ ...ev.ctx }, { owner: 'acme', repo: 'infra', workflow: '.github/workflows/deploy.yml', job: 'deploy', runId: '424242', runAttempt: 2, jobId: '99' });
});

test('ecs: dotted flat keys, github_* labels, denied action', () => {
  const ev = call(new EcsAdapter().parse(ECS_DOTTED, rc()));
  assert.equal(ev.process.name, 'zerotier-one');
  assert.equal(ev.process.path, '/usr/sbin/zerotier-one');
  assert.equal(ev.process.sha256, SHA_BASH);
  assert.equal(ev.process.parent?.name, 'systemd');
  assert.equal(ev.domain, undefined);
  assert.equal(ev.ip, '103.195.103.66');
  assert.equal(ev.port, 9993);
  assert.equal(ev.protocol, 'udp');
  assert.equal(ev.status, 'blocked');
  assert.equal(ev.ctx.owner, 'acme');
  assert.equal(ev.ctx.repo, 'infra');
  assert.equal(ev.ctx.runId, '424242');
  assert.equal(ev.ctx.runAttempt, 1);
});

test('ecs: mixed nesting, name from executable, labels fall back to flags, event.type denied', () => {
  const doc = {
    '@timestamp': 1741946400000,
    process: { 'hash.sha256': SHA_CURL, executable: '/opt/cloudflared/cloudflared' },
    'destination.address': '198.41.200.13',
    destination: { port: 7844 },
    event: { type: ['connection', 'denied'] },
  };
  const ev = call(new EcsAdapter().parse(doc, rc(HR_CTX)));
  assert.equal(ev.process.name, 'cloudflared');
  assert.equal(ev.process.sha256, SHA_CURL);
  assert.equal(ev.ip, '198.41.200.13');
  assert.equal(ev.port, 7844);
  assert.equal(ev.status, 'blocked');
  assert.equal(ev.timestamp, 1741946400000);
  assert.equal(ev.ctx.repo, 'api');
});

test('ecs: a null value hides no other spelling of its field (nested null beside a dotted key, and the other way round)', () => {
  const a = new EcsAdapter();
  const { destination: _d, ...rest } = ECS_NESTED;
  const dottedBesideNull = call(a.parse({ ...rest, destination: { ip: null, domain: null }, 'destination.ip': '46.4.105.117', 'destination.port': 443 }, rc()));
  assert.equal(dottedBesideNull.ip, '46.4.105.117');
  assert.equal(dottedBesideNull.port, 443);
  const nestedBesideNull = call(a.parse({ ...rest, 'destination.domain': null, destination: { domain: 'webhook.site', port: 443 } }, rc()));
  assert.equal(nestedBesideNull.domain, 'webhook.site');
});

test('ecs: a name the process chose (URL, TLS server name) names the call only when it is a risky destination', () => {
  const a = new EcsAdapter();
  const { destination: _d, ...rest } = ECS_NESTED;
  const byIp = { ...rest, destination: { ip: '46.4.105.116', port: 443 } };
  assert.equal(call(a.parse({ ...byIp, url: { domain: 'webhook.site' } }, rc())).domain, 'webhook.site');
  assert.equal(call(a.parse({ ...byIp, 'tls.client.server_name': 'Gist.GitHubUserContent.com' }, rc())).domain, 'gist.githubusercontent.com');
  // an attacker's own address with a baselined name in its TLS handshake stays a direct-IP call
  assert.equal(call(a.parse({ ...byIp, tls: { client: { server_name: 'registry.npmjs.org' } }, server: { domain: 'registry.npmjs.org' } }, rc())).domain, undefined);
  // a risky name wins over the destination's own
  assert.equal(call(a.parse({ ...rest, destination: { domain: 'registry.npmjs.org', port: 443 }, url: { domain: 'webhook.site' } }, rc())).domain, 'webhook.site');
});

test('ecs: a process is named by its executable, except one run from memory (no file name), and a replaced file keeps its name', () => {
  const a = new EcsAdapter();
  const named = (process: object) => {
    const p = call(a.parse({ ...ECS_NESTED, process }, rc(HR_CTX))).process;
    return [p.name, p.path];
  };
  assert.deepEqual(named({ name: 'tailscaled', executable: '/memfd:tailscaled (deleted)' }), ['tailscaled', '/memfd:tailscaled (deleted)']);
  assert.deepEqual(named({ name: 'tailscaled', executable: '/proc/self/fd/3' }), ['tailscaled', '/proc/self/fd/3']);
  assert.deepEqual(named({ name: 'tailscaled', executable: '/usr/sbin/tailscaled (deleted)' }), ['tailscaled', '/usr/sbin/tailscaled (deleted)']);
  assert.deepEqual(named({ name: 'curl', executable: '/tmp/.x/payload' }), ['payload', '/tmp/.x/payload']);
});

test('ecs: non-network event is skipped; bad input', () => {
  const a = new EcsAdapter();
  assert.deepEqual(a.parse({ '@timestamp': '2025-03-14T10:00:00Z', event: { category: ['process'] }, process: { name: 'bash' } }, rc(HR_CTX)), { kind: 'skip' });
  rejects(a, { ...ECS_NESTED, '@timestamp': undefined }, 'missing-field', '@timestamp');
  rejects(a, { ...ECS_NESTED, '@timestamp': '14/03/2025' }, 'invalid-value', '@timestamp');
  // no name and no executable: the Unknown tool (an Auditbeat flow of a process it did not see start)
  assert.equal(call(a.parse({ ...ECS_NESTED, process: { pid: 3 } }, rc(HR_CTX))).process.name, 'Unknown');
  rejects(a, { ...ECS_NESTED, process: { name: 5 } }, 'wrong-type', 'process.name');
  rejects(a, { ...ECS_NESTED, process: { name: 'curl', parent: { name: {} } } }, 'wrong-type', 'process.parent.name');
  // a network event with no destination is skipped (and counted), not rejected
  assert.deepEqual(a.parse({ ...ECS_NESTED, destination: { port: 443 } }, rc(HR_CTX)), { kind: 'skip' });
  rejects(a, { ...ECS_NESTED, event: undefined, destination: { port: 443 } }, 'missing-field', 'destination.domain|destination.ip');
  rejects(a, { ...ECS_NESTED, destination: { ip: '1.2.3', port: 443 } }, 'invalid-value', 'destination.ip');
  rejects(a, { ...ECS_NESTED, destination: { ip: '1.2.3.4' } }, 'missing-field', 'destination.port');
  rejects(a, { ...ECS_NESTED, destination: { ip: '1.2.3.4', port: 99999 } }, 'invalid-value', 'destination.port');
  rejects(a, { ...ECS_NESTED, labels: { repo: 'infra' } }, 'missing-context', 'labels.owner');
  rejects(a, { ...ECS_DOTTED, 'labels.github_run_id': undefined }, 'missing-context', 'labels.run_id');
  rejects(a, { ...ECS_NESTED, labels: { ...ECS_NESTED.labels, job: 12 } }, 'wrong-type', 'labels.job');
});

// ---------------------------------------------------------------------------------------------
// stepsecurity

const SS_DETECTION = {
  id: 'a1b2c3d4-0000-4000-8000-000000000001',
  detection_id: 'New-Outbound-Network-Call',
  owner: 'acme',
  repo: 'web',
  run_id: 13579,
  run_attempt: 1,
  job: 'build',
  job_id: 24680,
  workflow_path: '.github/workflows/build.yml',
  timestamp: '2025-03-14T09:59:59Z',
  tool: { name: 'node', sha256: SHA_CURL, parent: 'npm' },
  endpoint: 'webhook.site:443',
  direct_ip_address: '',
  expected_outbound_connections: ['github.com:443', 'registry.npmjs.org:443'],
  is_resolved: false,
  is_suppressed: false,
  suppress_rule_id: '',
};

test('stepsecurity: envelope element with string parent', () => {
  const envelope = { data: { detections: [SS_DETECTION] } };
  const items = unwrapStepSecurity(envelope);
  assert.ok(items);
  const d = det(new StepSecurityAdapter().parse(items[0], rc()));
  assert.equal(d.externalId, SS_DETECTION.id);
  assert.equal(d.type, 'New-Outbound-Network-Call');
  assert.equal(d.tenant, 'default');
  assert.deepEqual({ ...d.ctx }, { owner: 'acme', repo: 'web', workflow: '.github/workflows/build.yml', job: 'build', runId: '13579', runAttempt: 1, jobId: '24680' });
  assert.equal(d.timestamp, Date.UTC(2025, 2, 14, 9, 59, 59));
  assert.equal(d.endpoint, 'webhook.site:443');
  assert.equal(d.host, 'webhook.site');
  assert.equal(d.ip, undefined);
  assert.equal(d.port, 443);
  assert.equal(d.directIp, undefined);
  assert.equal(d.process.name, 'node');
  assert.equal(d.process.parent?.name, 'npm');
  assert.deepEqual(d.expected, ['github.com:443', 'registry.npmjs.org:443']);
  assert.equal(d.status, 'new');
  assert.equal(d.suppressRuleId, undefined);
});

test('stepsecurity: direct IP, object parent, suppressed / resolved, other types', () => {
  const a = new StepSecurityAdapter();
  const d = det(
    a.parse(
      {
        ...SS_DETECTION,
        id: 42,
        detection_id: undefined,
        type: 'Suspicious-Network-Call',
        endpoint: '100.64.12.9:41641',
        direct_ip_address: '100.64.12.9',
        tool: { name: 'tailscaled', sha256: SHA_BASH, parent: { name: 'sudo', sha256: 'x', parent: null } },
        is_suppressed: true,
        suppress_rule_id: 'rule-77',
      },
      rc(),
    ),
  );
  assert.equal(d.externalId, '42');
  assert.equal(d.type, 'Suspicious-Network-Call');
  assert.equal(d.ip, '100.64.12.9');
  assert.equal(d.host, undefined);
  assert.equal(d.directIp, '100.64.12.9');
  assert.equal(d.port, 41641);
  assert.equal(d.process.parent?.name, 'sudo');
  assert.equal(d.status, 'suppressed');
  assert.equal(d.suppressRuleId, 'rule-77');
  assert.equal(det(a.parse({ ...SS_DETECTION, is_resolved: true, is_suppressed: true }, rc())).status, 'resolved');
  // default type, null parent, tool-less secret detection
  const d2 = det(a.parse({ ...SS_DETECTION, detection_id: undefined, tool: { name: 'curl', sha256: '', parent: null } }, rc()));
  assert.equal(d2.type, 'New-Outbound-Network-Call');
  assert.equal(d2.process.parent, null);
  assert.equal(d2.process.sha256, undefined);
  const d3 = det(a.parse({ ...SS_DETECTION, detection_id: 'Secret-In-Build-Log', endpoint: undefined, tool: null }, rc()));
  assert.equal(d3.endpoint, '');
  assert.equal(d3.process.name, 'Unknown');
});

test('stepsecurity: bad input', () => {
  const a = new StepSecurityAdapter();
  rejects(a, { ...SS_DETECTION, id: undefined }, 'missing-field', 'id');
  rejects(a, { ...SS_DETECTION, id: true }, 'wrong-type', 'id');
  rejects(a, { ...SS_DETECTION, endpoint: undefined }, 'missing-field', 'endpoint');
  rejects(a, { ...SS_DETECTION, endpoint: 443 }, 'wrong-type', 'endpoint');
  rejects(a, { ...SS_DETECTION, timestamp: 'soon' }, 'invalid-value', 'timestamp');
  rejects(a, { ...SS_DETECTION, direct_ip_address: 'not-an-ip' }, 'invalid-value', 'direct_ip_address');
  rejects(a, { ...SS_DETECTION, tool: { name: 'node', parent: 7 } }, 'wrong-type', 'tool.parent');
  assert.equal((a.parse({ ...SS_DETECTION, tool: { sha256: SHA_CURL } }, rc()) as { detection: ImportedDetection }).detection.process.name, 'Unknown');
  rejects(a, { ...SS_DETECTION, expected_outbound_connections: 'github.com:443' }, 'wrong-type', 'expected_outbound_connections');
  rejects(a, { ...SS_DETECTION, expected_outbound_connections: ['a:1', 5] }, 'wrong-type', 'expected_outbound_connections.1');
  rejects(a, { ...SS_DETECTION, is_suppressed: 'yes' }, 'wrong-type', 'is_suppressed');
  rejects(a, { ...SS_DETECTION, owner: undefined }, 'missing-context', 'owner');
  rejects(a, { ...SS_DETECTION, workflow_path: undefined }, 'missing-context', 'workflow_path');
  rejects(a, { data: { detections: [SS_DETECTION] } }, 'invalid-value', 'data.detections');
  // a host that is no DNS name is refused: kept raw, it would slip past the risky-destination check
  for (const endpoint of ['gist.githubusercontent.com..:443', '*.github.com:443', 'exa mple.com:443', 'b\u00fc cher.example:443']) {
    rejects(a, { ...SS_DETECTION, endpoint }, 'invalid-value', 'endpoint');
  }
  // a name outside ASCII is its punycode, as URL parsers resolve it
  const idn = a.parse({ ...SS_DETECTION, endpoint: 'b\u00fccher.example:443' }, rc()) as { detection: ImportedDetection };
  assert.deepEqual([idn.detection.endpoint, idn.detection.host], ['xn--bcher-kva.example:443', 'xn--bcher-kva.example']);
  const spaced = a.parse({ ...SS_DETECTION, endpoint: 'WebHook.Site. :443' }, rc()) as { detection: ImportedDetection };
  assert.deepEqual([spaced.detection.endpoint, spaced.detection.host], ['webhook.site:443', 'webhook.site']);
  // a type in another case is the type; one no filter, rule or analysis knows is refused, not stored apart
  const cased = a.parse({ ...SS_DETECTION, detection_id: ' new-outbound-network-CALL ' }, rc()) as { detection: ImportedDetection };
  assert.equal(cased.detection.type, 'New-Outbound-Network-Call');
  rejects(a, { ...SS_DETECTION, detection_id: 'Exfil-Whatever' }, 'invalid-value', 'detection_id');
});

// ---------------------------------------------------------------------------------------------
// detectFormat / adapterFor / timestamps

test('detectFormat recognises each format', () => {
  assert.equal(detectFormat(nativeRecord()), 'native');
  assert.equal(detectFormat(hrRecord()), 'harden-runner');
  assert.equal(detectFormat({ context: { owner: 'acme' } }), 'harden-runner');
  assert.equal(detectFormat({ context: { owner: 'acme' }, format: 'native' }), 'native');
  assert.equal(detectFormat(ECS_NESTED), 'ecs');
  assert.equal(detectFormat(ECS_DOTTED), 'ecs');
  assert.equal(detectFormat({ 'destination.ip': '1.2.3.4', 'destination.port': 443 }), 'ecs');
  assert.equal(detectFormat(SS_DETECTION), 'stepsecurity');
  assert.equal(detectFormat({ data: { detections: [] } }), 'stepsecurity');
  assert.equal(detectFormat([SS_DETECTION]), 'stepsecurity');
  // a detection with no endpoint, by its own detection id and the API's state flags
  assert.equal(detectFormat({ id: 'd-1', detection_id: 'Secret-In-Build-Log', is_resolved: false }), 'stepsecurity');
  assert.equal(detectFormat({ detection_id: 'x' }), null);
  assert.equal(detectFormat({ hello: 'world' }), null);
  assert.equal(detectFormat('text'), null);
  assert.equal(detectFormat(null), null);
  assert.equal(detectFormat([]), null);
});

test('adapterFor returns a fresh adapter of the right format', () => {
  for (const f of ['native', 'harden-runner', 'ecs', 'stepsecurity'] as const) {
    const a = adapterFor(f);
    assert.equal(a.format, f);
    assert.notEqual(adapterFor(f), a);
  }
});

test('RFC 3339 parser agrees with Date.parse and rejects non-RFC forms', () => {
  for (const s of ['2025-03-14T10:15:30Z', '2024-02-29T23:59:59.999+05:30', '1999-12-31t00:00:00.1-08:00', '2025-03-14 10:15:30.123456Z', '0099-01-01T00:00:00Z']) {
    assert.equal(parseRfc3339(s), Date.parse(s.replace(' ', 'T').replace('t', 'T')), s);
  }
  for (const s of ['2025-03-14', '2025-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2025-03-14T24:00:00Z', '2025-03-14T10:15:30.Z', '2025-03-14T10:15:30Zjunk', 'March 14 2025 10:15:30 GMT']) {
    assert.ok(Number.isNaN(parseRfc3339(s)), s);
  }
  assert.equal(epochToMs(1741946400), 1741946400000);
  assert.equal(epochToMs(1741946400000), 1741946400000);
  assert.equal(epochToMs(1741946400000000000), 1741946400000);
  // past year 9999 an epoch is no date: stored, it broke every later listing of the tenant
  assert.equal(epochToMs(253402300799999e6), 253402300799999, 'the last instant of 9999, in nanoseconds');
  for (const n of [253402300800001e6, 1e30, 9e21, Number.MAX_VALUE]) assert.ok(Number.isNaN(epochToMs(n)), String(n));
});

test('an epoch timestamp past year 9999 is rejected at its field, in every format that reads epochs', () => {
  const invalidTime = (field: string) => (e: unknown) => e instanceof RecordError && e.reason === 'invalid-value' && e.field === field;
  for (const t of [1e30, '9000000000000000000000', 253402300800001e6]) {
    assert.throws(() => new HardenRunnerAdapter().parse(hrRecord({ timestamp: t }), rc(HR_CTX)), invalidTime('timestamp'), String(t));
    assert.throws(() => new EcsAdapter().parse({ ...ECS_NESTED, '@timestamp': t }, rc()), invalidTime('@timestamp'), String(t));
  }
  // an offset can carry a four-digit year past either end
  for (const t of ['9999-12-31T23:59:59-01:00', '0000-01-01T00:00:00+01:00']) {
    assert.throws(() => new HardenRunnerAdapter().parse(hrRecord({ timestamp: t }), rc(HR_CTX)), invalidTime('timestamp'), t);
    assert.throws(() => new NativeAdapter().parse(nativeRecord({ timestamp: t }), rc()), invalidTime('timestamp'), t);
  }
  assert.equal(call(new NativeAdapter().parse(nativeRecord({ timestamp: '9999-12-31T23:59:59+01:00' }), rc())).timestamp, Date.UTC(9999, 11, 31, 22, 59, 59));
  // the native format takes RFC 3339 strings only
  assert.throws(() => new NativeAdapter().parse(nativeRecord({ timestamp: '9000000000000000000000' }), rc()), (e: unknown) => e instanceof RecordError && e.field === 'timestamp');
});

test('native: a sha256 that is not 64 hex digits is no hash, for the process and its parents, and is counted', () => {
  const r = rc();
  const ev = call(
    new NativeAdapter().parse(
      nativeRecord({
        process: {
          name: 'tailscaled',
          path: '/tmp/.x/tailscaled',
          sha256: 'open /tmp/.x/tailscaled: no such file or directory',
          parent: { name: 'bash', sha256: 'sha256:' + 'AB'.repeat(32), parent: { name: 'sudo', sha256: 'Unknown' } },
        },
      }),
      r,
    ),
  );
  assert.equal(ev.process.sha256, undefined, 'Go error text is no binary identity');
  assert.equal(ev.process.parent?.sha256, 'ab'.repeat(32), 'a prefixed upper-case digest is a hash, in lower case');
  assert.equal(ev.process.parent?.parent?.sha256, undefined);
  assert.deepEqual(r.notes, { 'hash-not-a-hash': 1 });
  assert.throws(() => new NativeAdapter().parse(nativeRecord({ process: { name: 'curl', sha256: 42 } }), rc()), /process\.sha256/);
});

test('ecs: network.direction as an array (any ECS field may be one) decides only when all its values agree', () => {
  const a = new EcsAdapter();
  const notes = (network: unknown) => {
    const ctx = rc();
    const out = a.parse({ ...ECS_NESTED, network: { transport: 'tcp', direction: network } }, ctx);
    return [out.kind, ctx.notes];
  };
  assert.deepEqual(notes(['egress']), ['call', {}]);
  assert.deepEqual(notes(['ingress', 'inbound']), ['skip', { 'skipped-not-egress': 1 }]);
  // contradicting or unknown values: a call, counted as uncertain, never skipped
  assert.deepEqual(notes(['ingress', 'egress']), ['call', { 'direction-uncertain': 1 }]);
  assert.deepEqual(notes(['inbound', 'unknown']), ['call', { 'direction-uncertain': 1 }]);
  assert.deepEqual(notes([]), ['call', {}]);
  rejects(a, { ...ECS_NESTED, network: { direction: ['egress', 7] } }, 'wrong-type', 'network.direction');
  rejects(a, { ...ECS_NESTED, network: { direction: { way: 'out' } } }, 'wrong-type', 'network.direction');
});
