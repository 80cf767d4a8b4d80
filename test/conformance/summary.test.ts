import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { staleEntries, summarizeRun, unlistedFailures } from './summary.js';
import { assertToolsInstalled } from './tools.js';

function writeScenario(dir: string, scenario: string, statuses: string[], o: { prefix?: string; stderr?: string } = {}): void {
  const folder = join(dir, `${o.prefix ?? 'server-'}${scenario}-2026-12-01T23-13-47-725Z`);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'checks.json'), JSON.stringify(statuses.map((status, i) => ({ id: `${scenario}-${i}`, status }))));
  if (o.stderr !== undefined) writeFileSync(join(folder, 'stderr.txt'), o.stderr);
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

test('a client run is read from <scenario>-<time> folders, auth/* ones nested, and a client that never completed fails its scenario', () => {
  assertToolsInstalled();
  const out = tempDir('egress-triage-conformance-summary-client-');
  try {
    const done = (s: string) => `gateway-client: +12ms completed ${s}\n`;
    writeScenario(out.dir, 'tools_call', ['SUCCESS', 'SUCCESS'], { prefix: '', stderr: done('tools_call') });
    writeScenario(out.dir, 'json-schema-ref-no-deref', ['SUCCESS'], { prefix: '', stderr: 'gateway-client: +9ms failed: boom\n' });
    writeScenario(out.dir, 'auth/dpop', ['FAILURE'], { prefix: '', stderr: '' });
    writeScenario(out.dir, 'server-caching', ['SUCCESS'], { prefix: '' }); // a server result folder name, read as a client scenario
    const marker = /^gateway-client: \+\d+ms completed \S+$/m;
    const s = summarizeRun(out.dir, '2026-07-28', { leg: 'client', completedMarker: marker });
    assert.deepEqual(
      s.scenarios.map((x) => [x.scenario, x.passed, x.scored]),
      [
        ['auth/dpop', false, false], // an extension: run, never scored
        ['json-schema-ref-no-deref', false, true], // every check passed, but the client did not finish
        ['server-caching', false, true], // no stderr.txt, so no completion line
        ['tools_call', true, true],
      ],
    );
    const listed = out.file('expected.yaml', 'client:\n  - auth/dpop # extension\nserver:\n  - tools_call # the server side is not read for a client run\n');
    assert.deepEqual(unlistedFailures(listed, s), ['json-schema-ref-no-deref', 'server-caching']);
    assert.deepEqual(staleEntries(listed, s), []);
  } finally {
    out.cleanup();
  }
});
