import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REQUIREMENTS_DIR, type Revision } from './tools.js';

type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';

export interface ScenarioResult {
  scenario: string;
  passed: boolean;
  /** Not counted toward conformance for this revision (extension, pending, added after the release). */
  scored: boolean;
  checksPassed: number;
  checksFailed: number;
}

export interface RunSummary {
  revision: Revision;
  scenarios: ScenarioResult[];
  scored: { passed: number; failed: number };
  notScored: { passed: number; failed: number };
  checks: { passed: number; failed: number };
}

/** Results are written as <out>/server-<scenario>-<ISO time>/checks.json. */
const RESULT_DIR = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/;

/** The scenarios a revision's frozen requirement set lists as run but never scored. */
function notScoredScenarios(revision: Revision): Set<string> {
  const doc = parseYaml(readFileSync(join(REQUIREMENTS_DIR, `${revision}.yaml`), 'utf8')) as { not_scored?: { scenario: string; leg: string }[] };
  return new Set((doc.not_scored ?? []).filter((e) => e.leg === 'server').map((e) => e.scenario));
}

/**
 * Scenario pass/fail counts of one server run, read from its checks.json files. A scenario fails when any
 * check is a FAILURE or a WARNING (the runner counts a WARNING against the baseline too).
 */
export function summarizeRun(outDir: string, revision: Revision): RunSummary {
  const unscored = notScoredScenarios(revision);
  const scenarios: ScenarioResult[] = [];
  for (const entry of readdirSync(outDir).sort()) {
    const match = RESULT_DIR.exec(entry);
    const file = join(outDir, entry, 'checks.json');
    if (!match || !existsSync(file)) continue;
    const checks = JSON.parse(readFileSync(file, 'utf8')) as { status: CheckStatus }[];
    const checksFailed = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').length;
    const checksPassed = checks.filter((c) => c.status === 'SUCCESS').length;
    scenarios.push({ scenario: match[1]!, passed: checksFailed === 0, scored: !unscored.has(match[1]!), checksPassed, checksFailed });
  }
  const count = (list: ScenarioResult[]) => ({ passed: list.filter((s) => s.passed).length, failed: list.filter((s) => !s.passed).length });
  return {
    revision,
    scenarios,
    scored: count(scenarios.filter((s) => s.scored)),
    notScored: count(scenarios.filter((s) => !s.scored)),
    checks: { passed: scenarios.reduce((n, s) => n + s.checksPassed, 0), failed: scenarios.reduce((n, s) => n + s.checksFailed, 0) },
  };
}

export function formatSummary(target: string, s: RunSummary): string {
  const failing = s.scenarios.filter((x) => !x.passed).map((x) => x.scenario);
  return (
    `${target} @ ${s.revision}: scored scenarios ${s.scored.passed} passed, ${s.scored.failed} failed; ` +
    `not scored ${s.notScored.passed} passed, ${s.notScored.failed} failed; checks ${s.checks.passed} passed, ${s.checks.failed} failed` +
    (failing.length ? `\n  failing: ${failing.join(', ')}` : '')
  );
}

/** Scenario names an expected-failures file lists for the server side ("scenario" or "scenario:check-id"). */
export function expectedFailingScenarios(file: string): string[] {
  const doc = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as { server?: string[] | null };
  return [...new Set((doc.server ?? []).map((entry) => entry.split(':')[0]!))];
}

/**
 * Listed scenarios that passed. The runner flags these for scored scenarios only; an unscored one (the tasks
 * extension) would otherwise stay listed after it started passing.
 */
export function staleEntries(file: string, s: RunSummary): string[] {
  const passed = new Set(s.scenarios.filter((x) => x.passed).map((x) => x.scenario));
  return expectedFailingScenarios(file).filter((scenario) => passed.has(scenario));
}

/**
 * Failing scenarios the file does not list. The CLI fails the run on these for scored scenarios only; an
 * unscored failure (extension, pending) must be listed with its reason all the same.
 */
export function unlistedFailures(file: string, s: RunSummary): string[] {
  const listed = new Set(expectedFailingScenarios(file));
  return s.scenarios.filter((x) => !x.passed && !listed.has(x.scenario)).map((x) => x.scenario);
}
