import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import { SqliteInventoryRepository } from '../../src/storage/sqlite/inventory-repo.js';
import { call, ingest, proc, tmpStore, TS0 } from '../analysis/helpers.js';

const T = 'inv';
const NOC = 'New-Outbound-Network-Call';

test('inventory counts detections by status from the status rows: indicator lookups and runs', async () => {
  const { store, cleanup } = tmpStore();
  try {
    const evs = [];
    for (let i = 0; i < 6; i++) {
      evs.push(call(T, 'web', 100 + i, TS0 + i * 3_600_000, proc(i % 2 ? 'curl' : 'node'), { domain: 'api.example.com', port: 443 }));
    }
    await ingest(store, T, evs);
    const inv = new SqliteInventoryRepository(store.db);
    const before = (await inv.checkIocInBaseline(T, { indicator: 'api.example.com', limit: 10 })).detections;
    assert.deepEqual(before, { new: 6, suppressed: 0, resolved: 0 });
    const rule = await new RulesService(store).create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    assert.equal(rule.suppressed, 3);
    assert.deepEqual((await inv.checkIocInBaseline(T, { indicator: 'api.example.com', limit: 10 })).detections, { new: 3, suppressed: 3, resolved: 0 });
    const runs = (await inv.listRecentRuns(T, { owner: 'acme', limit: 10 })).runs;
    assert.equal(runs.length, 6);
    assert.deepEqual(runs.map((r) => [r.detections, r.new_detections]).sort(), [[1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [1, 1]]);
  } finally {
    cleanup();
  }
});
