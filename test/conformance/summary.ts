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

/** Which subcommand ran: `server` scenarios test a server, `client` scenarios test a client. */
export type Leg = 'server' | 'client';

export interface RunSummary {
  revision: Revision;
  leg: Leg;
  scenarios: ScenarioResult[];
  scored: { passed: number; failed: number };
  notScored: { passed: number; failed: number };
  checks: { passed: number; failed: number };
}

/**
 * Results are written as <out>/server-<scenario>-<ISO time>/checks.json for server scenarios and as
 * <out>/<scenario>-<ISO time>/checks.json for client ones, where a scenario named auth/x lands in <out>/auth/.
 */
const TIME_SUFFIX = /-\d{4}-\d\d-\d\dT[\d-]+Z$/;

/** [scenario, folder] of every result folder under outDir, at most two levels deep. */
function resultDirs(outDir: string, leg: Leg): [string, string][] {
  const found: [string, string][] = [];
  const walk = (dir: string, prefix: string, depth: number) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const rel = `${prefix}${entry.name}`;
      if (TIME_SUFFIX.test(entry.name) && existsSync(join(dir, entry.name, 'checks.json'))) {
        const name = rel.replace(TIME_SUFFIX, '');
        if (leg === 'client') found.push([name, join(dir, entry.name)]);
        else if (name.startsWith('server-')) found.push([name.slice('server-'.length), join(dir, entry.name)]);
      } else if (depth < 2) walk(join(dir, entry.name), `${rel}/`, depth + 1);
    }
  };
  walk(outDir, '', 1);
  return found.sort((a, b) => a[0].localeCompare(b[0]));
}

/** The scenarios a revision's frozen requirement set lists for one leg: those it scores, and those it runs unscored. */
export function requiredScenarios(revision: Revision, leg: Leg): { scored: string[]; notScored: string[] } {
  const doc = parseYaml(readFileSync(join(REQUIREMENTS_DIR, `${revision}.yaml`), 'utf8')) as Record<Leg, string[] | undefined> & { not_scored?: { scenario: string; leg: string }[] };
  return { scored: doc[leg] ?? [], notScored: (doc.not_scored ?? []).filter((e) => e.leg === leg).map((e) => e.scenario) };
}

export interface SummaryOptions {
  leg?: Leg;
  /**
   * Client scenarios: a line the client under test writes to its stderr (kept as stderr.txt) once it has done
   * everything the scenario asks. A scenario without it fails even when every check passed, because a check
   * that only looks for a wrong request passes when the client never got that far.
   */
  completedMarker?: RegExp;
}

/**
 * Scenario pass/fail counts of one server run, read from its checks.json files. A scenario fails when any
 * check is a FAILURE or a WARNING (the runner counts a WARNING against the baseline too).
 */
export function summarizeRun(outDir: string, revision: Revision, o: SummaryOptions = {}): RunSummary {
  const leg = o.leg ?? 'server';
  const unscored = new Set(requiredScenarios(revision, leg).notScored);
  const scenarios: ScenarioResult[] = [];
  for (const [scenario, dir] of resultDirs(outDir, leg)) {
    const checks = JSON.parse(readFileSync(join(dir, 'checks.json'), 'utf8')) as { status: CheckStatus }[];
    const checksFailed = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').length;
    const checksPassed = checks.filter((c) => c.status === 'SUCCESS').length;
    const stderr = join(dir, 'stderr.txt');
    const completed = !o.completedMarker || (existsSync(stderr) && o.completedMarker.test(readFileSync(stderr, 'utf8')));
    scenarios.push({ scenario, passed: checksFailed === 0 && completed, scored: !unscored.has(scenario), checksPassed, checksFailed });
  }
  const count = (list: ScenarioResult[]) => ({ passed: list.filter((s) => s.passed).length, failed: list.filter((s) => !s.passed).length });
  return {
    revision,
    leg,
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

/** Scenario names an expected-failures file lists for one side ("scenario" or "scenario:check-id"). */
export function expectedFailingScenarios(file: string, leg: Leg = 'server'): string[] {
  const doc = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Partial<Record<Leg, string[] | null>>;
  return [...new Set((doc[leg] ?? []).map((entry) => entry.split(':')[0]!))];
}

/**
 * Listed scenarios that passed. The runner flags these for scored scenarios only; an unscored one (the tasks
 * extension) would otherwise stay listed after it started passing.
 */
export function staleEntries(file: string, s: RunSummary): string[] {
  const passed = new Set(s.scenarios.filter((x) => x.passed).map((x) => x.scenario));
  return expectedFailingScenarios(file, s.leg).filter((scenario) => passed.has(scenario));
}

/**
 * Failing scenarios the file does not list. The CLI fails the run on these for scored scenarios only; an
 * unscored failure (extension, pending) must be listed with its reason all the same.
 */
export function unlistedFailures(file: string, s: RunSummary): string[] {
  const listed = new Set(expectedFailingScenarios(file, s.leg));
  return s.scenarios.filter((x) => !x.passed && !listed.has(x.scenario)).map((x) => x.scenario);
}
