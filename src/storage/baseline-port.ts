import type { RiskyDestinations } from '../analysis/risky-destinations.js';

/**
 * Baseline edits made by people rather than learned from runs (`baseline expect` / `unexpect`).
 * Each call is one short transaction that bumps the tenant's job-state version, so a concurrent
 * ingest drops its cached job state instead of overwriting the edit (contract in store.ts).
 */

export interface ExpectTarget {
  owner: string;
  repo: string;
  workflow?: string;
  job?: string;
}

/** The jobs an edit changed (empty when it named none). */
export interface BaselineEditResult {
  jobs: { workflow: string; job: string }[];
}

/**
 * What `expect` did: the jobs where the endpoint is now expected, and those whose baseline already
 * held it by learning. Those are left as learned: marking them expected would let `unexpect` take
 * from the baseline what runs had taught it.
 */
export interface ExpectResult extends BaselineEditResult {
  learned: { workflow: string; job: string }[];
}

/** A baseline write that is refused (a risky destination) or names nothing. */
export class BaselineError extends Error {
  constructor(
    readonly code: 'refused_risky' | 'not_expected',
    message: string,
  ) {
    super(message);
    this.name = 'BaselineError';
  }
}

export interface BaselineEditor {
  /**
   * Marks an endpoint as expected for every matching job: it joins the baseline at once, so later
   * runs do not flag it. Past detections are left as they are. Where learning already put it in a
   * job's baseline, the entry stays learned (ExpectResult.learned). Every backend refuses a risky
   * destination with BaselineError('refused_risky') before writing anything (detection/baseline-guard.ts).
   */
  markExpected(tenant: string, t: ExpectTarget, endpoint: string, risky?: RiskyDestinations): Promise<ExpectResult>;
  /**
   * Undoes markExpected: where the endpoint is expected it leaves the baseline and its run count
   * restarts at 0, so it raises detections again until learned anew or expected again. Learned
   * entries are not touched.
   */
  unmarkExpected(tenant: string, t: ExpectTarget, endpoint: string): Promise<BaselineEditResult>;
}
