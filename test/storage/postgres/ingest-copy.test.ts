import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pg from 'pg';
import { backends, type Connection } from '../contract/backends.js';
import { HOLDER } from '../contract/fixture.js';
import { copyRows, copyText, type CopyValue } from '../../../src/storage/postgres/copy-rows.js';
import { createPool } from '../../../src/storage/postgres/pool.js';
import { normalizeProcessName } from '../../../src/domain/process-name.js';
import { observationKey, processVariantKey, type IngestPort, type IngestWriteBatch, type IngestWriteResult } from '../../../src/storage/ingest-port.js';
import type { ProcessVariant } from '../../../src/storage/store.js';
import type { Detection } from '../../../src/domain/types.js';

/**
 * PostgreSQL ingest writes the calls and detections of run legs a batch creates with COPY (text
 * format), and the others with INSERT ... ON CONFLICT. Values that COPY's text format must escape
 * (tab, newline, carriage return, backslash, "\N", "\."), other unicode and very long strings, in
 * process names, paths, hashes, parent chains, endpoints, external ids and verdicts, come back
 * exactly as written, through both paths, and the store answers as SQLite's does for the same batches.
 * The rollup the client computes for COPYed detections equals a count of the stored detections, per
 * day. Producer verdicts go with the calls stored by either path.
 */

const T = Date.UTC(2026, 9, 1, 23, 59, 59, 990); // batches cross a day boundary: the rollup's day must follow
const TYPE = 'New-Outbound-Network-Call';
const LONG = Number(process.env.COPY_LONG ?? 1_000);

/** Strings COPY's text format has to escape, mixed with ordinary and non-ASCII text; never NUL (PostgreSQL text cannot hold it). */
const piece = fc.oneof(
  fc.constantFrom('\t', '\n', '\r', '\\', '\\N', '\\.', '\\t', '"', "'", ',', '{', '}', 'NULL', ' ', 'é', '\u{1F600}', '\u2028', '漢字'),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);
/**
 * Short mixed values, and long ones (1,000 characters, a command line's length) made of a repeated
 * piece. Longer values, or long ones that do not compress, do not fit PostgreSQL's btree limit on the
 * dictionaries' unique keys (about 2.7 kB per key, after compression): a limit of the schema, not of
 * the write path, left to its own change (docs/benchmarks.md, "PostgreSQL ingest").
 */
const text = fc
  .array(piece, { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join(''))
  .filter((s) => s.length > 0 && !s.includes('\0'))
  // long: the piece repeated to LONG code points (never a surrogate pair split in two)
  .chain((s) => fc.constantFrom(s, Array.from(s.repeat(Math.ceil(LONG / s.length))).slice(0, LONG).join('')));

const processArb = fc.record({
  name: text,
  path: fc.option(text, { nil: null }),
  sha256: fc.option(text, { nil: null }),
  parent: fc.array(fc.record({ name: text, path: fc.option(text, { nil: undefined }) }, { requiredKeys: ['name'] }), { maxLength: 2 }),
}).map(({ name, path, sha256, parent }): ProcessVariant => ({ name, normName: normalizeProcessName(name), path, sha256, parentChain: parent.map((l) => (l.path === undefined ? { name: l.name } : { name: l.name, path: l.path })) }));

const callArb = fc.record({
  process: processArb,
  host: text,
  ext: fc.option(text, { nil: '' }),
  verdict: fc.option(fc.record({ matchedPolicy: text, reason: text }), { nil: undefined }),
});

type Call = { process: ProcessVariant; host: string; ext: string; verdict: { matchedPolicy: string; reason: string } | undefined };

const endpointOf = (c: Call) => `${c.host}:443`;
/** The verdict of batch 2's blocked call, for a call that batch 1 stored allowed. */
const laterVerdict = (c: Call) => ({ matchedPolicy: `${c.host}\tpolicy`, reason: `${c.ext}\\reason` });

function emptyBatch(token: string, ttlMs: number, expect: IngestWriteBatch['expect']): IngestWriteBatch {
  return { lease: { token, ttlMs }, expect, newJobs: [], newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [] };
}

/**
 * Batch 1 creates a job and a run and writes every call (COPY path), one of them twice; batch 2
 * writes them again into the now stored run plus one more detection each (ON CONFLICT path), and
 * imports each as an exported detection of a new run.
 */
async function ingestCalls(port: IngestPort, tenant: string, calls: Call[]) {
  const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
  const scope = await port.beginSource({ atomic: false });
  const t = await scope.tenant(tenant);
  const job = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build' };
  const expect = (await t.read({ jobs: [], runs: [], observations: [] })).versions;
  const det = (c: Call, jobRef: number, runRef: number, ts: number, type = TYPE) => ({
    type, jobRef, runRef, endpoint: endpointOf(c), ip: null, directIp: false, port: 443, protocol: 'tcp' as const, process: c.process, ts,
    status: 'new' as const, ruleRef: 0, externalId: c.ext,
  });
  const obs = (c: Call, runRef: number, ts: number, verdict = c.verdict) => ({
    runRef, endpoint: endpointOf(c), ip: null, process: c.process, variantKey: processVariantKey(c.process), blocked: verdict !== undefined, protocol: 'tcp' as const, ts,
    ...(verdict ? { verdict } : {}),
  });
  const b1 = emptyBatch(lease.token, lease.ttlMs, expect);
  b1.newJobs.push({ tempRef: -1, key: job });
  b1.newRuns.push({ tempRef: -2, jobRef: -1, runId: '1', runAttempt: 1, ghJobId: null, firstTs: T, lastTs: T, learning: false, completed: false, expected: [] });
  calls.forEach((c, i) => {
    b1.observations.push(obs(c, -2, T + i * 5));
    b1.detections.push(det(c, -1, -2, T + i * 5));
  });
  b1.detections.push(det(calls[0]!, -1, -2, T + 9_999)); // identical to the first: not stored again
  const r1 = await t.write(b1);
  const [jobRef, runRef] = [r1.jobRefs[0]!, r1.runRefs[0]!];
  const b2 = emptyBatch(lease.token, lease.ttlMs, expect);
  calls.forEach((c, i) => {
    b2.observations.push(obs(c, runRef, T + 20_000 + i)); // stored already
    if (!c.verdict) b2.observations.push(obs(c, runRef, T + 20_000 + i, laterVerdict(c))); // a new call, blocked, into a stored run
    b2.detections.push(det(c, jobRef, runRef, T + 20_000 + i)); // stored already
    b2.detections.push(det(c, jobRef, runRef, T + 30_000 + i, 'Domain-Blocked')); // new, into a stored run
    b2.imported.push({ run: { ...job, runId: `imp-${i}`, runAttempt: 1, ghJobId: c.host }, expected: [c.host], detection: { ...det(c, 0, 0, T + 40_000 + i), externalId: `${c.ext}#${i}` } });
  });
  const r2 = await t.write(b2);
  const read = await t.read({ jobs: [], runs: [], observations: [runRef] });
  await scope.commit();
  await lease.release();
  return { r1, r2, keys: read.observations[0]!.keys, runRef };
}

const comparable = (ds: Detection[]) => ds.map(({ id: _, ...d }) => d);

const connections: { name: string; c: Connection; location: string }[] = [];
for (const backend of backends()) {
  test(`${backend.name}: a store to compare`, async () => {
    const store = await backend.create();
    connections.push({ name: backend.name, c: await store.connect(), location: store.location });
  });
}

/** The rollup rows that differ from a count of the stored detections (none when they agree). */
async function rollupMismatches(url: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const counted = `SELECT tenant_id, type_id, status, rule_id, floor(ts / 86400000.0)::int AS day, job_ref, process_id, endpoint_id, ip_id,
        count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`;
    const stored = 'SELECT tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts FROM detection_rollup';
    return (await c.query(`(${counted} EXCEPT ${stored}) UNION ALL (${stored} EXCEPT ${counted})`)).rows;
  } finally {
    await c.end();
  }
}

test('strings that COPY must escape, unicode and long values round-trip exactly through PostgreSQL ingest, as on SQLite', { timeout: 600_000 }, async () => {
  const [sqlite, postgres] = [connections.find((x) => x.name === 'sqlite')!.c, connections.find((x) => x.name === 'postgres')!.c];
  const pgUrl = connections.find((x) => x.name === 'postgres')!.location;
  const ports = { sqlite: sqlite.ingest(), postgres: postgres.ingest() };
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(callArb, { minLength: 1, maxLength: 5, selector: (c) => `${c.host}\u0000${processVariantKey(c.process)}` }), async (calls) => {
        const tenant = `copy-${n++}`;
        const got: Record<string, { r1: IngestWriteResult; r2: IngestWriteResult; list: Detection[] }> = {};
        for (const [name, port] of Object.entries(ports)) {
          const w = await ingestCalls(port, tenant, calls);
          const conn = name === 'sqlite' ? sqlite : postgres;
          const list = (await conn.detections.list(tenant, {}, 1000)).detections;
          got[name] = { r1: w.r1, r2: w.r2, list };
          const expectKeys = new Set(calls.flatMap((c) => [
            observationKey(endpointOf(c), processVariantKey(c.process), c.verdict !== undefined),
            ...(c.verdict ? [] : [observationKey(endpointOf(c), processVariantKey(c.process), true)]),
          ]));
          assert.deepEqual(w.keys, expectKeys, `${name}: the run's call keys are the written ones`);
        }
        const pgList = got.postgres!.list;
        assert.equal(pgList.length, calls.length * 3, 'per call: one detection of batch 1, one new of batch 2, one imported');
        for (const [i, c] of calls.entries()) {
          const mine = pgList.filter((d) => d.endpoint === endpointOf(c) && d.tool.name === c.process.name);
          assert.equal(mine.length, 3, `call ${i}: its endpoint and process name come back as written`);
          for (const d of mine) {
            assert.deepEqual([d.tool.path, d.tool.sha256, d.tool.parent], [c.process.path, c.process.sha256, c.process.parentChain]);
            assert.equal(d.host, c.host);
          }
          const own = mine.filter((d) => d.run_id === '1');
          assert.deepEqual(own.map((d) => d.external_id), [c.ext || null, c.ext || null]);
          const imported = mine.find((d) => d.run_id === `imp-${i}`)!;
          assert.equal(imported.external_id, `${c.ext}#${i}`);
          assert.equal(imported.job_id, c.host);
          assert.deepEqual(imported.expected_outbound_connections, [c.host]);
          // a blocked call's verdict shows on its Domain-Blocked detection: from batch 1 (COPY path) or batch 2 (ON CONFLICT path)
          const blocked = own.find((d) => d.detection_id === 'Domain-Blocked')!;
          const verdict = c.verdict ?? laterVerdict(c);
          assert.deepEqual([blocked.matched_policy, blocked.reason], [verdict.matchedPolicy, verdict.reason]);
        }
        // same answers as SQLite, which stores strings as they are
        const flags = ({ detectionsStored, importedStored, importedRunsCreated }: IngestWriteResult) => ({ detectionsStored, importedStored, importedRunsCreated });
        assert.deepEqual(flags(got.postgres!.r1), flags(got.sqlite!.r1));
        assert.deepEqual(flags(got.postgres!.r2), flags(got.sqlite!.r2));
        assert.deepEqual(comparable(pgList), comparable(got.sqlite!.list));
        assert.deepEqual(got.postgres!.r1.detectionsStored, [...calls.map(() => true), false], 'batch 1: every call once, the repeat not');
        assert.deepEqual(got.postgres!.r2.detectionsStored, calls.flatMap(() => [false, true]), 'batch 2: the stored ones not again, the new ones');
        assert.deepEqual(await rollupMismatches(pgUrl), [], 'the rollup counts exactly the stored detections, per day');
      }),
      { numRuns: Number(process.env.COPY_RUNS ?? 25), endOnFailure: true },
    );
  } finally {
    await sqlite.close();
    await postgres.close();
  }
});

test('COPY text: escaped fields, \\N for NULL, t/f, numbers as written; a number PostgreSQL cannot take is refused', () => {
  assert.equal(copyText([[1, 'a\tb', null, true, false, 'x\\ny\n\r'], ['\\N', '', 1_800_000_000_000, 'é']]), '1\ta\\tb\t\\N\tt\tf\tx\\\\ny\\n\\r\n\\\\N\t\t1800000000000\té\n');
  assert.throws(() => copyText([[Number.NaN]]), /not a number PostgreSQL can store/);
});

test('a row that cannot be written is refused before the COPY starts: the connection is not left waiting in COPY mode', { timeout: 60_000 }, async () => {
  const url = connections.find((x) => x.name === 'postgres')!.location;
  const pool = createPool(url);
  const c = await pool.connect();
  try {
    await c.query('CREATE TEMP TABLE copy_probe (a bigint, b text)');
    await assert.rejects(copyRows(c, 'copy_probe (a, b)', [[1, 'x'], [undefined as unknown as CopyValue, 'y']]), /a value is missing/);
    await copyRows(c, 'copy_probe (a, b)', [[2, 'tab\there']]);
    assert.deepEqual((await c.query('SELECT a, b FROM copy_probe')).rows, [{ a: 2, b: 'tab\there' }], 'the same connection goes on');
  } finally {
    c.release();
    await pool.end();
  }
});
