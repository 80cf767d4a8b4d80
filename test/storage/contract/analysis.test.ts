import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { tempDir } from '../../helpers.js';
import { backends } from './backends.js';
import { writeTenant } from '../../../src/generate/index.js';
import { runIngest, engineConfigFrom } from '../../../src/cli/commands/ingest.js';
import { analyzeAnomalousCallsByProcess } from '../../../src/analysis/analyze-by-process.js';
import { openStore, type OpenStore } from '../../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../../src/storage/location.js';
import type { AnalyzeInput, AnalyzeResult } from '../../../src/analysis/types.js';
import { GOLDEN_CALLS, GOLDEN_TENANT } from '../../analysis/golden-cases.js';

/**
 * The golden analysis scenarios on every backend: the demo tenant ingested into each store through
 * the backend picker, then every golden call and two cursor walks. SQLite gives the golden JSON
 * byte for byte. PostgreSQL gives the same counts, groups, verdicts, evidence, suggested rules with
 * their exact impact, samples, pages and cursors; only the sample ids differ, each store's own row ids.
 */

const FIXTURE = 'test/fixtures/analysis-golden.json.gz';
const golden = JSON.parse(gunzipSync(readFileSync(FIXTURE)).toString('utf8')) as Record<string, string>;
const tmp = tempDir();
after(() => tmp.cleanup());
const events = join(tmp.dir, 'events.ndjson.gz');

async function outputs(ports: OpenStore): Promise<Map<string, AnalyzeResult>> {
  const rules = ports.analysisRules();
  const analyze = (input: AnalyzeInput) => analyzeAnomalousCallsByProcess(ports, input, { rules });
  const out = new Map<string, AnalyzeResult>();
  for (const [name, input] of GOLDEN_CALLS) out.set(name, await analyze(input));
  for (const [name, base] of [
    ['walk', { tenant: 'default', limit: 2, minCount: 1, samples: 1, dashboardUrl: 'https://dash.example.test' }],
    ['walk-filtered', { tenant: 'default', limit: 2, minCount: 1, samples: 1, since: '2026-11-02T06:00:00Z', owner: 'globex', dashboardUrl: 'https://dash.example.test' }],
  ] as [string, AnalyzeInput][]) {
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const r = await analyze({ ...base, cursor });
      out.set(`${name}-${i}`, r);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
  }
  return out;
}

/** Sample ids as '#': each store numbers its own rows. Everything else must be equal. */
function withoutIds(r: AnalyzeResult): AnalyzeResult {
  const c = JSON.parse(JSON.stringify(r)) as AnalyzeResult;
  for (const g of c.processes) for (const s of g.sample_detections) s.id = '#';
  return c;
}

const results = new Map<string, Map<string, AnalyzeResult>>();

for (const backend of backends()) {
  test(`analysis golden scenarios on ${backend.name}`, async () => {
    if (!results.size) await writeTenant(GOLDEN_TENANT, events);
    const store = await backend.create();
    const ports = await openStore(resolveStoreLocation(store.location, {}), 'create');
    try {
      await runIngest(ports, [events], { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: engineConfigFrom({}, {}), progress: false });
      const outs = await outputs(ports);
      results.set(backend.name, outs);
      if (backend.name === 'sqlite') {
        for (const [name, r] of outs) assert.equal(JSON.stringify(r, null, 2) + '\n', golden[name], `${name} equals the golden JSON`);
        return;
      }
      const ref = results.get('sqlite');
      assert.ok(ref, 'the SQLite run comes first');
      assert.deepEqual([...outs.keys()], [...ref.keys()]);
      let suggestions = 0;
      for (const [name, r] of outs) {
        const want: AnalyzeResult = ref.get(name)!;
        suggestions += want.processes.filter((g) => g.suggested_rule).length;
        assert.deepEqual(withoutIds(r), withoutIds(want), `${name}: PostgreSQL answers as SQLite`);
        assert.ok(r.total_anomalies_scanned > 0 || name === 'same-day-window');
      }
      assert.ok(suggestions > 0, 'the scenarios include suggested rules');
    } finally {
      await ports.close();
    }
  });
}
