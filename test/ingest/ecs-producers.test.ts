import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseFile } from './parse-helper.js';
import { tempDir } from '../helpers.js';
import type { NetworkCallEvent, ProcessInfo } from '../../src/domain/types.js';

// Shapes: elastic/endpoint-package network sample_event.json (Defend), elastic/beats auditbeat
// system/socket _meta/data.json, elastic/integrations windows sysmon_operational pipeline tests.
// See test/fixtures/README.md.

function chain(p: ProcessInfo): string[] {
  const out: string[] = [];
  for (let q = p.parent ?? null; q; q = q.parent ?? null) out.push(q.name);
  return out;
}

test('Elastic Defend: parents resolved from earlier process events, unknown ones stored as Unknown; DNS names the IP; inbound skipped', async () => {
  const r = await parseFile('test/fixtures/ecs/defend-network.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'process-events': 2, 'dns-records': 1, 'named-by-dns': 1, 'skipped-not-egress': 1 });
  assert.equal(r.calls.length, 3);
  const [curl, node, firewall] = r.calls;
  assert.equal(curl!.domain, 'downloads.example-cdn.net');
  assert.equal(curl!.ip, '203.0.113.51');
  assert.equal(curl!.process.name, 'curl');
  // the process event gave curl's hash, which the network event lacks
  assert.equal(curl!.process.sha256, '4f2a0c8e6a1b5d3c9e7f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d');
  assert.deepEqual(chain(curl!.process), ['bash', 'Unknown']);
  assert.equal(curl!.process.parent!.path, '/usr/bin/bash');
  assert.equal(curl!.process.parent!.sha256, '9c1b7e5d3f0a2c4e6b8d0f1e3a5c7b9d2f4e6a8c0b1d3f5e7a9c2b4d6f8e0a1c');
  // no process event for node's parent: the chain is unknown, not empty
  assert.equal(node!.process.name, 'node');
  assert.deepEqual(chain(node!.process), ['Unknown']);
  assert.equal(node!.domain, undefined);
  // a firewall drop with no process keeps the Unknown tool
  assert.equal(firewall!.process.name, 'Unknown');
  assert.equal(firewall!.status, 'blocked');
  assert.equal(firewall!.port, 4444);
  assert.ok(r.calls.every((c) => c.process.name !== 'sshd'), 'connection_accepted is not a call');
});

test('Auditbeat system/socket: only egress sockets are calls; a network event with no destination is skipped, not rejected', async () => {
  const r = await parseFile('test/fixtures/ecs/auditbeat-socket.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'skipped-not-egress': 1, 'skipped-no-destination': 1 });
  assert.deepEqual(r.calls.map((c) => [c.process.name, c.ip, c.port]), [['git-remote-https', '140.82.112.3', 443]]);
});

test('Sysmon: event 22 names the IPs (any IPv6 spelling) of the later event 3 connection; a query with no answer is skipped', async () => {
  const r = await parseFile('test/fixtures/ecs/sysmon-dns.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'dns-records': 1, 'named-by-dns': 1, 'skipped-no-destination': 1 });
  assert.equal(r.calls.length, 1);
  const c = r.calls[0]!;
  assert.equal(c.ip, '2001:db8::80');
  assert.equal(c.domain, 'update.example-tools.io');
  assert.equal(c.process.name, 'python.exe');
  assert.equal(c.ctx.jobId, '77');
});

test('the existing Auditbeat egress fixture still reads as two calls', async () => {
  const r = await parseFile('test/fixtures/ecs/auditbeat-egress.ndjson');
  assert.deepEqual(r.errors, []);
  assert.equal(r.calls.length, 2);
});

test('Packetbeat DNS (resolver as destination, no process) and an internal lookup name the later connections; neither is a call', async () => {
  const r = await parseFile('test/fixtures/ecs/packetbeat-dns.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'dns-records': 2, 'named-by-dns': 2 });
  assert.deepEqual(
    r.calls.map((c) => [c.process.name, c.domain, c.ip, c.port]),
    [
      ['curl', 'objects.example-mirror.net', '203.0.113.50', 443],
      ['curl', 'api.example-status.io', '203.0.113.60', 443],
    ],
  );
});

test('an Auditbeat flow of a process Auditbeat did not see start (only process.pid, or no process) is a call by the Unknown tool, counted, not rejected', async () => {
  const r = await parseFile('test/fixtures/ecs/auditbeat-flow-no-process.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'process-unknown': 2, 'process-name-from-executable': 1 });
  assert.deepEqual(
    r.calls.map((c) => [c.process.name, c.process.path, c.domain, c.ip, c.port]),
    [
      ['Unknown', undefined, 'webhook.site', '46.4.105.116', 443],
      ['Unknown', undefined, undefined, '203.0.113.77', 8443],
      // comm, cut to 15 bytes: the executable names it
      ['git-remote-https', '/usr/lib/git-core/git-remote-https', undefined, '140.82.112.3', 443],
    ],
  );
});

test('an auditd process is named by its executable, not by the comm it can set itself or that the kernel cut to 15 bytes', async () => {
  const r = await parseFile('test/fixtures/ecs/auditd-comm.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'process-name-from-executable': 2 });
  assert.deepEqual(
    r.calls.map((c) => [c.process.name, c.process.path, c.ip]),
    [
      // calling itself curl from /tmp: a rule on curl no longer covers it
      ['payload', '/tmp/.cache/payload', '198.51.100.20'],
      ['twingate-connector', '/usr/bin/twingate-connector', '3.33.229.51'],
      // no executable: the name given
      ['node', undefined, '104.16.2.35'],
    ],
  );
});

test('Elastic Defend on Linux: a lookup sent to the local resolver stub, with no network.direction, names later calls and is none itself; a loopback connection is none', async () => {
  const r = await parseFile('test/fixtures/ecs/defend-linux-dns.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'dns-records': 1, 'named-by-dns': 1, 'skipped-not-egress': 1, 'risky-lookup': 1 });
  assert.deepEqual(
    r.calls.map((c) => [c.process.name, c.domain, c.ip, c.port, c.protocol]),
    [
      ['curl', 'objects.example-mirror.net', '203.0.113.50', 443, 'tcp'],
      // a lookup of a risky name stays a contact with it, wherever the query went
      ['node', 'gist.githubusercontent.com', undefined, 53, 'udp'],
    ],
  );
});

test('a direction that does not say "out" (unknown, external, internal) is a call, counted; only inbound and loopback are skipped', async () => {
  const r = await parseFile('test/fixtures/ecs/flow-directions.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, { 'direction-uncertain': 3, 'skipped-not-egress': 2 });
  assert.deepEqual(
    r.calls.map((c) => [c.process.name, c.domain, c.ip, c.port]),
    [
      ['node', 'webhook.site', '46.4.105.116', 443],
      ['python3', undefined, '203.0.113.70', 443],
      ['curl', undefined, '169.254.169.254', 80],
    ],
  );
});

test('a shared address is named by what the calling process looked up, never away from a risky name; Sysmon reverse names are not trusted', async () => {
  const r = await parseFile('test/fixtures/ecs/sysmon-shared-cdn.ndjson');
  assert.deepEqual(r.errors, []);
  // upd.exe's lookup of gist is a call of its own (test/ingest/risky-lookups.test.ts)
  assert.deepEqual(r.notes, { 'dns-records': 2, 'risky-lookup': 1, 'named-by-dns': 3, 'reverse-dns-name-ignored': 1 });
  assert.deepEqual(lookups(r.calls), [['upd.exe', 'gist.githubusercontent.com']]);
  assert.deepEqual(
    connections(r.calls).map((c) => [c.process.name, c.domain, c.ip]),
    [
      // it looked up gist: neither git's lookup of raw on the same addresses nor its own lookup of
      // raw afterwards renames its call
      ['upd.exe', 'gist.githubusercontent.com', '185.199.108.133'],
      ['git-remote-https.exe', 'raw.githubusercontent.com', '185.199.109.133'],
      // no lookup of its own: the risky name among the run's answers, not the last one
      ['pwsh.exe', 'gist.githubusercontent.com', '185.199.110.133'],
      // Sysmon's reverse name is the address owner's word: stored by the address, unless it is risky
      ['node.exe', undefined, '203.0.113.90'],
      ['curl.exe', 'webhook.site', '46.4.105.116'],
    ],
  );
});

test('a process that looked up a risky name keeps it when the producer names its call after another process\'s later lookup', async () => {
  // Elastic Defend / Packetbeat name a connection from the host's DNS cache, where the last answer
  // wins: node looked up gist, git then looked up raw on the same address, and node's call arrives
  // named raw. Its own lookup says where it went.
  const t = tempDir();
  try {
    const labels = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: '1' };
    const ev = (ts: string, rest: Record<string, unknown>) => JSON.stringify({ '@timestamp': `2026-11-02T10:00:0${ts}Z`, event: { category: ['network'] }, labels, ...rest });
    const lookup = (ts: string, name: string, pid: number, q: string) => ev(ts, { process: { name, pid }, dns: { question: { name: q }, resolved_ip: ['185.199.108.133'] } });
    const connect = (ts: string, name: string, pid: number, domain?: string) =>
      ev(ts, { process: { name, pid }, destination: { ...(domain ? { domain } : {}), ip: '185.199.108.133', port: 443 }, network: { direction: 'egress' } });
    const file = t.file('cache-named.ndjson', [
      lookup('1', 'node', 500, 'gist.githubusercontent.com'),
      lookup('2', 'git-remote-https', 600, 'raw.githubusercontent.com'),
      connect('3', 'node', 500, 'raw.githubusercontent.com'),
      // git's own lookup was raw: its call named raw stays raw
      connect('4', 'git-remote-https', 600, 'raw.githubusercontent.com'),
    ].join('\n') + '\n');
    const r = await parseFile(file);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(connections(r.calls).map((c) => [c.process.name, c.domain]), [['node', 'gist.githubusercontent.com'], ['git-remote-https', 'raw.githubusercontent.com']]);
    assert.deepEqual(lookups(r.calls), [['node', 'gist.githubusercontent.com']]);
    assert.equal(r.notes['renamed-risky-by-dns'], 1);
  } finally {
    t.cleanup();
  }
});

test('Sysmon as Winlogbeat ships it before any pipeline (raw winlog.event_data): the same calls as the mapped events, with hashes and parents from event 1', async () => {
  const r = await parseFile('test/fixtures/ecs/sysmon-raw.ndjson');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.notes, {
    'process-events': 2, 'risky-lookup': 1, 'named-by-dns': 1, 'reverse-dns-name-ignored': 2, 'skipped-not-egress': 1, 'skipped-not-network': 1,
  });
  // curl's lookup of gist is a call of its own (test/ingest/risky-lookups.test.ts)
  assert.deepEqual(lookups(r.calls), [['curl.exe', 'gist.githubusercontent.com']]);
  const calls = connections(r.calls);
  assert.deepEqual(
    calls.map((c) => [c.process.name, c.domain, c.ip, c.port, c.protocol, new Date(c.timestamp).toISOString()]),
    [
      // curl's own lookup (event 22, QueryResults after its CNAME) names the address; the time is UtcTime
      ['curl.exe', 'gist.githubusercontent.com', '185.199.108.133', 443, 'tcp', '2026-11-03T09:00:01.400Z'],
      // Sysmon's reverse name is the address owner's word: stored by the address
      ['node.exe', undefined, '104.16.2.35', 443, 'tcp', '2026-11-03T09:00:03.000Z'],
    ],
  );
  const curl = calls[0]!.process;
  // event 1 gave the hash (Hashes' SHA256 entry, lower-cased) and the parent, by ProcessGuid
  assert.equal(curl.path, 'C:\\Windows\\System32\\curl.exe');
  assert.equal(curl.sha256, '3e5b7d9f1a2c4e6081a3c5e7092b4d6f8a0c2e4f6071829a3b4c5d6e7f809a1b');
  assert.deepEqual(chain(curl), ['pwsh.exe', 'Unknown']);
  assert.equal(curl.parent!.sha256, '8f14e45fceea167a5a36dedd4bea2543b2c0f8a1d3e4f5061728394a5b6c7d8e');
  // no event 1 for node: no hash, and its parents unknown rather than empty
  assert.equal(calls[1]!.process.sha256, undefined);
});

test('a configured risky name flags an ECS call as the built-in ones do: a Sysmon reverse name or a TLS server name on the list names the call', async () => {
  const base = JSON.parse(readFileSync('test/fixtures/ecs/sysmon-shared-cdn.ndjson', 'utf8').split('\n')[3]!) as Record<string, unknown>;
  const reverse = { ...base, destination: { ip: '198.51.100.20', port: 443, domain: 'c2.exfil.example' } };
  const tls = { ...base, destination: { ip: '198.51.100.21', port: 443 }, tls: { client: { server_name: 'drop.exfil.example' } } };
  const t = tempDir();
  try {
    const file = t.file('calls.ndjson', [reverse, tls].map((d) => JSON.stringify(d)).join('\n') + '\n');
    const plain = await parseFile(file, {}, 'ecs');
    assert.deepEqual(plain.calls.map((c) => [c.domain, c.ip]), [[undefined, '198.51.100.20'], [undefined, '198.51.100.21']]);
    assert.deepEqual(plain.notes, { 'reverse-dns-name-ignored': 1 });
    const configured = await parseFile(file, {}, 'ecs', ['*.exfil.example']);
    assert.deepEqual(configured.calls.map((c) => [c.domain, c.ip]), [['c2.exfil.example', '198.51.100.20'], ['drop.exfil.example', '198.51.100.21']]);
    assert.deepEqual(configured.notes, { 'named-by-risky-request-name': 1 });
  } finally {
    t.cleanup();
  }
});

test('the host of url.full or url.original, or a destination.address name beside destination.ip, flags the call when risky; a path, a query or an address names nothing', async () => {
  const base = JSON.parse(readFileSync('test/fixtures/ecs/sysmon-shared-cdn.ndjson', 'utf8').split('\n')[3]!) as Record<string, unknown>;
  // a port each: calls to one name and port of one process are repeats, kept once per run
  let port = 8000;
  const at = (ip: string, extra: Record<string, unknown>) => ({ ...base, destination: { ip, port: port++ }, ...extra });
  const docs = [
    at('46.4.105.120', { url: { full: 'https://WEBHOOK.site/3f2a?token=x' } }),
    at('46.4.105.121', { url: { original: ['/upload', 'https://user@gist.githubusercontent.com:443/raw/x'] } }),
    // a proxy log's CONNECT target: no scheme, read leniently
    at('46.4.105.122', { url: { original: 'webhook.site:443' } }),
    at('46.4.105.123', { url: { full: '//webhook.site/x' } }),
    { ...base, destination: { ip: '46.4.105.124', port: 9000, address: 'webhook.site' } },
    // none of these is where the call went: filed under the address, nothing noted
    at('46.4.105.125', { url: { full: 'https://cdn.example.com/?next=webhook.site', original: '/webhook.site/x' } }),
    at('46.4.105.126', { url: { full: 'https://webhook.site@cdn.example.com/' } }),
    { ...base, destination: { ip: '46.4.105.127', port: 9001, address: '46.4.105.127' } },
  ];
  const t = tempDir();
  try {
    const r = await parseFile(t.file('urls.ndjson', docs.map((d) => JSON.stringify(d)).join('\n') + '\n'), {}, 'ecs');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.calls.map((c) => [c.domain, c.ip]), [
      ['webhook.site', '46.4.105.120'],
      ['gist.githubusercontent.com', '46.4.105.121'],
      ['webhook.site', '46.4.105.122'],
      ['webhook.site', '46.4.105.123'],
      ['webhook.site', '46.4.105.124'],
      [undefined, '46.4.105.125'],
      [undefined, '46.4.105.126'],
      [undefined, '46.4.105.127'],
    ]);
    assert.deepEqual(r.notes, { 'named-by-risky-request-name': 5 });
    // through a local proxy: to a loopback address, but naming a risky destination, it is that contact
    const proxied = await parseFile(t.file('proxied.ndjson', JSON.stringify({ ...base, destination: { ip: '127.0.0.1', port: 3128 }, url: { full: 'https://webhook.site/x' } }) + '\n'), {}, 'ecs');
    assert.deepEqual(proxied.calls.map((c) => [c.domain, c.ip, c.port]), [['webhook.site', '127.0.0.1', 3128]]);
    const local = await parseFile(t.file('local.ndjson', JSON.stringify({ ...base, destination: { ip: '127.0.0.1', port: 3128 }, url: { full: 'https://registry.npmjs.org/x' } }) + '\n'), {}, 'ecs');
    assert.deepEqual([local.calls, local.notes], [[], { 'skipped-not-egress': 1 }]);
  } finally {
    t.cleanup();
  }
});

test('a risky name listed in an array (ECS lets any field hold one) names the call: url.domain, server.domain, tls.client.server_name', async () => {
  const base = JSON.parse(readFileSync('test/fixtures/ecs/sysmon-shared-cdn.ndjson', 'utf8').split('\n')[3]!) as Record<string, unknown>;
  const docs = [
    { ...base, destination: { ip: '46.4.105.116', port: 443 }, url: { domain: ['cdn.example.com', 'webhook.site'] } },
    { ...base, destination: { ip: '46.4.105.117', port: 443 }, server: { domain: ['gist.githubusercontent.com'] } },
    { ...base, destination: { ip: '46.4.105.118', port: 8443 }, tls: { client: { server_name: [42, 'WEBHOOK.SITE.'] } } },
    // nothing risky in it: the call stays filed under its address
    { ...base, destination: { ip: '46.4.105.119', port: 443 }, url: { domain: ['cdn.example.com'] } },
  ];
  const t = tempDir();
  try {
    const r = await parseFile(t.file('arrays.ndjson', docs.map((d) => JSON.stringify(d)).join('\n') + '\n'), {}, 'ecs');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.calls.map((c) => [c.domain, c.ip]), [
      ['webhook.site', '46.4.105.116'],
      ['gist.githubusercontent.com', '46.4.105.117'],
      ['webhook.site', '46.4.105.118'], // another port: not a repeat of the first call
      [undefined, '46.4.105.119'],
    ]);
    assert.deepEqual(r.notes, { 'named-by-risky-request-name': 3 });
  } finally {
    t.cleanup();
  }
});

/** The lookups of risky names, which are calls to the name on UDP 53: [process, name]. */
function lookups(calls: NetworkCallEvent[]): [string, string | undefined][] {
  return calls.filter((c) => c.port === 53 && c.protocol === 'udp').map((c) => [c.process.name, c.domain]);
}

/** Every other call. */
function connections(calls: NetworkCallEvent[]): NetworkCallEvent[] {
  return calls.filter((c) => !(c.port === 53 && c.protocol === 'udp'));
}

test('an answer names the connection of its job run however the owner and repo are cased (one job, as stored); a Defend accept given as an array is skipped', async () => {
  const labels = (owner: string, repo: string) => ({ owner, repo, workflow: 'ci.yml', job: 'e', run_id: '1' });
  const docs = [
    { '@timestamp': '2026-11-02T11:00:00Z', labels: labels('Acme', 'API'), event: { category: ['network'] }, dns: { question: { name: 'good.example.com' }, resolved_ip: ['5.6.7.8'] } },
    { '@timestamp': '2026-11-02T11:00:01Z', labels: labels('acme', 'api'), event: { category: ['network'] }, destination: { ip: '5.6.7.8', port: 443 }, process: { name: 'curl' } },
    // another job: the answer is not its run's
    { '@timestamp': '2026-11-02T11:00:02Z', labels: { ...labels('acme', 'api'), job: 'f' }, event: { category: ['network'] }, destination: { ip: '5.6.7.8', port: 443 }, process: { name: 'curl' } },
    // ECS lets any keyword hold an array: an accepted connection is inbound however it is written
    { '@timestamp': '2026-11-02T11:00:03Z', labels: labels('acme', 'api'), event: { category: ['network'], action: ['connection_accepted'] }, destination: { ip: '10.0.0.2', port: 22 }, process: { name: 'sshd' } },
  ];
  const t = tempDir();
  try {
    const r = await parseFile(t.file('cased.ndjson', docs.map((d) => JSON.stringify(d)).join('\n') + '\n'), {}, 'ecs');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.calls.map((c) => [c.ctx.job, c.domain, c.ip]), [['e', 'good.example.com', '5.6.7.8'], ['f', undefined, '5.6.7.8']]);
    assert.deepEqual(r.notes, { 'dns-records': 1, 'named-by-dns': 1, 'skipped-not-egress': 1 });
  } finally {
    t.cleanup();
  }
});

test('a field written both dotted and nested with different values is refused, not read one way: either could be a risky destination', async () => {
  const t = tempDir('egress-triage-ecs-twins-');
  try {
    const labels = { owner: 'o', repo: 'r', workflow: 'w.yml', job: 'j', run_id: '1' };
    const doc = (at: number, extra: object) =>
      JSON.stringify({ '@timestamp': `2026-11-02T10:00:0${at}Z`, event: { category: 'network' }, destination: { ip: '1.1.1.1', port: 443, domain: 'x.example' }, process: { name: 'curl' }, labels, ...extra });
    const file = t.file('twins.ndjson', [
      doc(1, { 'destination.domain': 'webhook.site' }),
      doc(2, { 'destination.domain': 'x.example' }),
      // a null in one spelling hides nothing, as before
      JSON.stringify({ '@timestamp': '2026-11-02T10:00:03Z', event: { category: 'network' }, destination: { ip: null, port: 443 }, 'destination.ip': '1.1.1.2', process: { name: 'curl' }, labels }),
    ].join('\n') + '\n');
    const r = await parseFile(file, {}, 'ecs');
    assert.deepEqual(r.errors.map((e) => [e.location.replace(/^.*:(\d+)$/, '$1'), e.reason, e.field]), [['1', 'conflicting-field', 'destination.domain']]);
    assert.match(r.errors[0]!.message, /destination\.domain is written two ways with different values \("x\.example" and "webhook\.site"\)/);
    assert.deepEqual(r.calls.map((c) => [c.domain ?? null, c.ip]), [['x.example', '1.1.1.1'], [null, '1.1.1.2']]);
  } finally {
    t.cleanup();
  }
});
