import { sqliteIngestTarget } from '../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeTenant } from '../../src/generate/index.js';
import { runIngest, engineConfigFrom } from '../../src/cli/commands/ingest.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { RulesService } from '../../src/rules/service.js';
import { GOLDEN_TENANT, goldenOutputs } from './golden-cases.js';
import { tmpStore } from './helpers.js';

/**
 * The analysis's JSON is byte-identical to the golden outputs captured from the build before the
 * analysis moved onto the analysis-aggregates port (test/fixtures/analysis-golden.json.gz): the demo
 * tenant unfiltered, filtered, paged by page number and by cursor, and after a rule suppressed part
 * of it. A difference is written to the temp folder for inspection before the test fails.
 *
 * When the output is meant to change (an intended analysis change, or ingest or the generator now
 * storing different detections), re-capture with ANALYSIS_GOLDEN_UPDATE=1 and review the diff.
 */
const FIXTURE = 'test/fixtures/analysis-golden.json.gz';

test('analyze output is unchanged: golden JSON of the demo tenant, filtered and cursor-paged calls', async () => {
  const golden = JSON.parse(gunzipSync(readFileSync(FIXTURE)).toString('utf8')) as Record<string, string>;
  const { store, dir, cleanup } = tmpStore();
  try {
    const file = join(dir, 'events.ndjson.gz');
    await writeTenant(GOLDEN_TENANT, file);
    await runIngest(sqliteIngestTarget(store), [file], { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: engineConfigFrom({}, {}), progress: false });
    const rules = new RulesService(store);
    const ruleIds: string[] = [];
    const made = await goldenOutputs(
      (input) => analyzeAnomalousCallsByProcess(store, input, { rules }),
      async (conditions) => {
        ruleIds.push((await rules.create('default', { detection_id: 'New-Outbound-Network-Call', conditions }, 'golden')).rule.rule_id);
      },
    );
    // a rule's id is random: an output that names one (a suggestion the rule already is) names it by its place
    const outs = new Map([...made].map(([name, json]) => [name, ruleIds.reduce((j, id, i) => j.replaceAll(id, `<rule ${i + 1}>`), json)]));
    if (process.env.ANALYSIS_GOLDEN_UPDATE) writeFileSync(FIXTURE, gzipSync(JSON.stringify(Object.fromEntries(outs), null, 1) + '\n', { level: 9 }));
    assert.deepEqual([...outs.keys()].sort(), Object.keys(golden).sort());
    for (const [name, json] of outs) {
      if (json === golden[name]) continue;
      const got = json.split('\n');
      const want = golden[name]!.split('\n');
      const line = got.findIndex((l, i) => l !== want[i]);
      const base = join(tmpdir(), `analysis-golden-${name}`);
      writeFileSync(`${base}.actual.json`, json);
      writeFileSync(`${base}.expected.json`, golden[name]!);
      assert.fail(`${name}: differs at line ${line + 1}:\n  got:  ${got[line]}\n  want: ${want[line]}\n(full files: ${base}.actual.json, ${base}.expected.json)`);
    }
  } finally {
    cleanup();
  }
});
