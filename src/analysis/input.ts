import { NEW_OUTBOUND } from '../domain/types.js';
import { FilterError, parseDetectionFilter, type DetectionFilter } from '../domain/filter.js';
import { resolveDashboardUrl } from '../domain/dashboard.js';
import type { AnalyzeInput } from './types.js';

/** Argument validation and normalisation of the analysis: raw AnalyzeInput in, AnalysisRequest out. */

export class AnalysisError extends Error {
  constructor(
    readonly code: 'invalid_input' | 'invalid_cursor' | 'invalid_time' | 'unknown_type',
    message: string,
  ) {
    super(message);
    this.name = 'AnalysisError';
  }
}

export const DEFAULTS = { minCount: 2, limit: 50, samples: 5 };

/** A validated analysis request; `filter.types` is never empty. */
export interface AnalysisRequest {
  tenant: string;
  filter: DetectionFilter;
  types: string[];
  /** the first requested status, or 'all' (part of the cursor fingerprint) */
  status: string;
  since: number | undefined;
  until: number | undefined;
  minCount: number;
  limit: number;
  samples: number;
  cursor: string | null;
  /** the instant the face read relative times against, when it gave one (the cursor carries it) */
  now: number | undefined;
  dashboardBase: string;
}

/**
 * The analysis filter, from the one parser (domain/filter.ts): a pre-parsed `input.filter` from a face
 * that named its own arguments, or the raw library fields. Filters the analysis cannot apply
 * (process, endpoint, run) are refused rather than ignored.
 */
export function analysisFilter(input: AnalyzeInput): DetectionFilter {
  let f: DetectionFilter;
  const raw = { detectionTypes: input.detectionTypes, status: input.status, since: input.since, until: input.until, owner: input.owner, repo: input.repo };
  const given = Object.entries(raw).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (input.filter && given.length) throw new AnalysisError('invalid_input', `pass either filter or ${given.join(', ')}, not both`);
  try {
    f = input.filter
      ? { ...input.filter }
      : parseDetectionFilter(
          { types: input.detectionTypes, status: input.status, since: input.since, until: input.until, owner: input.owner, repo: input.repo },
          { names: { types: 'detectionTypes' }, defaultStatus: 'new', now: input.now ?? Date.now() },
        );
  } catch (e) {
    if (e instanceof FilterError) throw new AnalysisError(e.kind === 'invalid' ? 'invalid_input' : e.kind, e.message);
    throw e;
  }
  if (!f.types || f.types.length === 0) f.types = [NEW_OUTBOUND];
  for (const [k, v] of [['process', f.process], ['sha256', f.sha256], ['endpoint', f.host], ['run id', f.runId]] as const) {
    if (v !== undefined) throw new AnalysisError('invalid_input', `the analysis cannot filter by ${k}; it groups by process over owner, repo, workflow, job and time`);
  }
  return f;
}

export function intIn(name: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new AnalysisError('invalid_input', `${name}: expected an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validates everything but the cursor's contents (cursor.ts checks those against the query). */
export function normalizeInput(input: AnalyzeInput): AnalysisRequest {
  if (!input || typeof input.tenant !== 'string' || input.tenant === '') throw new AnalysisError('invalid_input', 'tenant is required');
  const filter = analysisFilter(input);
  const minCount = intIn('minCount', input.minCount, DEFAULTS.minCount, 1, Number.MAX_SAFE_INTEGER);
  const limit = intIn('limit', input.limit, DEFAULTS.limit, 1, 1000);
  const samples = intIn('samples', input.samples, DEFAULTS.samples, 0, 100);
  const dashboardBase = resolveDashboardUrl(input.dashboardUrl);
  return {
    tenant: input.tenant,
    filter,
    types: filter.types!,
    status: filter.statuses ? filter.statuses[0]! : 'all',
    since: filter.since,
    until: filter.until,
    minCount,
    limit,
    samples,
    cursor: input.cursor ? input.cursor : null,
    now: input.now,
    dashboardBase,
  };
}

/** The page number, validated after the cursor (the order the errors have always come in). */
export function pageNumber(input: AnalyzeInput, hasCursor: boolean): number | undefined {
  const page = input.page === undefined ? undefined : intIn('page', input.page, 1, 1, Number.MAX_SAFE_INTEGER);
  if (page !== undefined && hasCursor) throw new AnalysisError('invalid_input', 'page and cursor are two ways to choose a page: pass only one of them');
  return page;
}
