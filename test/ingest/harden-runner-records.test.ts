import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFile } from './parse-helper.js';
import { runCli, tempDir } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';

// Shapes: step-security/agent apiclient.go (NetworkConnection, DNSRecord, Tool) and eventhandler.go
// (getProgramChecksum returns the error text as the checksum). See test/fixtures/README.md.
const FIXTURE = 'test/fixtures/harden-runner/agent-records.log';
const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest } = eachStore();

test('agent file events ({filetype, timestamp, tool}: a process wrote a file) are skipped and counted, not rejected as calls', async () => {
  const r = await parseFile('test/fixtures/harden-runner/file-events.log');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'skipped-not-network': 2 });
  assert.deepEqual(r.calls.map((c) => [c.process.name, c.domain, c.port]), [['node', 'registry.npmjs.org', 443]]);
});

test('agent records: DNS records name later direct connections; zero Tool, bad hash and zero time are kept and counted', async () => {
  const r = await parseFile(FIXTURE);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'dns-records': 2, 'named-by-dns': 1, 'hash-not-a-hash': 1, 'zero-time-took-previous': 1 });
  assert.equal(r.calls.length, 5);
  const [pypi, files, dropped, zeroTime, mapped] = r.calls;
  // the agent named 151.101.64.223 pypi.org through its DNS proxy: not a direct-IP call
  assert.equal(pypi!.ip, '151.101.64.223');
  assert.equal(pypi!.domain, 'pypi.org');
  // "open /usr/bin/pip: no such file or directory" is no hash
  assert.equal(pypi!.process.parent!.name, 'pip');
  assert.equal(pypi!.process.parent!.sha256, undefined);
  assert.equal(files!.domain, 'files.pythonhosted.org');
  // Tool{} -> the Unknown tool, with its policy verdict
  assert.equal(dropped!.process.name, 'Unknown');
  assert.equal(dropped!.process.sha256, undefined);
  assert.equal(dropped!.status, 'blocked');
  assert.equal(dropped!.domain, undefined);
  assert.equal(dropped!.matchedPolicy, 'block');
  assert.equal(dropped!.reason, 'ip address not in allowed endpoints');
  // Go's zero time takes the time of the record before it, never year 1
  assert.equal(new Date(zeroTime!.timestamp).toISOString(), '2026-11-02T11:00:02.700Z');
  assert.equal(zeroTime!.ip, '2606:50c0:8000::154');
  assert.equal(zeroTime!.process.sha256, '8d2e4f6a0b1c3d5e7f9a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e');
  // an IPv4-mapped address is its IPv4 address; nothing resolved it, so it stays a direct-IP call
  assert.equal(mapped!.ip, '140.82.112.4');
  assert.equal(mapped!.domain, undefined);
});

test('a DNS record names IPs only for the job run it belongs to', async () => {
  const f = join(tmp.dir, 'two-jobs.log');
  const ctx = (job: string) => JSON.stringify({ context: { owner: 'acme', repo: 'api', workflow: 'ci.yml', job, run_id: 5 } });
  writeFileSync(f, [
    ctx('build'),
    JSON.stringify({ domainName: 'example.org.', ipAddress: '93.184.216.34', timestamp: '2026-11-02T10:00:00Z' }),
    ctx('test'),
    JSON.stringify({ ipAddress: '93.184.216.34', port: '443', timestamp: '2026-11-02T10:00:01Z', tool: { name: 'curl', sha256: '' }, status: 'Allowed' }),
    ctx('build'),
    JSON.stringify({ ipAddress: '93.184.216.34', port: '443', timestamp: '2026-11-02T10:00:02Z', tool: { name: 'curl', sha256: '' }, status: 'Allowed' }),
  ].join('\n'));
  const r = await parseFile(f);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.calls.map((c) => [c.ctx.job, c.domain ?? null]), [['test', null], ['build', 'example.org']]);
});

test('DNS records give a shared address two names: a direct connection is named by the risky one, not the last', async () => {
  const f = join(tmp.dir, 'shared-cdn.log');
  writeFileSync(f, [
    JSON.stringify({ context: { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: 6 } }),
    JSON.stringify({ domainName: 'gist.githubusercontent.com.', ipAddress: '185.199.108.133', timestamp: '2026-11-02T10:00:00Z' }),
    JSON.stringify({ domainName: 'raw.githubusercontent.com.', ipAddress: '185.199.108.133', timestamp: '2026-11-02T10:00:01Z' }),
    JSON.stringify({ ipAddress: '185.199.108.133', port: '443', timestamp: '2026-11-02T10:00:02Z', tool: { name: 'node', sha256: '' }, status: 'Allowed' }),
  ].join('\n'));
  const r = await parseFile(f);
  assert.deepEqual(r.errors, []);
  // the agent's record names no process, so which lookup this call followed is unknown; the lookup
  // of gist is a call of its own, by the Unknown tool (test/ingest/risky-lookups.test.ts)
  assert.deepEqual(r.calls.map((c) => [c.process.name, c.domain, c.port]), [['Unknown', 'gist.githubusercontent.com', 53], ['node', 'gist.githubusercontent.com', 443]]);
});

test('a connection the agent named after the last answer for its address is named by a risky answer the run had for it', async () => {
  const f = join(tmp.dir, 'named-after-last.log');
  const ctx = (run: number) => JSON.stringify({ context: { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: run } });
  const call = (domainName: string) =>
    JSON.stringify({ ipAddress: '185.199.108.133', port: '443', domainName, timestamp: '2026-11-02T10:00:02Z', tool: { name: 'node', sha256: '' }, status: 'Allowed' });
  writeFileSync(f, [
    ctx(7),
    JSON.stringify({ domainName: 'gist.githubusercontent.com.', ipAddress: '185.199.108.133', timestamp: '2026-11-02T10:00:00Z' }),
    JSON.stringify({ domainName: 'raw.githubusercontent.com.', ipAddress: '185.199.108.133', timestamp: '2026-11-02T10:00:01Z' }),
    // the agent's cache gives the last answer: raw
    call('raw.githubusercontent.com.'),
    // another run, where nothing looked gist up: raw is raw
    ctx(8),
    JSON.stringify({ domainName: 'raw.githubusercontent.com.', ipAddress: '185.199.108.133', timestamp: '2026-11-02T10:00:01Z' }),
    call('raw.githubusercontent.com.'),
  ].join('\n'));
  const r = await parseFile(f);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.calls.filter((c) => c.port === 443).map((c) => [c.ctx.runId, c.domain]), [['7', 'gist.githubusercontent.com'], ['8', 'raw.githubusercontent.com']]);
  assert.deepEqual(r.calls.filter((c) => c.port === 53).map((c) => [c.ctx.runId, c.domain]), [['7', 'gist.githubusercontent.com']], 'the lookup of gist');
  assert.equal(r.notes['renamed-risky-by-dns'], 1);
});

test('Go zero time on the first record has no position to take: rejected as zero-time', async () => {
  const f = join(tmp.dir, 'zero-first.log');
  writeFileSync(f, JSON.stringify({ ipAddress: '140.82.112.3', port: '443', timestamp: '0001-01-01T00:00:00Z', tool: { name: 'git', sha256: '' } }) + '\n');
  const r = await parseFile(f, { owner: 'a', repo: 'b', workflow: 'w', job: 'j', runId: '1' });
  assert.deepEqual(r.errors.map((e) => e.reason), ['zero-time']);
  assert.equal(r.calls.length, 0);
});

storeTest('--strict keeps a log with the agent zero Tool; the stored blocked call shows why', async ({ db }) => {
  const res = runCli(['ingest', FIXTURE, '--db', db, '--strict', '--learning-runs', '0', '--json']);
  assert.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { sources: { stored: boolean; rejected: number; notes: Record<string, number> }[] };
  assert.equal(out.sources[0]!.stored, true);
  assert.equal(out.sources[0]!.rejected, 0);
  assert.equal(out.sources[0]!.notes['dns-records'], 2);
  const list = runCli(['detections', 'list', '--db', db, '--json']);
  assert.equal(list.status, 0, list.stderr);
  const dets = (JSON.parse(list.stdout) as { detections: { detection_id: string; endpoint: string; matched_policy?: string; reason?: string; tool: { name: string } }[] }).detections;
  const blocked = dets.find((d) => d.detection_id === 'Domain-Blocked');
  assert.ok(blocked, JSON.stringify(dets));
  assert.equal(blocked.endpoint, '45.148.10.81:8443');
  assert.equal(blocked.tool.name, 'Unknown');
  assert.equal(blocked.matched_policy, 'block');
  assert.equal(blocked.reason, 'ip address not in allowed endpoints');
  const pypi = dets.find((d) => d.endpoint === 'pypi.org:443');
  assert.ok(pypi, 'the DNS-named connection is stored under its domain');
  assert.equal(pypi.matched_policy, 'audit');
  assert.equal(pypi.reason, undefined);
});
