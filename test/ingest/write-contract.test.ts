import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { runCli, tempDir } from '../helpers.js';
import { storeStateOf } from './store-state.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import type { StoreBackend } from '../../src/storage/location.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';
import { IngestPipeline, type IngestOptions, type IngestStore } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import type { IngestPort, IngestWriteBatch, TenantIngest } from '../../src/storage/ingest-port.js';

/**
 * The ingest write contract (storage/ingest-port.ts): the engine reads per batch, evaluates on
 * memory and writes one batch per transaction. Where batches and write batches end must not change
 * what is stored, and a batch evaluated against state another writer changed before it was written
 * is evaluated again, never written stale.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest, fresh } = eachStore();
let file = '';
let lines: string[] = [];

before(() => {
  file = join(tmp.dir, 'tenant.ndjson');
  // matrix legs, late events and many jobs: every path of the engine's run bookkeeping
  const g = runCli(['generate', '--runs', '12', '--seed', '5', '--events', '12000', '--out', file]);
  assert.equal(g.status, 0, g.stderr);
  lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
});

const ENGINE = { ...DEFAULT_ENGINE_CONFIG, learningRuns: 2, promoteAfterRuns: 2 };

function options(extra: Partial<IngestOptions> = {}): IngestOptions {
  return { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: ENGINE, inThread: true, ...extra };
}

/** owner/repo/workflow/job of an NDJSON event line */
function jobOf(line: string): string {
  const r = JSON.parse(line) as { owner: string; repo: string; workflow: string; job: string };
  return `${r.owner}/${r.repo}/${r.workflow}/${r.job}`;
}

/** ingests the files into a new store of the backend, one pipeline, and returns the store */
async function ingestInto(backend: StoreBackend, label: string, files: string[], extra: Partial<IngestOptions> = {}): Promise<StoreUnderTest> {
  const at = await fresh(backend, label);
  const store = await at.open();
  try {
    const p = new IngestPipeline(store, options(extra));
    for (const f of files) await p.ingest(f);
  } finally {
    await store.close();
  }
  return at;
}

storeTest('the stored result does not depend on where parsed batches and write batches end', async ({ backend }) => {
  const reference = await storeStateOf(await ingestInto(backend, 'whole', [file], { batchSize: 5_000 }));
  assert.ok(reference.detections.length > 0 && reference.runs.length > 50, 'the fixture exercises detections and many runs');
  // batch sizes that cut runs, matrix legs and late events at every kind of place
  for (const batchSize of [7, 113]) {
    const got = await storeStateOf(await ingestInto(backend, `batch${batchSize}`, [file], { batchSize }));
    assert.deepEqual(got, reference, `batch size ${batchSize}`);
  }
  // Batch size 1 cuts at every line. On PostgreSQL each write batch is a transaction of a few round
  // trips, and the whole file took 80 s there, so it gets every run of a quarter of the jobs (every
  // run, so that their baselines are learnt and detections follow); SQLite still takes the whole file.
  let one = file;
  let oneReference = reference;
  if (backend === 'postgres') {
    const jobs = [...new Set(lines.map(jobOf))].filter((_, i) => i % 4 === 0);
    one = join(tmp.dir, 'quarter-of-the-jobs.ndjson');
    writeFileSync(one, lines.filter((l) => jobs.includes(jobOf(l))).join('\n') + '\n');
    oneReference = await storeStateOf(await ingestInto(backend, 'quarter', [one], { batchSize: 5_000 }));
    assert.ok(oneReference.detections.length > 0 && oneReference.runs.length > 50, 'the quarter exercises detections and many runs');
  }
  assert.deepEqual(await storeStateOf(await ingestInto(backend, 'batch1', [one], { batchSize: 1 })), oneReference, 'batch size 1');
});

storeTest("runs' observation keys let go of between write batches are read again exactly", async ({ backend }) => {
  const reference = await storeStateOf(await ingestInto(backend, 'roomy', [file], { batchSize: 50 }));
  // no run keeps its observation keys: every batch reads them back
  const got = await storeStateOf(await ingestInto(backend, 'tight', [file], { batchSize: 50, engine: { ...ENGINE, hotRuns: 0 } }));
  assert.deepEqual(got, reference);
});

storeTest('a job state written by another ingest in between is read again, as by a sequential ingest', async (at) => {
  const parts = [0, 1, 2].map((i) => {
    const f = join(tmp.dir, `part-${i}.ndjson`);
    // the same jobs in every part: each part continues the runs of the one before
    writeFileSync(f, lines.filter((_, n) => n % 3 === i).join('\n') + '\n');
    return f;
  });
  const sequential = await storeStateOf(await ingestInto(at.backend, 'sequential', parts));

  const a = await at.open();
  const b = await at.open();
  try {
    const pa = new IngestPipeline(a, options());
    const pb = new IngestPipeline(b, options());
    await pa.ingest(parts[0]!); // pa caches the jobs' state...
    await pb.ingest(parts[1]!); // ...another writer moves it on...
    await pa.ingest(parts[2]!); // ...and pa must not write from its old cache
  } finally {
    await a.close();
    await b.close();
  }
  assert.deepEqual(await storeStateOf(at), sequential);
});

/** A store whose write() lets `before` run once, just before the first batch that `when` picks. */
function interceptWrites(store: OpenStore, when: (b: IngestWriteBatch) => boolean, before: () => Promise<void>): IngestStore & { fired: () => boolean } {
  let fired = false;
  const port: IngestPort = {
    leases: store.ingest.leases,
    beginSource: async (o) => {
      const scope = await store.ingest.beginSource(o);
      return {
        settle: () => scope.settle(),
        commit: () => scope.commit(),
        rollback: () => scope.rollback(),
        tenant: async (name): Promise<TenantIngest> => {
          const t = await scope.tenant(name);
          return {
            tenant: t.tenant,
            read: (r) => t.read(r),
            write: async (batch) => {
              if (!fired && when(batch)) {
                fired = true;
                await before();
              }
              return t.write(batch);
            },
          };
        },
      };
    },
  };
  return { ingest: port, fired: () => fired };
}

storeTest('a write batch evaluated before a concurrent `baseline expect` is evaluated again, not written stale', async (at) => {
  const first = join(at.dir, 'expect-1.ndjson');
  const src = join(at.dir, 'expect-2.ndjson');
  const ev = (run: number, i: number, domain: string) =>
    JSON.stringify({
      owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: String(run), run_attempt: 1,
      timestamp: new Date(Date.UTC(2026, 10, 1, run, 0, i)).toISOString(), domain, port: 443, status: 'allowed',
      process: { name: 'git', path: '/usr/bin/git' },
    });
  // run 1 learns (a source of its own: the job is stored before the edit); run 2 calls
  // new.example.com (a detection); run 3 completes run 2, which counts new.example.com once towards
  // the baseline (pending: 1 run of 3)
  writeFileSync(first, ev(1, 0, 'github.com') + '\n');
  writeFileSync(src, [ev(2, 0, 'github.com'), ev(2, 1, 'new.example.com'), ev(3, 0, 'github.com')].join('\n') + '\n');
  const store = await at.open();
  const cli = await at.open();
  try {
    // `baseline expect` by another process lands between the evaluation of that count and its write
    const s = interceptWrites(
      store,
      (b) => b.baseline.some((w) => w.endpoint === 'new.example.com:443'),
      async () => void (await cli.baselines.markExpected('default', { owner: 'acme', repo: 'api' }, 'new.example.com:443')),
    );
    const p = new IngestPipeline(s, options({ engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 1, promoteAfterRuns: 3 } }));
    await p.ingest(first);
    const sum = await p.ingest(src);
    assert.ok(s.fired(), 'the concurrent edit happened');
    // the whole write batch is evaluated again after the edit, as if the edit came before it
    assert.equal(sum.detections, 0, 'no detection for an endpoint expected before the batch was written');
    const rows = await at.rows(`SELECT b.runs_seen, b.in_baseline, b.source FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.endpoint = 'new.example.com:443'`);
    assert.deepEqual(rows, [ { runs_seen: 1, in_baseline: 1, source: 'expected' }], 'the expected mark survives the ingest and the run still counts');
  } finally {
    await store.close();
    await cli.close();
  }
});

storeTest('a write batch of a holder whose lease was taken over writes nothing', async (at) => {
  const store = await at.open();
  try {
    let stolen = false;
    const s = interceptWrites(
      store,
      (b) => b.observations.length > 0,
      async () => {
        // the lease expired (this process was stopped) and another writer took it over
        await at.rows("UPDATE ingest_leases SET token = 'someone-else'");
        stolen = true;
      },
    );
    const p = new IngestPipeline(s, options());
    await assert.rejects(p.ingest(file), /lost the ingest lease of tenant "default"/);
    assert.ok(stolen);
    assert.equal(await at.value('SELECT count(*) FROM observations'), 0, 'nothing written after the takeover');
    assert.equal(await at.value('SELECT count(*) FROM runs'), 0);
  } finally {
    await store.close();
  }
});
