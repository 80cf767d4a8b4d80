import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { expectedFailingScenarios, formatSummary } from './summary.js';
import { retriedNote, runProblems, runServerScenarios } from './runner.js';
import { startGatewayTarget } from './gateway-target.js';
import { REVISIONS, assertToolsInstalled, expectedFailuresFile } from './tools.js';

/**
 * A transparent gateway changes no result: the official server scenarios run through the HTTP policy
 * gateway (the built CLI as a child process) in front of the fixture upstream, with a policy that allows
 * every tool and forwards every extra method the fixture serves. They must pass exactly as they pass
 * directly against the fixture: the gateway's expected failures are the fixture's, and the CLI (with
 * runProblems) fails the run on any other failure and on a listed scenario that passes.
 */
test('the policy gateway in front of the fixture passes the conformance server scenarios exactly as the fixture does', { timeout: 1_200_000 }, async (t) => {
  assertToolsInstalled();
  const out = tempDir('egress-triage-conformance-gateway-out-');
  const gateway = await startGatewayTarget();
  try {
    for (const revision of REVISIONS) {
      await t.test(`--requirements ${revision}`, async () => {
        assert.deepEqual(
          expectedFailingScenarios(expectedFailuresFile('gateway', revision)),
          expectedFailingScenarios(expectedFailuresFile('fixture', revision)),
          `the gateway may fail only what the fixture fails at ${revision}`,
        );
        const run = await runServerScenarios('gateway', gateway.url, revision, join(out.dir, revision));
        t.diagnostic(formatSummary('gateway', run.summary));
        const retried = retriedNote(run);
        if (retried) t.diagnostic(retried);
        assert.deepEqual(runProblems(run), []);
      });
    }
  } finally {
    await gateway.stop();
    out.cleanup();
  }
});
