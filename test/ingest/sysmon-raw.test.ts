import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { sysmonEcsView } from '../../src/ingest/adapters/sysmon-raw.js';
import { EcsAdapter } from '../../src/ingest/adapters/ecs.js';
import { RecordError } from '../../src/ingest/adapters/types.js';

// The mapping of elastic/integrations packages/windows/data_stream/sysmon_operational's ingest pipeline,
// for the fields the ECS adapter reads (see src/ingest/adapters/sysmon-raw.ts).

function raw(code: string | number, data: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '@timestamp': '2026-11-03T09:01:00.000Z',
    event: { code: String(code), kind: 'event', provider: 'Microsoft-Windows-Sysmon' },
    winlog: { event_id: code, provider_name: 'Microsoft-Windows-Sysmon', channel: 'Microsoft-Windows-Sysmon/Operational', event_data: data },
    ...extra,
  };
}

test('event 3: destination, transport, direction from Initiated, the process, and UtcTime as @timestamp', () => {
  const data = { UtcTime: '2026-11-03 09:00:01.400', ProcessGuid: '{a}', ProcessId: '6012', Image: 'C:\\x\\curl.exe', Protocol: 'tcp', DestinationIp: '46.4.105.116', DestinationHostname: '-', DestinationPort: '443' };
  const out = sysmonEcsView(raw(3, { ...data, Initiated: 'true' }))!;
  assert.equal(out['@timestamp'], '2026-11-03T09:00:01.400Z');
  assert.deepEqual(out.event, { code: '3', kind: 'event', provider: 'Microsoft-Windows-Sysmon', category: ['network'] });
  assert.deepEqual(out.process, { entity_id: '{a}', executable: 'C:\\x\\curl.exe', pid: 6012 });
  // "-" is dropped, as the pipeline drops it
  assert.deepEqual(out.destination, { ip: '46.4.105.116', port: 443 });
  assert.deepEqual(out.network, { transport: 'tcp', direction: 'egress' });
  assert.deepEqual(sysmonEcsView(raw(3, { ...data, Initiated: 'false' }))!.network, { transport: 'tcp', direction: 'ingress' });
  assert.deepEqual(sysmonEcsView(raw(3, data))!.network, { transport: 'tcp' });
  // a port that is no number is passed on, for the adapter to reject by its ECS name
  assert.deepEqual(sysmonEcsView(raw(3, { ...data, DestinationPort: 'https' }))!.destination, { ip: '46.4.105.116', port: 'https' });
  // a UtcTime in another form leaves @timestamp alone; so does none
  assert.equal(sysmonEcsView(raw(3, { ...data, UtcTime: '2026-11-03T09:00:01Z' }))!['@timestamp'], '2026-11-03T09:01:00.000Z');
});

test('event 22: the addresses among QueryResults, mapped IPv4 unwrapped, CNAME entries left out', () => {
  const out = sysmonEcsView(raw('22', {
    QueryName: 'gist.githubusercontent.com', QueryStatus: '0', ProcessId: '7', Image: 'C:\\a\\b.exe',
    QueryResults: 'type:  5 github.map.fastly.net;::ffff:185.199.108.133;[::ffff:185.199.109.133]:0;2001:db8::1;;',
  }))!;
  assert.deepEqual(out.dns, { question: { name: 'gist.githubusercontent.com' }, resolved_ip: ['185.199.108.133', '185.199.109.133', '2001:db8::1'] });
  assert.deepEqual(out.process, { executable: 'C:\\a\\b.exe', pid: 7 });
  // no addresses at all: no resolved_ip (the adapter skips it as a lookup with no answer)
  assert.deepEqual(sysmonEcsView(raw(22, { QueryName: 'x.example', QueryResults: 'type:  5 y.example;' }))!.dns, { question: { name: 'x.example' } });
});

test('event 1: the SHA256 of Hashes (lower case; none when absent or all zero) and the parent', () => {
  const base = { ProcessGuid: '{c}', ProcessId: '1', Image: 'C:\\w\\curl.exe', ParentProcessGuid: '{p}', ParentProcessId: '2', ParentImage: 'C:\\w\\pwsh.exe' };
  const out = sysmonEcsView(raw(1, { ...base, Hashes: 'SHA1=AB,MD5=CD,SHA256=3E5B7D9F1A2C4E6081A3C5E7092B4D6F8A0C2E4F6071829A3B4C5D6E7F809A1B,IMPHASH=00' }))!;
  assert.deepEqual(out.event, { code: '1', kind: 'event', provider: 'Microsoft-Windows-Sysmon', category: ['process'] });
  assert.deepEqual(out.process, {
    entity_id: '{c}', executable: 'C:\\w\\curl.exe', pid: 1,
    hash: { sha256: '3e5b7d9f1a2c4e6081a3c5e7092b4d6f8a0c2e4f6071829a3b4c5d6e7f809a1b' },
    parent: { entity_id: '{p}', executable: 'C:\\w\\pwsh.exe', pid: 2 },
  });
  assert.equal((sysmonEcsView(raw(1, { ...base, Hashes: 'MD5=CD' }))!.process as { hash?: unknown }).hash, undefined);
  assert.equal((sysmonEcsView(raw(1, { ...base, Hashes: `SHA256=${'0'.repeat(64)}` }))!.process as { hash?: unknown }).hash, undefined);
  // the zero GUID is no parent
  const orphan = sysmonEcsView(raw(1, { ProcessGuid: '{c}', Image: 'C:\\w\\x.exe', ParentProcessGuid: '{00000000-0000-0000-0000-000000000000}' }))!;
  assert.equal((orphan.process as { parent?: unknown }).parent, undefined);
});

test('other events are marked neither network nor process; documents that are not raw Sysmon are left alone', () => {
  const file = sysmonEcsView(raw(11, { TargetFilename: 'C:\\t\\p.ps1', Image: 'C:\\w\\curl.exe' }))!;
  assert.deepEqual(file.event, { code: '11', kind: 'event', provider: 'Microsoft-Windows-Sysmon', category: ['sysmon-event-11'] });
  assert.equal(file.process, undefined);
  // already mapped by the pipeline (event.category set, nested or dotted): read as it is
  assert.equal(sysmonEcsView({ ...raw(3, {}), event: { code: '3', provider: 'Microsoft-Windows-Sysmon', category: ['network'] } }), null);
  assert.equal(sysmonEcsView({ ...raw(3, {}), 'event.category': 'network' }), null);
  // not Sysmon, or no event_data
  assert.equal(sysmonEcsView({ ...raw(3, {}), winlog: { provider_name: 'Microsoft-Windows-Security-Auditing', event_data: {} }, event: {} }), null);
  assert.equal(sysmonEcsView({ '@timestamp': 'x', winlog: { provider_name: 'Microsoft-Windows-Sysmon' } }), null);
  assert.equal(sysmonEcsView({ '@timestamp': 'x', destination: { ip: '1.2.3.4' } }), null);
});

test('property: any value in any event_data field of the raw fixture gives a record, a skip or a RecordError, never another exception', () => {
  const lines = readFileSync('test/fixtures/ecs/sysmon-raw.ndjson', 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { winlog: { event_data: Record<string, unknown> } });
  fc.assert(
    fc.property(fc.nat(lines.length - 1), fc.nat(), fc.jsonValue(), (i, k, value) => {
      const doc = structuredClone(lines[i]!);
      const keys = Object.keys(doc.winlog.event_data);
      doc.winlog.event_data[keys[k % keys.length]!] = value;
      const adapter = new EcsAdapter();
      const rc = { source: 'p', line: 1, tenant: 'default', defaults: {}, notes: {} };
      try {
        adapter.parse(doc, rc);
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
      }
    }),
    { numRuns: 500, seed: 20261204 },
  );
});
