import assert from 'node:assert/strict';
import type { NetworkCallEvent, ProcessInfo } from '../../src/domain/types.js';
import type { EngineConfig } from '../../src/detection/engine.js';
import { call, ingestCalls, tailscaled, TS0 } from '../analysis/helpers.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * Every call of a suspected impostor raises a detection, even to an endpoint the job's baseline holds
 * (engine.ts, evaluate). A binary can be flagged only part-way through a run, though, by its first
 * call outside its daemon's signature. Its calls before that raised nothing, and a repeat of one of
 * them after the flag is the same call of the run: the parser and the engine drop it. Such a call is
 * raised when the flag is raised.
 */

const T = 'quiet';
/** named tailscaled, another binary: looks like the daemon until it calls outside its signature */
const LATE: ProcessInfo = { name: 'tailscaled', path: '/usr/local/bin/tailscaled', sha256: 'e'.repeat(64), parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };
const PEER = { ip: '100.64.0.1', port: 41641 };
const EVIL = { domain: 'evil.example.com', port: 443 };

/** Ingests `events` with the job's first run learning (the peer joins its baseline), as a real ingest would. */
async function ingestLearning(at: StoreUnderTest, events: NetworkCallEvent[], batchSize?: number, engine: Partial<EngineConfig> = {}): Promise<number> {
  const store = await at.open();
  try {
    return (await ingestCalls(at, store, T, events, batchSize, { learningRuns: 1, promoteAfterRuns: 1, ...engine })).detections;
  } finally {
    await store.close();
  }
}

for (const batchSize of [undefined, 1]) {
  const batches = batchSize === undefined ? 'one write batch' : 'a write batch per line';
  storeTest(`a binary flagged part-way through a run raises its earlier quiet calls of the run, repeated after the flag or not (${batches})`, async (at) => {
    const genuine = tailscaled(true);
    const detections = await ingestLearning(
      at,
      [
        // run 1 learns the peer
        call(T, 'web', 1, TS0, genuine, PEER),
        // run 2: the other binary reaches the learned peer (nothing to raise yet), so does the real daemon,
        // then the other binary calls out of the daemon's signature, and reaches the peer again
        call(T, 'web', 2, TS0 + 10, LATE, PEER),
        call(T, 'web', 2, TS0 + 11, genuine, PEER),
        call(T, 'web', 2, TS0 + 12, LATE, EVIL),
        call(T, 'web', 2, TS0 + 13, LATE, PEER),
      ],
      batchSize,
    );
    assert.equal(detections, 2, 'the flagging call and the earlier call to the peer');
    const rows = await at.rows<{ sha256: string; host: string; status: number }>(
      `SELECT p.sha256 AS sha256, e.host AS host, d.status AS status FROM ${detectionsView(at.backend)} d
       JOIN processes p ON p.id = d.process_id JOIN endpoints e ON e.id = d.endpoint_id ORDER BY e.host`,
    );
    assert.deepEqual(
      rows.map((x) => ({ sha256: x.sha256, host: x.host, status: Number(x.status) })),
      [
        { sha256: LATE.sha256, host: '100.64.0.1', status: 0 },
        { sha256: LATE.sha256, host: 'evil.example.com', status: 0 },
      ],
      'the genuine daemon raised nothing; the flagged binary raised both its calls',
    );
  });
}

storeTest('the same file flagged under another daemon name raises its quiet calls under the first (a flag is the file\'s, by its hash)', async (at) => {
  const other: ProcessInfo = { ...LATE, name: 'tailscale' };
  const detections = await ingestLearning(at, [
    call(T, 'web', 1, TS0, tailscaled(true), PEER),
    call(T, 'web', 2, TS0 + 10, LATE, PEER),
    call(T, 'web', 2, TS0 + 12, other, EVIL),
    call(T, 'web', 2, TS0 + 13, LATE, PEER),
  ]);
  assert.equal(detections, 2, 'the flagging call, and the earlier call of the file under its other name');
});

storeTest('an open run keeps its quiet calls when its keys leave memory for other jobs\' runs', async (at) => {
  const detections = await ingestLearning(
    at,
    [
      call(T, 'web', 1, TS0, tailscaled(true), PEER),
      call(T, 'web', 2, TS0 + 10, LATE, PEER),
      // another job's run takes the one place for keys in memory
      call(T, 'docs', 7, TS0 + 11, tailscaled(true), { ip: '100.64.0.9', port: 41641 }),
      call(T, 'web', 2, TS0 + 12, LATE, EVIL),
    ],
    1,
    { hotRuns: 1 },
  );
  assert.equal(detections, 2, 'the flagging call and the earlier call to the peer');
});
