export { planTenant, seedKeyOf } from './plan.js';
export type { GenerateOptions, TenantPlan, PlannedJob, PlannedRepo, PlannedWorkflow, ScenarioAssignment, NormalEndpoint, Stack } from './plan.js';
export { generateTenant, generateLines, writeTenant, jobRunBatches, emptySummary } from './generator.js';
export type { GenerateSummary, WriteHooks } from './generator.js';
export { SCENARIO, SCENARIO_NAMES, ANOMALY_NAMES, VPN_SCENARIOS, ANOMALY_RULES } from './scenarios.js';
export type { ScenarioName, AnomalyName } from './scenarios.js';
export { PROCESSES, CHAINS, fakeSha256 } from './catalog.js';
export { Rng, hashString } from './prng.js';
