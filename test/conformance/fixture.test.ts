import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { expectedFailingScenarios, formatSummary } from './summary.js';
import { runServerScenarios, startFixture } from './runner.js';
import { REVISIONS, assertToolsInstalled } from './tools.js';

/**
 * The official MCP conformance server scenarios (@modelcontextprotocol/conformance, run under Node 22 from
 * conformance/) against the fixture upstream, once per revision: 2025-11-25 sessions and 2026-07-28 stateless
 * requests on the same /mcp endpoint. The CLI exits non-zero on a failure its expected-failures file does
 * not list and on a listed scenario that passes.
 */
test('the fixture upstream passes the conformance server scenarios of both revisions', { timeout: 900_000 }, async (t) => {
  assertToolsInstalled();
  const out = tempDir('egress-triage-conformance-');
  const fixture = await startFixture();
  try {
    for (const revision of REVISIONS) {
      await t.test(`--requirements ${revision}`, async () => {
        const run = await runServerScenarios('fixture', fixture.url, revision, join(out.dir, revision));
        t.diagnostic(formatSummary('fixture', run.summary));
        assert.equal(run.status, 0, `the conformance CLI failed at ${revision}:\n${run.output.slice(-6000)}`);
        assert.ok(run.summary.scored.passed > 0, `no scored scenario ran at ${revision}:\n${run.output.slice(-3000)}`);
        assert.deepEqual(run.stale, [], `listed in ${run.expectedFailures} but passing`);
        // Unscored scenarios never fail the CLI; their failures must still be listed, with a reason.
        const listed = new Set(expectedFailingScenarios(run.expectedFailures));
        const unlisted = run.summary.scenarios.filter((s) => !s.passed && !listed.has(s.scenario)).map((s) => s.scenario);
        assert.deepEqual(unlisted, [], `failing at ${revision} but not listed in ${run.expectedFailures}`);
      });
    }
  } finally {
    await fixture.stop();
    out.cleanup();
  }
});

test('without the conformance tools installed the run fails and says how to install them', () => {
  const empty = tempDir('egress-triage-conformance-tools-');
  try {
    assert.throws(() => assertToolsInstalled(empty.dir), /npm ci --prefix conformance/);
  } finally {
    empty.cleanup();
  }
});
