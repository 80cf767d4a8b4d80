import { rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatSummary } from './summary.js';
import { retriedNote, runClientScenarios, runProblems, runServerScenarios, startFixture, type ConformanceRun, type Fixture } from './runner.js';
import { GATEWAY_CLIENT } from './gateway-client-target.js';
import { startGatewayTarget } from './gateway-target.js';
import { startServeTarget } from './serve-target.js';
import { REVISIONS, ROOT, TOOLS, assertToolsInstalled } from './tools.js';

/**
 * `npm run conformance`: the official server scenarios against the fixture upstream, against
 * `egress-triage serve`, and against the policy gateway in front of the fixture, then the client scenarios
 * against the gateway's upstream side, once per revision: the same runs as
 * test/conformance/{fixture,serve,gateway,gateway-client}.test.ts.
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
  const report = (name: string, outDir: string, run: ConformanceRun) => {
    process.stdout.write(`${formatSummary(name, run.summary)}\n  checks.json files: ${relative(ROOT, outDir)}/\n`);
    const retried = retriedNote(run);
    if (retried) process.stdout.write(`  ${retried}\n`);
    for (const problem of runProblems(run)) {
      failed = true;
      process.stdout.write(`  ${problem}\n`);
    }
  };
  const freshDir = (name: string) => {
    const outDir = join(TOOLS, 'results', name);
    rmSync(outDir, { recursive: true, force: true });
    return outDir;
  };
  for (const target of TARGETS) {
    const running = await target.start();
    try {
      for (const revision of REVISIONS) {
        const outDir = freshDir(`${target.name}-${revision}`);
        report(target.name, outDir, await runServerScenarios(target.name, running.url, revision, outDir));
      }
    } finally {
      await running.stop();
    }
  }
  for (const revision of REVISIONS) {
    const outDir = freshDir(`gateway-client-${revision}`);
    report('gateway (client side)', outDir, await runClientScenarios('gateway-client', GATEWAY_CLIENT, revision, outDir));
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
