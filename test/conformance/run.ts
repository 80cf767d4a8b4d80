import { rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatSummary } from './summary.js';
import { runProblems, runServerScenarios, startFixture, type Fixture } from './runner.js';
import { startGatewayTarget } from './gateway-target.js';
import { startServeTarget } from './serve-target.js';
import { REVISIONS, ROOT, TOOLS, assertToolsInstalled } from './tools.js';

/**
 * `npm run conformance`: the official server scenarios against the fixture upstream, against
 * `egress-triage serve`, and against the policy gateway in front of the fixture, once per revision, the
 * same runs as test/conformance/{fixture,serve,gateway}.test.ts.
 * Prints the counts; exits 1 on an unexpected failure or a stale expected failure. The checks.json files
 * stay in conformance/results/TARGET-REVISION/ for reading.
 */
const TARGETS: { name: string; start: () => Promise<Fixture> }[] = [
  { name: 'fixture', start: () => startFixture() },
  { name: 'serve', start: startServeTarget },
  { name: 'gateway', start: startGatewayTarget },
];

async function main(): Promise<number> {
  try {
    assertToolsInstalled();
  } catch (error) {
    process.stderr.write(`conformance: ${(error as Error).message}\n`);
    return 1;
  }
  let failed = false;
  for (const target of TARGETS) {
    const running = await target.start();
    try {
      for (const revision of REVISIONS) {
        const outDir = join(TOOLS, 'results', `${target.name}-${revision}`);
        rmSync(outDir, { recursive: true, force: true });
        const run = await runServerScenarios(target.name, running.url, revision, outDir);
        process.stdout.write(`${formatSummary(target.name, run.summary)}\n  checks.json files: ${relative(ROOT, outDir)}/\n`);
        for (const problem of runProblems(run)) {
          failed = true;
          process.stdout.write(`  ${problem}\n`);
        }
      }
    } finally {
      await running.stop();
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
