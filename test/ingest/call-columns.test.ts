import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSource, type ParsedBatch } from '../../src/ingest/record-parser.js';
import { fromColumns, toColumns } from '../../src/ingest/call-columns.js';
import type { AdapterOutput } from '../../src/ingest/adapters/types.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { writeTenant } from '../../src/generate/index.js';

/** What the main thread gets: the batch through the worker's postMessage, in columns or whole. */
function overThreads(b: ParsedBatch): ParsedBatch {
  const { batch, transfer } = toColumns(b);
  return fromColumns(structuredClone(batch, { transfer }));
}

/** The objects the calls of a batch share, by identity: as many after the crossing as before. */
function shared(b: ParsedBatch): { ctxs: number; processes: number } {
  const calls = b.outputs.filter((o): o is Extract<AdapterOutput, { kind: 'call' }> => o.kind === 'call');
  return { ctxs: new Set(calls.map((c) => c.event.ctx)).size, processes: new Set(calls.map((c) => c.event.process)).size };
}

async function batchesOf(path: string): Promise<ParsedBatch[]> {
  const out: ParsedBatch[] = [];
  for await (const c of parseSource(path, { format: 'auto', tenant: 'default', defaults: {}, batchSize: 500 })) out.push(c.batch);
  return out;
}

test('every producer\'s batches cross to the main thread unchanged: same outputs, order, fields and shared objects', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-columns-'));
  try {
    const native = join(dir, 'native.ndjson');
    await writeTenant({ runs: 3, seed: 7, events: 3_000 }, native);
    const sources = [
      native,
      'test/fixtures/harden-runner/agent.log',
      'test/fixtures/harden-runner/agent-records.log',
      'test/fixtures/ecs/defend-network.ndjson',
      'test/fixtures/ecs/auditbeat-egress.ndjson',
      'test/fixtures/ecs/packetbeat-dns.ndjson',
      'test/fixtures/stepsecurity/detections.json',
    ];
    let inColumns = 0;
    let whole = 0;
    for (const path of sources) {
      for (const b of await batchesOf(path)) {
        const before = structuredClone(b);
        const after = overThreads(b);
        assert.deepEqual(after, before, path);
        assert.deepEqual(shared(after), shared(before), path);
        const cols = toColumns(b).batch.calls;
        inColumns += cols.count - cols.others.length;
        whole += cols.others.length;
      }
    }
    // both ways are taken: native calls in columns, other producers' calls and imported detections whole
    assert.ok(inColumns > 500, `calls in columns: ${inColumns}`);
    assert.ok(whole > 0, `outputs whole: ${whole}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a call with a field more or less than the native shape crosses whole, in its place', () => {
  const ctx = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', runId: '1', runAttempt: 1 };
  const process = { name: 'curl', path: '/usr/bin/curl', sha256: undefined, pid: 3, parent: null };
  const base: NetworkCallEvent = {
    tenant: 'default', ctx, timestamp: 1_700_000_000_000, domain: 'api.github.com', ip: undefined, port: 443, protocol: 'tcp', process,
    status: 'allowed',
  };
  const { protocol: _dropped, ...noProtocol } = base;
  const outputs: AdapterOutput[] = [
    { kind: 'call', event: base },
    { kind: 'call', event: { ...base, domain: 'webhook.site', status: 'blocked', matchedPolicy: 'block-all', reason: 'not allowed' } },
    { kind: 'call', event: noProtocol as NetworkCallEvent },
    { kind: 'call', event: { ...base, ip: '140.82.112.9' }, names: { tenant: 'default', ctx, domain: 'api.github.com', ips: ['140.82.112.9'] } },
    { kind: 'call', event: { ...base, timestamp: 1_700_000_000_001, port: 8443 } },
  ];
  const b: ParsedBatch = { outputs, errors: [], records: 5, repeats: 0, fatal: false, format: 'native', notes: {} };
  const cols = toColumns(b).batch.calls;
  assert.deepEqual(cols.others.map((o) => o.at), [1, 2, 3]);
  const after = overThreads(b);
  assert.deepEqual(after, structuredClone(b));
  const verdict = after.outputs[1] as Extract<AdapterOutput, { kind: 'call' }>;
  assert.equal(verdict.event.matchedPolicy, 'block-all');
  assert.equal(verdict.event.reason, 'not allowed');
  assert.ok(!('protocol' in (after.outputs[2] as Extract<AdapterOutput, { kind: 'call' }>).event));
});
