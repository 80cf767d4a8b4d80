import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeTenant, SCENARIO } from '../../src/generate/index.js';
import { runIngest, engineConfigFrom } from '../../src/cli/commands/ingest.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { RulesService } from '../../src/rules/service.js';
import { renderAnalysisTable } from '../../src/analysis/render.js';
import { rollupMismatchesOf } from './helpers.js';
import { detectionsView, eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

storeTest('demo tenant: genuine tailscaled is a candidate, the renamed impostor is not and stays visible', async (at) => {
  const store = await at.open();
  try {
    const file = join(at.dir, 'events.ndjson.gz');
    await writeTenant({ runs: 14, seed: 3, events: 40_000 }, file);
    await runIngest(store, [file], { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: engineConfigFrom({}, {}), progress: false });
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: 'default', limit: 100 }, { rules });
    const ts = res.processes.find((p) => p.process === 'tailscaled');
    assert.ok(ts, renderAnalysisTable(res));
    const bin = (sha: string) => ts.vpn_evidence.binaries.find((b) => b.sha256 === sha);
    assert.equal(bin(SCENARIO.tailscale.sha256)?.verdict, 'genuine');
    const imp = bin(SCENARIO.impostor.sha256);
    assert.ok(imp, 'the impostor appears in the demo tenant');
    assert.equal(imp.verdict, 'impostor');
    assert.equal(ts.is_vpn_process_candidate, true);
    assert.equal(ts.name_impersonation_suspected, true);
    const s = ts.suggested_rule!;
    assert.equal(s.blocked_reason, null);
    assert.equal(s.conditions.process_sha256, SCENARIO.tailscale.sha256);
    assert.equal(s.impact.risky, 0);
    for (const p of res.processes) {
      if (!p.vpn_evidence.name_match) assert.equal(p.suggested_rule, null, p.process);
    }
    const gistNew = async () =>
      (await at.value(
        `SELECT count(*) FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id JOIN endpoints e ON e.id = d.endpoint_id
         WHERE p.sha256 = ? AND d.status = 0 AND e.host = 'gist.githubusercontent.com'`,
        [SCENARIO.impostor.sha256],
      )) as number;
    const before = await gistNew();
    assert.ok(before > 0);
    const r = await rules.create('default', { detection_id: s.detection_id, conditions: s.conditions }, 'test');
    assert.equal(r.suppressed, s.impact.would_suppress);
    assert.equal(await gistNew(), before);
    assert.equal(await rollupMismatchesOf(at), 0);
    const after = await analyzeAnomalousCallsByProcess(store, { tenant: 'default', limit: 100 }, { rules });
    const ts2 = after.processes.find((p) => p.process === 'tailscaled')!;
    assert.equal(ts2.count, imp.count);
    assert.equal(ts2.is_vpn_process_candidate, false);
  } finally {
    await store.close();
  }
});
