/**
 * Deterministic sample-tenant generator (native NDJSON).
 *
 * - `runs` = runs per job. Every workflow of every repo runs once per round; rounds are spread evenly
 *   over the 30 days before SCENARIO.endDate. Jobs of one workflow run share a run_id and run one after
 *   another; all events of one job run are contiguous and time-ordered; run_id increases with time.
 * - Without `events`: ~54 jobs over 4 orgs (~40 events per job run). With `events`: the number of jobs
 *   (repos, orgs) scales so the total is about `events`; tiny targets shrink the per-run volume instead.
 * - Anomaly scenarios (SCENARIO / SCENARIO_NAMES) fire only in runs with 0-based index >= learningRuns.
 * - Same options -> byte-identical output (seeded sfc32, fixed clock). Constant memory.
 */
export { planTenant, seedKeyOf } from './plan.js';
export type { GenerateOptions, TenantPlan, PlannedJob, PlannedRepo, PlannedWorkflow, ScenarioAssignment, NormalEndpoint, Stack } from './plan.js';
export { generateTenant, generateLines, writeTenant, jobRunBatches, emptySummary } from './generator.js';
export type { GenerateSummary, WriteHooks } from './generator.js';
export { SCENARIO, SCENARIO_NAMES, ANOMALY_NAMES, VPN_SCENARIOS, ANOMALY_RULES } from './scenarios.js';
export type { ScenarioName, AnomalyName } from './scenarios.js';
export { PROCESSES, CHAINS, fakeSha256 } from './catalog.js';
export { Rng, hashString } from './prng.js';
