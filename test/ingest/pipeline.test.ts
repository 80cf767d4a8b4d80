import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import type { OpenStore } from '../../src/storage/open-store.js';
import { IngestPipeline, WORKER_FROM_BYTES, type IngestOptions, type SourceSummary } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { nativeEvent, ndjson, tempDir, type EventSpec } from '../helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest, fresh } = eachStore();
let n = 0;

function fileOf(content: string | Buffer, ext = '.ndjson'): string {
  const f = join(tmp.dir, `f${n++}${ext}`);
  writeFileSync(f, content);
  return f;
}

function pipeline(store: OpenStore, o: Partial<IngestOptions> = {}) {
  return new IngestPipeline(store, {
    tenant: 'default', format: 'auto', strict: false, defaults: {},
    engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 2 }, ...o,
  });
}

function tenantEvents(): EventSpec[] {
  const evs: EventSpec[] = [];
  for (let r = 0; r < 6; r++) {
    evs.push({ run: r, domain: 'github.com', process: 'git' }, { run: r, domain: 'registry.npmjs.org', process: 'node' });
    if (r >= 2) evs.push({ run: r, ip: `100.64.0.${r}`, port: 41641, protocol: 'udp', process: 'tailscaled' });
  }
  return evs;
}

async function counts(at: StoreUnderTest) {
  const one = async (sql: string) => Number(await at.value(sql));
  return {
    detections: await one('SELECT count(*) FROM detections'),
    observations: await one('SELECT count(*) FROM observations'),
    runs: await one('SELECT count(*) FROM runs'),
    baseline: await one('SELECT count(*) FROM baseline'),
    rollup: await one('SELECT coalesce(sum(n), 0) FROM detection_rollup'),
  };
}

storeTest('ingesting the same file twice stores nothing new', async (at) => {
  const store = await at.open();
  const f = fileOf(ndjson(tenantEvents().map(nativeEvent)));
  const first = await pipeline(store).ingest(f);
  assert.equal(first.format, 'native');
  assert.equal(first.detections, 4);
  const c1 = (await counts(at));
  const second = await pipeline(store).ingest(f);
  assert.equal(second.detections, 0);
  assert.equal(second.accepted, first.accepted);
  assert.equal(second.duplicates, second.accepted);
  assert.deepEqual((await counts(at)), c1);
  assert.equal(c1.rollup, c1.detections);
  await store.close();
});

storeTest('gzip input is recognised by its bytes', async (at) => {
  const store = await at.open();
  const f = fileOf(gzipSync(ndjson(tenantEvents().map(nativeEvent))), '.ndjson.gz');
  const s = await pipeline(store).ingest(f);
  assert.equal(s.rejected, 0);
  assert.equal(s.detections, 4);
  await store.close();
});

storeTest('a file parsed in the worker stores and reports exactly what the same file parsed in this thread does', async (at) => {
  // Files under WORKER_FROM_BYTES (most in this suite) parse in this thread: this is the worker's own check.
  const events = ndjson(tenantEvents().map(nativeEvent));
  const lines = events.split('\n');
  lines.splice(3, 0, '{"id": "cut', '{"timestamp": 5}');
  const gz = gzipSync(events);
  const sources = [
    fileOf(events),
    fileOf(lines.join('\n')),
    fileOf(gz.subarray(0, Math.floor(gz.length * 0.6)), '.ndjson.gz'),
    fileOf(Buffer.from([0, 1, 2, 3, 0, 0, 7])),
  ];
  assert.ok(events.length < WORKER_FROM_BYTES);
  const other = await fresh(at.backend, 'worker');
  const outcomes = async (u: StoreUnderTest, workerFromBytes: number | undefined) => {
    const store = await u.open();
    const summaries: SourceSummary[] = [];
    for (const f of sources) {
      // everything but the time it took, which differs run to run
      summaries.push({ ...(await pipeline(store, { workerFromBytes }).ingest(f)), elapsedMs: 0 });
    }
    const missing = await pipeline(store, { workerFromBytes }).ingest(join(tmp.dir, 'missing.ndjson')).catch((e: Error) => `${e.name}: ${e.message}`);
    await store.close();
    return { summaries, missing, counts: await counts(u) };
  };
  const inThread = await outcomes(at, undefined);
  const inWorker = await outcomes(other, 0);
  assert.deepEqual(inWorker, inThread);
  assert.equal(inThread.summaries[0]!.detections, 4);
  assert.deepEqual(inThread.summaries.map((x) => x.rejected), [0, 2, 1, 1]);
  assert.deepEqual(inThread.summaries[2]!.errors!.map((e) => e.reason), ['truncated-input']);
  assert.match(String(inThread.missing), /missing\.ndjson/);
});

storeTest('bad records are reported with file:line and field, and skipped without --strict', async (at) => {
  const store = await at.open();
  const good = tenantEvents().map(nativeEvent);
  const noProcess = { ...good[0] };
  delete noProcess.process;
  const wrongPort = { ...good[1], port: 'https' };
  const lines = [
    JSON.stringify(good[0]),
    '{"owner": "acme", broken',
    JSON.stringify(noProcess),
    JSON.stringify(wrongPort),
    JSON.stringify({ ...good[2], domain: undefined, ip: undefined }),
    '',
    ...good.slice(1).map((g) => JSON.stringify(g)),
  ];
  const f = fileOf(lines.join('\n'));
  const s = await pipeline(store).ingest(f);
  assert.equal(s.rejected, 4);
  assert.equal(s.rejectedByReason['malformed-json'], 1);
  assert.equal(s.errors[0]!.location, `${f}:2`);
  const missing = s.errors.find((e) => e.location === `${f}:3`)!;
  assert.equal(missing.field, 'process');
  const port = s.errors.find((e) => e.location === `${f}:4`)!;
  assert.equal(port.field, 'port');
  assert.ok(s.errors.find((e) => e.location === `${f}:5`));
  assert.equal(s.accepted, good.length);
  assert.equal(s.detections, 4);
  await store.close();
});

storeTest('--strict stores nothing from a source with a bad record, and keeps what was stored before', async (at) => {
  const store = await at.open();
  const evs = tenantEvents().map(nativeEvent);
  await pipeline(store).ingest(fileOf(ndjson(evs.slice(0, 4))));
  const before = (await counts(at));
  // its first line repeated: a call the parser drops as a repeat counts as accepted in a stored source
  const bad = ndjson([...evs.slice(4), evs[4]!]) + '{"owner":"acme","repo":"api"}\n';
  const s = await pipeline(store, { strict: true }).ingest(fileOf(bad));
  assert.equal(s.stored, false);
  assert.equal(s.rejected, 1);
  assert.deepEqual([s.records, s.accepted, s.duplicates, s.detections, s.detectionsByType], [evs.length - 4 + 2, 0, 0, 0, {}], 'nothing stored, nothing counted as accepted');
  assert.deepEqual((await counts(at)), before);
  // and the same data without the bad line goes in afterwards, consistently
  const s2 = await pipeline(store, { strict: true }).ingest(fileOf(ndjson(evs.slice(4))));
  assert.equal(s2.stored, true);
  assert.equal(s2.detections, 4);
  await store.close();
});

storeTest('empty and binary inputs are handled cleanly', async (at) => {
  const store = await at.open();
  const empty = await pipeline(store).ingest(fileOf(''));
  assert.equal(empty.records, 0);
  assert.equal(empty.rejected, 0);
  const bin = Buffer.alloc(4096);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919) % 256;
  const b = await pipeline(store).ingest(fileOf(bin, '.bin'));
  assert.equal(b.rejected, 1);
  assert.equal(b.rejectedByReason['binary-input'], 1);
  assert.equal((await counts(at)).observations, 0);
  await store.close();
});

storeTest('an unrecognisable first record stops the source with a clear reason', async (at) => {
  const store = await at.open();
  const s = await pipeline(store).ingest(fileOf('{"hello":"world"}\n{"a":1}\n'));
  assert.equal(s.rejectedByReason['unknown-format'], 1);
  assert.match(s.errors[0]!.message, /--format/);
  await store.close();
});

storeTest('harden-runner records take job context from a leading context line', async (at) => {
  const store = await at.open();
  const lines: string[] = [];
  for (let r = 0; r < 4; r++) {
    lines.push(JSON.stringify({ context: { owner: 'acme', repo: 'web', workflow: '.github/workflows/ci.yml', job: 'build', run_id: String(700 + r) } }));
    lines.push(JSON.stringify({ ipAddress: '140.82.112.3', port: '443(https)', domainName: 'github.com.', timestamp: `2026-10-0${r + 1}T10:00:00Z`, tool: { name: 'git', sha256: 'abc', parent: null }, status: 'Allowed' }));
    if (r === 3) lines.push(JSON.stringify({ ipAddress: '45.9.148.10', port: '443', domainName: '', timestamp: '2026-10-04T10:01:00Z', tool: { name: 'Unknown', sha256: 'Unknown', parent: null }, status: 'Allowed' }));
  }
  const s = await pipeline(store).ingest(fileOf(lines.join('\n')));
  assert.equal(s.format, 'harden-runner');
  assert.equal(s.rejected, 0, JSON.stringify(s.errors));
  const page = await store.detections.list('default', {}, 10);
  assert.equal(page.total, 1);
  assert.equal(page.detections[0]!.endpoint, '45.9.148.10:443');
  assert.equal(page.detections[0]!.tool.name, 'Unknown');
  assert.equal(page.detections[0]!.repo, 'web');
  await store.close();
});

storeTest('StepSecurity exports are imported as detections, envelope or array, idempotently', async (at) => {
  const store = await at.open();
  const det = (id: string, endpoint: string, extra: Record<string, unknown> = {}) => ({
    id, owner: 'acme', repo: 'api', run_id: 42, run_attempt: 1, job: 'build', job_id: '9', workflow_path: '.github/workflows/ci.yml',
    timestamp: '2026-10-10T10:00:00Z', tool: { name: 'tailscaled', sha256: 'aa', parent: 'sudo' }, endpoint,
    direct_ip_address: endpoint.startsWith('100.') ? endpoint.split(':')[0] : '', expected_outbound_connections: ['github.com:443'],
    is_resolved: false, is_suppressed: false, ...extra,
  });
  const envelope = JSON.stringify({ data: { detections: [det('d1', '100.64.1.1:41641'), det('d2', 'controlplane.tailscale.com:443'), det('d3', 'x.com:443', { is_resolved: true })] } }, null, 2);
  const s = await pipeline(store).ingest(fileOf(envelope, '.json'));
  assert.equal(s.format, 'stepsecurity');
  assert.equal(s.detections, 3, JSON.stringify(s.errors));
  const again = await pipeline(store).ingest(fileOf(JSON.stringify([det('d1', '100.64.1.1:41641')]), '.json'));
  assert.equal(again.detections, 0);
  const page = await store.detections.list('default', { statuses: ['new'] }, 10);
  assert.equal(page.total, 2);
  const d1 = page.detections.find((d) => d.external_id === 'd1')!;
  assert.equal(d1.direct_ip_address, '100.64.1.1');
  assert.deepEqual(d1.expected_outbound_connections, ['github.com:443']);
  await store.close();
});

storeTest('list totals from the rollup equal exact counts of detections', async (at) => {
  const store = await at.open();
  const evs: EventSpec[] = [];
  for (let r = 0; r < 8; r++) {
    for (const job of ['build', 'test']) {
      evs.push({ run: r, job, domain: 'github.com', process: 'git' });
      if (r >= 2) evs.push({ run: r, job, ip: `100.64.1.${r}`, port: 41641, process: 'tailscaled' }, { run: r, job, domain: `n${r % 3}.example.com`, process: 'curl', repo: r % 2 ? 'api' : 'web' });
      if (r === 5) evs.push({ run: r, job, domain: 'pastebin.com', status: 'blocked' });
    }
  }
  await pipeline(store).ingest(fileOf(ndjson(evs.map(nativeEvent))));
  const filters = [
    {}, { types: ['Domain-Blocked'] }, { statuses: ['new' as const] }, { repo: 'web' }, { job: 'test', process: 'tailscaled' },
    { host: 'n1.example.com', port: 443 }, { host: 'n1.example.com' }, { owner: 'acme', types: ['New-Outbound-Network-Call'] },
  ];
  for (const f of filters) {
    const fast = await store.detections.list('default', f, 1);
    const exact = await store.detections.list('default', { ...f, since: 0 }, 1);
    assert.equal(fast.total, exact.total, JSON.stringify(f));
  }
  assert.ok((await store.detections.list('default', {}, 1)).total > 10);
  await store.close();
});
