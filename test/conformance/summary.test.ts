import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { staleEntries, summarizeRun, unlistedFailures } from './summary.js';
import { assertToolsInstalled } from './tools.js';

function writeScenario(dir: string, scenario: string, statuses: string[]): void {
  const folder = join(dir, `server-${scenario}-2026-12-01T23-13-47-725Z`);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'checks.json'), JSON.stringify(statuses.map((status, i) => ({ id: `${scenario}-${i}`, status }))));
}

test('a run summary counts scenarios by outcome, a WARNING fails its scenario, and unscored scenarios are apart', () => {
  assertToolsInstalled(); // the requirement sets come from the installed conformance package
  const out = tempDir('egress-triage-conformance-summary-');
  try {
    writeScenario(out.dir, 'tools-list', ['SUCCESS', 'SUCCESS', 'INFO']);
    writeScenario(out.dir, 'caching', ['SUCCESS', 'WARNING']);
    writeScenario(out.dir, 'tasks-lifecycle', ['SUCCESS', 'FAILURE', 'FAILURE']);
    writeScenario(out.dir, 'tasks-status-notifications', []);
    const s = summarizeRun(out.dir, '2026-07-28');
    assert.deepEqual(s.scored, { passed: 1, failed: 1 });
    assert.deepEqual(s.notScored, { passed: 1, failed: 1 });
    assert.deepEqual(s.checks, { passed: 4, failed: 3 });

    const listed = out.file('expected.yaml', 'server:\n  - tasks-lifecycle # fails\n  - tools-list:tools-list-0 # passes, so stale\n  - caching\n');
    assert.deepEqual(staleEntries(listed, s), ['tools-list']);
    // an unscored failure (tasks-lifecycle) counts too: the CLI would let it pass unlisted
    const partial = out.file('partial.yaml', 'server:\n  - caching:caching-1 # one check\n');
    assert.deepEqual(unlistedFailures(partial, s), ['tasks-lifecycle']);
    assert.deepEqual(unlistedFailures(listed, s), []);
  } finally {
    out.cleanup();
  }
});
