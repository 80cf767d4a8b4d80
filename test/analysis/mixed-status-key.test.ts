import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { call, ingestCalls, proc, rollupMismatchesOf, TS0 } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

const T = 'mixed';
const NOC = 'New-Outbound-Network-Call';
const H = 3_600_000;

/**
 * One rollup key (day, job, process, endpoint, ip) whose detections have two statuses: two calls
 * suppressed by a rule that was then deleted without restore, two later calls of the same day new.
 * A windowed analysis reads the fine rollups, whose every-status row spans all four: the counts and
 * first/last seen of each status must still be those of its own detections.
 */
storeTest('a rollup key with detections of several statuses gives each status its own count and first/last seen', async (at) => {
  const store = await at.open();
  try {
    const curl = (run: number, ts: number) => call(T, 'web', run, ts, proc('curl'), { domain: 'api.example.com', port: 443 });
    await ingestCalls(at, store, T, [curl(1, TS0 + 1 * H), curl(2, TS0 + 2 * H), call(T, 'web', 2, TS0 + 2 * H, proc('node'), { domain: 'npm.example.com', port: 443 })]);
    const svc = new RulesService(store);
    const rule = await svc.create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    assert.equal(rule.suppressed, 2);
    await svc.delete(T, rule.rule.rule_id, {}, 't');
    await ingestCalls(at, store, T, [curl(3, TS0 + 3 * H), curl(4, TS0 + 4 * H)]);
    assert.equal((await rollupMismatchesOf(at)), 0);
    // SQLite's fine rollup has one row per key for every status (PostgreSQL's keys include the status)
    if (at.backend === 'sqlite') assert.equal(await at.value('SELECT count(*) FROM detection_rollup WHERE process_id = (SELECT id FROM processes WHERE norm_name = ?)', ['curl']), 1, 'one key');
    const iso = (ts: number) => new Date(ts).toISOString();
    const since = iso(TS0 - 24 * H); // whole days from the fine rollups
    const expect = { new: [2, 3, 4], suppressed: [2, 1, 2], all: [4, 1, 4] } as const;
    for (const status of ['new', 'suppressed', 'all'] as const) {
      const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, status, since, minCount: 1 }, { rules: svc });
      const g = res.processes.find((p) => p.process === 'curl');
      const [count, first, last] = expect[status];
      assert.deepEqual([g?.count, g?.first_seen, g?.last_seen], [count, iso(TS0 + first * H), iso(TS0 + last * H)], status);
    }
  } finally {
    await store.close();
  }
});
