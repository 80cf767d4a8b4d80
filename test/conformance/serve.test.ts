import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { formatSummary } from './summary.js';
import { retriedNote, runProblems, runServerScenarios } from './runner.js';
import { startServeTarget } from './serve-target.js';
import { REVISIONS, assertToolsInstalled } from './tools.js';

/**
 * The official MCP conformance server scenarios against `egress-triage serve` itself (the built CLI as a
 * child process over a demo store), once per revision on its one /mcp endpoint. What fails is listed in
 * conformance/expected-failures.serve.REVISION.yaml with its reason: only features egress-triage does not
 * offer, or tools and prompts of the suite's reference server. A new failure, or a listed one that now
 * passes, fails the test.
 */
test('egress-triage serve passes the conformance server scenarios of both revisions', { timeout: 900_000 }, async (t) => {
  assertToolsInstalled();
  const out = tempDir('egress-triage-conformance-serve-out-');
  const serve = await startServeTarget();
  try {
    for (const revision of REVISIONS) {
      await t.test(`--requirements ${revision}`, async () => {
        const run = await runServerScenarios('serve', serve.url, revision, join(out.dir, revision));
        t.diagnostic(formatSummary('serve', run.summary));
        const retried = retriedNote(run);
        if (retried) t.diagnostic(retried);
        assert.deepEqual(runProblems(run), []);
      });
    }
  } finally {
    await serve.stop();
    out.cleanup();
  }
});
