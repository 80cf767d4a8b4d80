import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EcsAdapter } from '../../src/ingest/adapters/ecs.js';
import { HardenRunnerAdapter } from '../../src/ingest/adapters/harden-runner.js';
import { RecordError } from '../../src/ingest/adapters/types.js';
import type { AdapterOutput, RecordContext } from '../../src/ingest/adapters/types.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { cliResult } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';

/**
 * A DNS lookup of a risky name is a contact with it: DNS-callback services (oastify, oast.fun,
 * interact.sh) take the data as the name itself, and no connection need follow. Harden-Runner
 * DNSRecords and ECS DNS events (Sysmon 22, Packetbeat) only named later calls, so such a lookup left
 * nothing. Now it is a call to the name on UDP 53 by the asking process (the Unknown tool when the
 * record names none), raised and never suppressed; its answers still name later calls.
 */

const CTX = { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', runId: '7700123', runAttempt: 1 };
const rc = (): RecordContext => ({ source: 'dns.log', line: 1, tenant: 'default', defaults: CTX, notes: {} });

function lookupCall(out: AdapterOutput): NetworkCallEvent & { names?: unknown } {
  assert.equal(out.kind, 'call', JSON.stringify(out));
  const o = out as { event: NetworkCallEvent; names?: unknown };
  return { ...o.event, names: o.names };
}

test('Harden-Runner: a DNSRecord of a risky name is a call by the Unknown tool to it on UDP 53, and still names its IP; any other stays a DNS record', () => {
  const ctx = rc();
  const hr = new HardenRunnerAdapter();
  const ev = lookupCall(hr.parse({ domainName: 'ZXhmaWw.abc123.OASTIFY.com.', ipAddress: '54.77.139.23', timestamp: '2026-11-02T11:00:01.100Z' }, ctx));
  assert.deepEqual(
    { domain: ev.domain, ip: ev.ip, port: ev.port, protocol: ev.protocol, process: ev.process.name, status: ev.status, timestamp: ev.timestamp },
    { domain: 'zxhmaww.abc123.oastify.com', ip: undefined, port: 53, protocol: 'udp', process: 'Unknown', status: 'allowed', timestamp: Date.parse('2026-11-02T11:00:01.100Z') },
  );
  assert.deepEqual(ev.names, { tenant: 'default', ctx: ev.ctx, domain: 'zxhmaww.abc123.oastify.com', ips: ['54.77.139.23'] });
  assert.deepEqual(ctx.notes, { 'risky-lookup': 1 });
  assert.equal(hr.parse({ domainName: 'github.com.', ipAddress: '140.82.112.3', timestamp: '2026-11-02T11:00:02Z' }, ctx).kind, 'dns');
  // unanswered (no ipAddress, or an empty one): a lookup of a risky name is the contact all the same,
  // and names no address; of any other name it is still a record missing its answer
  for (const answer of [{}, { ipAddress: '' }]) {
    const lone = lookupCall(hr.parse({ domainName: 'data123.x.oastify.com.', timestamp: '2026-11-02T11:00:03Z', ...answer }, ctx));
    assert.deepEqual([lone.domain, lone.port, lone.process.name, lone.names], ['data123.x.oastify.com', 53, 'Unknown', undefined], JSON.stringify(answer));
  }
  assert.deepEqual(ctx.notes, { 'risky-lookup': 3 });
  assert.throws(() => hr.parse({ domainName: 'github.com.', timestamp: '2026-11-02T11:00:04Z' }, ctx), (e: unknown) => e instanceof RecordError && e.field === 'ipAddress');
});

test('ECS: a lookup of a risky name is a call by the asking process (Sysmon 22), or by the Unknown tool (no process), answered or not', () => {
  const base = { '@timestamp': '2026-11-02T14:00:00.120Z', labels: { github_repository: 'acme/desktop', github_workflow: 'w.yml', github_job: 'package', github_run_id: '990001' } };
  const cases: [Record<string, unknown>, string][] = [
    // Sysmon event 22 with its process, answered
    [{ ...base, event: { code: '22', provider: 'Microsoft-Windows-Sysmon', category: ['network'] }, dns: { question: { name: 'c2VjcmV0.x1y2z3.oastify.com' }, resolved_ip: ['54.77.139.23'] }, process: { pid: 6012, name: 'nslookup.exe' } }, 'nslookup.exe'],
    // the same with no answer: the question alone carried the data
    [{ ...base, event: { code: '22', provider: 'Microsoft-Windows-Sysmon', category: ['network'] }, dns: { question: { name: 'c2VjcmV0.x1y2z3.oastify.com' } }, process: { pid: 6012, name: 'nslookup.exe' } }, 'nslookup.exe'],
    // Packetbeat: the wire, a resolver as destination, no process
    [{ ...base, event: { category: ['network'], type: ['protocol'] }, network: { protocol: 'dns', direction: 'egress', transport: 'udp' }, destination: { ip: '10.0.0.2', port: 53 }, dns: { question: { name: 'webhook.site' }, resolved_ip: ['46.4.105.116'] } }, 'Unknown'],
    // a query the asking process sent to a resolver (Defend, Packetbeat with process enrichment):
    // it was stored only as the process's call to the resolver, and the contact with the name was lost
    [{ ...base, event: { category: ['network'], type: ['protocol'] }, network: { protocol: 'dns', direction: 'egress', transport: 'udp' }, destination: { ip: '8.8.8.8', port: 53 }, dns: { question: { name: 'c2exfil.oastify.com' } }, process: { pid: 7, name: 'node', executable: '/usr/bin/node' } }, 'node'],
    [{ ...base, event: { category: ['network'], type: ['protocol'] }, network: { protocol: 'dns', direction: 'egress', transport: 'udp' }, destination: { ip: '8.8.8.8', port: 53 }, dns: { question: { name: 'gist.githubusercontent.com' }, resolved_ip: ['185.199.108.133'] }, process: { pid: 7, name: 'node' } }, 'node'],
  ];
  for (const [doc, asker] of cases) {
    const ctx = rc();
    const ev = lookupCall(new EcsAdapter().parse(doc, ctx));
    assert.equal(ev.domain, (doc.dns as { question: { name: string } }).question.name.toLowerCase());
    assert.deepEqual([ev.port, ev.protocol, ev.process.name, ev.status], [53, 'udp', asker, 'allowed']);
    assert.equal(ctx.notes['risky-lookup'], 1);
  }
});

const { storeTest } = eachStore();

storeTest('risky lookups through the CLI: raised as new detections, evidence against a daemon-named asker, and no rule may hide them', async (at) => {
  const hr = join(at.dir, 'hr-dns.log');
  writeFileSync(hr, [
    { context: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: 7700123, run_attempt: 1, job_id: 61 } },
    { domainName: 'ghp-aaaabbbb.c9x7k2.oast.fun.', ipAddress: '178.128.16.97', timestamp: '2026-11-02T11:00:01.000Z' },
    { domainName: 'github.com.', ipAddress: '140.82.112.3', timestamp: '2026-11-02T11:00:01.050Z' },
  ].map((l) => JSON.stringify(l)).join('\n') + '\n');
  const ecs = join(at.dir, 'ecs-dns.ndjson');
  const labels = { github_repository: 'acme/desktop', github_workflow: 'w.yml', github_job: 'package', github_run_id: '990001' };
  writeFileSync(ecs, JSON.stringify({
    '@timestamp': '2026-11-02T14:00:00.220Z', event: { code: '22', provider: 'Microsoft-Windows-Sysmon', category: ['network'] },
    dns: { question: { name: 'webhook.site' }, resolved_ip: ['46.4.105.116'] },
    process: { pid: 6013, executable: 'C:\\t\\tailscaled.exe', name: 'tailscaled.exe', hash: { sha256: 'e'.repeat(64) } }, labels,
  }) + '\n');
  for (const [file, format] of [[hr, 'harden-runner'], [ecs, 'ecs']]) {
    const r = await cliResult(['ingest', file, '--db', at.db, '--format', format!, '--learning-runs', '5', '--json']);
    assert.equal(r.status, 0, r.stderr);
  }
  const l = await cliResult(['detections', 'list', '--db', at.db, '--json', '--limit', '100']);
  assert.equal(l.status, 0, l.stderr);
  const ds = (JSON.parse(l.stdout) as { detections: { endpoint: string; tool: { normalized_name: string }; status: string }[] }).detections;
  assert.deepEqual(
    ds.map((d) => `${d.endpoint} ${d.tool.normalized_name} ${d.status}`).sort(),
    ['ghp-aaaabbbb.c9x7k2.oast.fun:53 unknown new', 'webhook.site:53 tailscaled new'],
    'raised during learning runs too: a risky destination never joins a baseline',
  );
  const a = await cliResult(['analyze', '--db', at.db, '--json', '--min-count', '1']);
  assert.equal(a.status, 0, a.stderr);
  const ts = (JSON.parse(a.stdout) as { processes: { process: string; name_impersonation_suspected: boolean; suggested_rule: unknown }[] }).processes.find((p) => p.process === 'tailscaled')!;
  assert.equal(ts.name_impersonation_suspected, true);
  assert.equal(ts.suggested_rule, null);
  for (const cond of ['process=Unknown', 'process=tailscaled']) {
    const c = await cliResult(['rules', 'create', '--db', at.db, '--condition', cond, '--yes']);
    assert.equal(c.status, 4, `${cond}: ${c.stdout}${c.stderr}`);
  }
});
