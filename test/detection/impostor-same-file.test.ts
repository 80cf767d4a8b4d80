import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { RulesService } from '../../src/rules/service.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import type { ProcessInfo } from '../../src/domain/types.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { call, ingestCalls, nativeLine, rollupMismatchesOf, tailscaled, TS0 } from '../analysis/helpers.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * A self-deleting impostor: a binary named tailscaled calls like the daemon while its file exists
 * (its hash is read), then deletes itself, and its later calls come with the agent's "no such file"
 * in place of a hash, so they are keyed by path. When those contradict the daemon, the hash-less
 * binary is flagged; the file's hashed identity, seen at the same path in the same run, must be
 * flagged with it, and what a rule on the daemon's name suppressed of it come back as new. The
 * genuine daemon at its own path, and the same hash in runs where nothing contradicted, are left be.
 */

const T = 'selfdel';
const PATH = '/usr/local/bin/tailscaled';
const X = 'f'.repeat(64);
const CLEAN = { name: 'sudo', parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };
const HASHED: ProcessInfo = { name: 'tailscaled', path: PATH, sha256: X, parent: CLEAN };
const DELETED: ProcessInfo = { name: 'tailscaled', path: PATH, sha256: `open ${PATH}: no such file or directory`, parent: CLEAN };

const peers = (run: number, p: ProcessInfo, from: number, n = 3) =>
  Array.from({ length: n }, (_, i) => call(T, 'api', run, TS0 + run * 60_000 + from + i, p, { ip: `100.64.${run}.${from + i + 1}`, port: 41641 }));
const contradiction = (run: number, p: ProcessInfo, at: number) => call(T, 'api', run, TS0 + run * 60_000 + at, p, { domain: 'evil.example.com', port: 443 });

async function statusBySha(at: StoreUnderTest): Promise<{ sha: string; status: number; n: number }[]> {
  return (await at.rows(
    `SELECT coalesce(p.sha256, 'none') AS sha, d.status, count(*) AS n FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id
     GROUP BY p.sha256, d.status ORDER BY sha, d.status`,
  )) as { sha: string; status: number; n: number }[];
}

async function impostorKeys(store: OpenStore): Promise<string[]> {
  const port = store.rulesPort(riskyDestinations());
  const tid = (await port.tenantId(T))!;
  return (await port.impostors(tid)).set.list().map((b) => `${b.sha256 ? b.sha256.slice(0, 1) : `path:${b.path}`}`).sort();
}

async function withRule(at: StoreUnderTest, store: OpenStore): Promise<void> {
  // the genuine daemon at its own path, and a rule on the daemon's name
  await ingestCalls(at, store, T, [call(T, 'api', 1, TS0, tailscaled(true), { ip: '100.64.0.1', port: 41641 })]);
  await new RulesService(store).create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled' } }, 't');
}

storeTest('a self-deleting impostor: its hashed calls of the run where its hash-less ones contradict the daemon are not left suppressed', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // one ingest: the hashed calls are suppressed as they are written; the contradiction comes after
    const r = await ingestCalls(at, store, T, [...peers(2, HASHED, 0), ...peers(2, DELETED, 10, 1), contradiction(2, DELETED, 20)]);
    assert.equal(r.suppressedOnIngest, 0, 'what was linked after its write is not reported as suppressed');
    assert.deepEqual(await statusBySha(at), [
      { sha: 'a'.repeat(64), status: 1, n: 1 },
      { sha: X, status: 0, n: 3 },
      { sha: 'none', status: 0, n: 2 },
    ]);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH}`]);
    // a later run of the same hash, alone: never suppressed again
    const later = await ingestCalls(at, store, T, peers(3, HASHED, 0, 2));
    assert.equal(later.suppressedOnIngest, 0);
    // run 3 completed run 2: none of the file's calls taught the baseline, under either identity
    assert.deepEqual(await at.rows(`SELECT e.endpoint FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id ORDER BY e.endpoint`), [{ endpoint: '100.64.0.1:41641' }]);
    // the rule cannot be widened over it either
    const preview = await new RulesService(store).preview(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process_sha256: X } });
    assert.match(String(preview.refused_reason), /same file \(\/usr\/local\/bin\/tailscaled\)/);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('a self-deleting impostor across two ingests: the contradiction in the second releases what the first suppressed', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // run 2: the hashed calls in one ingest (suppressed), the contradicting hash-less ones in the next
    assert.equal((await ingestCalls(at, store, T, peers(2, HASHED, 0))).suppressedOnIngest, 3);
    await ingestCalls(at, store, T, [contradiction(2, DELETED, 20)]);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH}`]);
    assert.deepEqual((await statusBySha(at)).filter((s) => s.sha === X), [{ sha: X, status: 0, n: 3 }]);
  } finally {
    await store.close();
  }
});

storeTest('the hash-less identity of a flagged hashed binary is linked, and a run where nothing contradicted links nothing', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // run 4: hashing fails for the genuine daemon too, and nothing contradicts: nothing is linked
    const GENUINE_NO_HASH: ProcessInfo = { ...tailscaled(true), sha256: 'permission denied' };
    assert.equal((await ingestCalls(at, store, T, [...peers(4, tailscaled(true), 0, 1), ...peers(4, GENUINE_NO_HASH, 5, 1)])).suppressedOnIngest, 2);
    assert.deepEqual(await impostorKeys(store), []);
    // run 5: the hashed binary contradicts first, its hash-less calls come in a later ingest
    await ingestCalls(at, store, T, [contradiction(5, HASHED, 0)]);
    assert.deepEqual(await impostorKeys(store), ['f']);
    const r = await ingestCalls(at, store, T, peers(5, DELETED, 10, 2));
    assert.equal(r.suppressedOnIngest, 0);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH}`]);
    assert.deepEqual(await statusBySha(at), [
      { sha: 'a'.repeat(64), status: 1, n: 2 },
      { sha: X, status: 0, n: 1 },
      { sha: 'none', status: 0, n: 2 },
      { sha: 'none', status: 1, n: 1 },
    ]);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('a run that completes after the link, in the same ingest, does not count the linked binary’s calls towards the baseline', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // batches of five lines: run 2 (the hashed calls, then the contradiction) is stored and linked
    // before run 3's call completes it, on memory, in the next batch
    const events = [...peers(2, HASHED, 0, 3), ...peers(2, DELETED, 10, 1), contradiction(2, DELETED, 20), call(T, 'api', 3, TS0 + 3 * 60_000, tailscaled(true), { ip: '100.64.0.1', port: 41641 })];
    const r = await ingestCalls(at, store, T, events, 5);
    assert.equal(r.suppressedOnIngest, 1, 'only the genuine daemon’s call of run 3');
    assert.deepEqual(await at.rows(`SELECT e.endpoint, b.runs_seen FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id ORDER BY e.endpoint`), [{ endpoint: '100.64.0.1:41641', runs_seen: 1 }]);
  } finally {
    await store.close();
  }
});

storeTest('a run that completes in the write batch that flags its file does not count the file’s calls towards the baseline', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // one write batch: run 2's hashed calls, the contradiction of its hash-less identity, and run 3's
    // call that completes run 2 on memory, before link() has stored the link
    const events = [...peers(2, HASHED, 0, 3), contradiction(2, DELETED, 20), call(T, 'api', 3, TS0 + 3 * 60_000, tailscaled(true), { ip: '100.64.0.1', port: 41641 })];
    await ingestCalls(at, store, T, events);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH}`]);
    assert.deepEqual(await at.rows(`SELECT e.endpoint, b.runs_seen FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id ORDER BY e.endpoint`), [{ endpoint: '100.64.0.1:41641', runs_seen: 1 }]);
  } finally {
    await store.close();
  }
});

storeTest('a hash-less binary reported at its deleted path is linked to the hash ingested after it', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // Auditbeat-style: the path read from /proc/PID/exe once the file is gone ends in " (deleted)"
    const GONE: ProcessInfo = { ...DELETED, path: `${PATH} (deleted)` };
    await ingestCalls(at, store, T, [contradiction(6, GONE, 30)]);
    assert.deepEqual(await impostorKeys(store), [`path:${PATH} (deleted)`]);
    // the file's hashed calls of the same run, in a later ingest (the input was split out of order)
    const r = await ingestCalls(at, store, T, peers(6, HASHED, 0, 2));
    assert.equal(r.suppressedOnIngest, 0);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH} (deleted)`]);
    assert.deepEqual((await statusBySha(at)).filter((s) => s.sha === X), [{ sha: X, status: 0, n: 2 }]);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('review: a flagged hash that calls in a run after its hash-less identity was stored links it, and the release is not lost', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // the hash is flagged in run 2; run 3's hash-less calls come first (suppressed: nothing links yet)
    await ingestCalls(at, store, T, [contradiction(2, HASHED, 0)]);
    assert.equal((await ingestCalls(at, store, T, peers(3, DELETED, 10, 2))).suppressedOnIngest, 2);
    // then the hash calls in run 3, only like the daemon does: the file is the flagged hash's
    await ingestCalls(at, store, T, [call(T, 'api', 3, TS0 + 3 * 60_000 + 1, HASHED, { domain: 'controlplane.tailscale.com', port: 443 })]);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH}`]);
    assert.deepEqual((await statusBySha(at)).filter((s) => s.sha === 'none'), [{ sha: 'none', status: 0, n: 2 }]);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('review: a late call of a completed run, at a flagged file, does not teach the baseline before the link', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // run 2: the hash-less identity contradicts; run 3 completes run 2
    await ingestCalls(at, store, T, [contradiction(2, DELETED, 20), call(T, 'api', 3, TS0 + 3 * 60_000, tailscaled(true), { ip: '100.64.0.1', port: 41641 })]);
    // a late call of run 2 by the file's hash, to an endpoint nothing else called
    await ingestCalls(at, store, T, [call(T, 'api', 2, TS0 + 2 * 60_000 + 5, HASHED, { ip: '198.51.100.9', port: 443 })]);
    assert.deepEqual(await impostorKeys(store), ['f', `path:${PATH}`]);
    const learned = (await at.rows(`SELECT e.endpoint FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id ORDER BY e.endpoint`)) as { endpoint: string }[];
    assert.deepEqual(learned.map((r) => r.endpoint), ['100.64.0.1:41641']);
  } finally {
    await store.close();
  }
});

storeTest('review: an ingest that stopped between its write and the link leaves nothing suppressed for the next one to miss', async (at) => {
  const store = await at.open();
  try {
    await withRule(at, store);
    // the batch is stored, then link() fails (a killed process, a lost connection): the ingest fails
    const file = join(at.dir, 'stopped.ndjson');
    writeFileSync(file, [...peers(2, HASHED, 0), contradiction(2, DELETED, 20)].map(nativeLine).join('\n') + '\n');
    const stopping = new IngestPipeline(store, {
      tenant: T, format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1_000_000 },
      suppressorFor: async (s, t) => ({ ...(await s.ingestSuppressor(t)), link: async () => Promise.reject(new Error('stopped')) }),
    });
    await assert.rejects(stopping.ingest(file), /stopped/);
    assert.deepEqual((await statusBySha(at)).filter((r) => r.sha === X), [{ sha: X, status: 1, n: 3 }], 'the link was not stored');
    // any later ingest of the tenant releases what the verdict links
    await ingestCalls(at, store, T, [call(T, 'api', 9, TS0 + 9 * 60_000, tailscaled(true), { ip: '100.64.0.1', port: 41641 })]);
    assert.deepEqual((await statusBySha(at)).filter((r) => r.sha === X), [{ sha: X, status: 0, n: 3 }]);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});
