import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { formatSummary } from './summary.js';
import { retriedNote, runProblems, runServerScenarios, startFixture } from './runner.js';
import { REVISIONS, assertToolsInstalled } from './tools.js';

/**
 * The official MCP conformance server scenarios (@modelcontextprotocol/conformance, run under Node 22 from
 * conformance/) against the fixture upstream, once per revision: 2025-11-25 sessions and 2026-07-28 stateless
 * requests on the same /mcp endpoint. The CLI exits non-zero on a failure its expected-failures file does
 * not list and on a listed scenario that passes; runProblems adds the unscored scenarios it does not judge.
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
        const retried = retriedNote(run);
        if (retried) t.diagnostic(retried);
        assert.deepEqual(runProblems(run), []);
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
