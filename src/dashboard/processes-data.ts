import type { AnalyzeResult } from '../analysis/types.js';
import type { Detection } from '../domain/types.js';
import type { RuleChangeResult, RuleInput, RulePreview, SuppressionRule } from '../rules/types.js';
import type { DashboardStore, ProcessesServices } from './store.js';

/**
 * What the processes and rule-preview pages show, read through the shared analysis and rules
 * service. Both page: a page of process groups (the analysis pages them itself and details only the
 * groups it returns), a page of the detections a rule matches.
 */

/** Process groups per page: each is drawn with its binaries, evidence and suggestion. */
export const PROCESSES_PER_PAGE = 20;
/** Detections per page of a rule preview. */
export const PREVIEW_PER_PAGE = 50;
/** Sample detections (run links) per process group. */
export const SAMPLES_PER_PROCESS = 3;

export interface ProcessesData {
  result: AnalyzeResult;
  page: number;
  /** the tenant's active rules (each process shows those naming it) */
  rules: SuppressionRule[];
}

export async function loadProcesses(svc: ProcessesServices, tenant: string, page: number): Promise<ProcessesData> {
  // minCount 1: the page hides nothing; the analysis's default (2) is for agents' token budgets.
  const result = await svc.analyze({ tenant, status: 'new', minCount: 1, limit: PROCESSES_PER_PAGE, page, samples: SAMPLES_PER_PROCESS });
  const rules = await (await svc.rules()).list(tenant);
  return { result, page, rules };
}

export interface PreviewData {
  input: RuleInput;
  preview: RulePreview;
  page: number;
  /** the page's detections, in the order the store matched them */
  detections: Detection[];
  lastPage: number;
}

/**
 * The exact preview of a rule (the rules service's own preview, the one create re-checks), with one
 * page of the detections it matches. The service returns matching ids in a stable order up to a
 * limit, so page n asks for n pages' worth and shows the last: bounded by the page number, not by
 * the number of matches.
 */
export async function loadPreview(svc: ProcessesServices, store: Pick<DashboardStore, 'detections'>, tenant: string, input: RuleInput, page: number): Promise<PreviewData> {
  const rules = await svc.rules();
  const { type, rule } = rules.compileInput(input);
  const preview = await rules.previewCompiled(tenant, type, rule, page * PREVIEW_PER_PAGE);
  const ids = preview.sample_detection_ids.slice((page - 1) * PREVIEW_PER_PAGE, page * PREVIEW_PER_PAGE);
  const found = await Promise.all(ids.map((id) => store.detections.get(tenant, id)));
  // Only the first page's sample ids are part of a preview's meaning elsewhere (CLI, MCP).
  preview.sample_detection_ids = preview.sample_detection_ids.slice(0, 10);
  return { input, preview, page, detections: found.filter((d): d is Detection => d !== null), lastPage: Math.max(1, Math.ceil(preview.would_suppress / PREVIEW_PER_PAGE)) };
}

/** The confirmation's preview: the service's preview (counts only). */
export async function previewRule(svc: ProcessesServices, tenant: string, input: RuleInput): Promise<RulePreview> {
  return (await svc.rules()).preview(tenant, input);
}

/** Creates the rule through the service: it re-checks every guard inside its write transaction. */
export async function createRule(svc: ProcessesServices, tenant: string, input: RuleInput, actor: string): Promise<RuleChangeResult> {
  return (await svc.rules()).create(tenant, input, actor);
}
