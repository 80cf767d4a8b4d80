import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFORMANCE_CLI, NODE22, ROOT, assertToolsInstalled, expectedFailuresFile, type Revision } from './tools.js';
import { requiredScenarios, summarizeRun, staleEntries, unlistedFailures, type RunSummary } from './summary.js';

export interface Fixture {
  url: string;
  stop: () => Promise<void>;
}

/** Starts the fixture upstream as its own process on a free loopback port; resolves once it listens. */
export function startFixture(timeoutMs = 60_000): Promise<Fixture> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/test/conformance/fixture/main.js'), '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => void stop().then(() => reject(new Error(`the fixture did not start within ${timeoutMs} ms:\n${output}`))), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /fixture listening on (\S+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve({ url: match[1]!, stop });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the fixture exited before listening (code ${code}, signal ${signal}):\n${output}`));
    });
  });
}

export interface ConformanceRun {
  status: number | null;
  /** Server runs: scenarios that failed unlisted at first and passed when run again on their own (runServerScenarios). */
  retried?: string[];
  /** The CLI's own report: per-scenario lines, totals and the baseline verdict. */
  output: string;
  summary: RunSummary;
  /** Expected failures that passed, including unscored scenarios the CLI does not flag. */
  stale: string[];
  /** Failing scenarios the expected-failures file does not list, unscored ones included. */
  unlisted: string[];
  /** Client runs: scenarios of the requirement set that left no result at all. */
  missing: string[];
  expectedFailures: string;
}

/** What a test's diagnostics should say of a run's retried scenarios, or null when none was retried. */
export function retriedNote(run: ConformanceRun): string | null {
  if (!run.retried?.length) return null;
  return `failed at first, passed when run again on its own: ${run.retried.join(', ')}; the first run said:\n${run.output.slice(run.output.lastIndexOf('Total:'))}`;
}

/** Why a run does not prove conformance, one line each; empty when it does. */
export function runProblems(run: ConformanceRun): string[] {
  const problems: string[] = [];
  if (run.status !== 0) problems.push(`the conformance CLI exited ${run.status}:\n${run.output.slice(run.output.lastIndexOf('Total:'))}`);
  if (run.summary.scored.passed === 0) problems.push(`no scored scenario passed at ${run.summary.revision}:\n${run.output.slice(-3000)}`);
  if (run.stale.length) problems.push(`stale expected failures (they pass now; remove them from ${run.expectedFailures}): ${run.stale.join(', ')}`);
  if (run.unlisted.length) problems.push(`failing but not listed in ${run.expectedFailures}: ${run.unlisted.join(', ')}`);
  if (run.missing.length) problems.push(`no result for: ${run.missing.join(', ')}`);
  return problems;
}

/** Runs the conformance CLI under Node 22 from the checkout root; resolves with its exit status and plain output. */
async function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; output: string }> {
  const child = spawn(NODE22, [CONFORMANCE_CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // The CLI colours its verdict lines whatever the terminal; keep logs and assertion messages plain.
  return { status, output: output.replace(/\x1b\[[0-9;]*m/g, '') };
}

/**
 * Runs the official server scenarios of one revision's requirement set against `url` under Node 22, with the
 * target's expected-failures file, writing checks.json files under `outDir`.
 *
 * A scenario that failed without being listed runs once more, on its own, and counts as passed only if it
 * passes then (`retried` names it, with the first run's report, for the test's diagnostics). Some of the
 * 2026-07-28 probes read a response stream for 500 to 1,500 ms and fail when nothing came by then
 * (server-stateless, the conformance package's own timeouts): in a whole-suite run, four test files at a
 * time on two cores, the fixture was once starved that long (CI run of 2026-12-07 22:38 UTC; alone it
 * passed). A scenario that really fails fails both times.
 */
export async function runServerScenarios(target: string, url: string, revision: Revision, outDir: string): Promise<ConformanceRun> {
  assertToolsInstalled();
  mkdirSync(outDir, { recursive: true });
  const expectedFailures = expectedFailuresFile(target, revision);
  const { status, output } = await runCli(['server', '--url', url, '--requirements', revision, '--expected-failures', expectedFailures, '-o', outDir]);
  const summary = summarizeRun(outDir, revision);
  const stale = staleEntries(expectedFailures, summary);
  const unlisted: string[] = [];
  const retried: string[] = [];
  for (const scenario of unlistedFailures(expectedFailures, summary)) {
    const again = await runCli(['server', '--url', url, '--scenario', scenario, '--spec-version', revision, '--force', '--expected-failures', expectedFailures, '-o', `${outDir}-retry-${scenario}`]);
    if (again.status === 0) retried.push(scenario);
    else unlisted.push(scenario);
  }
  // the CLI's exit status judged the first run: a retry that passed clears it when nothing else failed
  const cleared = status !== 0 && retried.length > 0 && unlisted.length === 0 && stale.length === 0;
  return { status: cleared ? 0 : status, output, summary, stale, unlisted, missing: [], expectedFailures, retried };
}

export interface ClientUnderTest {
  /**
   * What the CLI runs once per scenario, with the scenario server's URL appended. The CLI splits it on spaces,
   * so no part may contain one.
   */
  command: string[];
  /** See SummaryOptions.completedMarker. */
  completedMarker?: RegExp;
}

/**
 * A client scenario may take this long: the CLI starts them all at once, and the clients then take turns for
 * a few slots (EGRESS_TRIAGE_CONFORMANCE_SLOTS, see test/conformance/gateway-client.ts).
 */
const CLIENT_SCENARIO_TIMEOUT_MS = 300_000;

/**
 * Runs the official client scenarios of one revision's requirement set (scored and unscored, all at once, as
 * the CLI does for --requirements), each against `client.command`, with the target's expected-failures file.
 *
 * With `only`, just the required scenarios it accepts run, all at once too: one CLI per scenario, with
 * `--scenario S --spec-version REVISION --force`, which is how the CLI itself runs each scenario of a
 * requirement set (the revision's wire, applicability not asked). `missing` then counts those scenarios only.
 */
export async function runClientScenarios(
  target: string,
  client: ClientUnderTest,
  revision: Revision,
  outDir: string,
  only?: (scenario: string) => boolean,
): Promise<ConformanceRun> {
  assertToolsInstalled();
  const spaced = client.command.find((part) => /\s/.test(part));
  if (spaced !== undefined) throw new Error(`the conformance CLI splits the client command on spaces, so "${spaced}" cannot be part of it: use a checkout path without spaces`);
  mkdirSync(outDir, { recursive: true });
  const expectedFailures = expectedFailuresFile(target, revision);
  const required = requiredScenarios(revision, 'client');
  const wanted = [...required.scored, ...required.notScored].filter((s) => !only || only(s));
  const common = ['--command', client.command.join(' '), '--timeout', String(CLIENT_SCENARIO_TIMEOUT_MS), '--expected-failures', expectedFailures, '-o', outDir];
  const invocations = only
    ? wanted.map((scenario) => ['client', '--scenario', scenario, '--spec-version', revision, '--force', ...common])
    : [['client', '--requirements', revision, ...common]];
  const slots = mkdtempSync(join(tmpdir(), 'egress-triage-conformance-slots-'));
  let runs: { status: number | null; output: string }[];
  try {
    runs = await Promise.all(invocations.map((args) => runCli(args, { ...process.env, EGRESS_TRIAGE_CONFORMANCE_SLOTS: slots })));
  } finally {
    rmSync(slots, { recursive: true, force: true });
  }
  // a CLI killed by a signal has no status (null): that is a failure, not a pass
  const failed = runs.find((r) => r.status !== 0);
  const status = failed ? failed.status : 0;
  const output = runs.map((r) => r.output).join('\n');
  const summary = summarizeRun(outDir, revision, { leg: 'client', completedMarker: client.completedMarker });
  const ran = new Set(summary.scenarios.map((s) => s.scenario));
  const missing = wanted.filter((s) => !ran.has(s));
  // the file's entries for scenarios that did not run cannot be judged stale here
  const stale = staleEntries(expectedFailures, summary);
  return { status, output, summary, stale, unlisted: unlistedFailures(expectedFailures, summary), missing, expectedFailures };
}
