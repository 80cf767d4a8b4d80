import { rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatSummary } from './summary.js';
import { runServerScenarios, startFixture } from './runner.js';
import { REVISIONS, ROOT, TOOLS, assertToolsInstalled } from './tools.js';

/**
 * `npm run conformance`: the official server scenarios against the fixture upstream, once per revision, the
 * same run as test/conformance/fixture.test.ts. Prints the counts; exits 1 on an unexpected failure or a
 * stale expected failure. The checks.json files stay in conformance/results/ for reading.
 */
async function main(): Promise<number> {
  try {
    assertToolsInstalled();
  } catch (error) {
    process.stderr.write(`conformance: ${(error as Error).message}\n`);
    return 1;
  }
  const fixture = await startFixture();
  let failed = false;
  try {
    for (const revision of REVISIONS) {
      const outDir = join(TOOLS, 'results', `fixture-${revision}`);
      rmSync(outDir, { recursive: true, force: true });
      const run = await runServerScenarios('fixture', fixture.url, revision, outDir);
      process.stdout.write(`${formatSummary('fixture', run.summary)}\n  checks.json files: ${relative(ROOT, outDir)}/\n`);
      if (run.status !== 0) {
        failed = true;
        process.stdout.write(`${run.output.slice(run.output.lastIndexOf('Total:'))}\n`);
      }
      if (run.stale.length) {
        failed = true;
        process.stdout.write(`  stale expected failures (they pass now; remove them from ${run.expectedFailures}): ${run.stale.join(', ')}\n`);
      }
    }
  } finally {
    await fixture.stop();
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
