import type { BaselineEditResult, BaselineEditor, ExpectResult, ExpectTarget } from '../storage/baseline-port.js';
import { BaselineError } from '../storage/baseline-port.js';
import type { RiskyDestinations } from '../analysis/risky-destinations.js';
import { canonicalEndpoint } from '../domain/endpoint.js';

/**
 * `baseline expect` / `unexpect` as a service every face calls (the CLI, the dashboard's Baselines
 * page): one validation of the request, one reading of the outcome. The never-expect guard for
 * risky destinations stays where it is, in every backend's write (detection/baseline-guard.ts via
 * BaselineEditor.markExpected), so no face can skip it; here a refusal only gets its error code.
 */

export interface BaselineEditRequest extends ExpectTarget {
  endpoint: string;
}

export type BaselineEditCode = 'invalid_input' | 'refused_risky' | 'not_found';

export class BaselineEditError extends Error {
  constructor(
    readonly code: BaselineEditCode,
    message: string,
    /** the request field at fault, for a face to name it its own way (--endpoint, a form field) */
    readonly field: 'endpoint' | null,
  ) {
    super(message);
    this.name = 'BaselineEditError';
  }
}

/**
 * host:port or [v6]:port: an expectation names one exact endpoint, in the canonical form the baseline
 * stores (canonicalEndpoint), which it returns.
 */
export function checkExpectEndpoint(endpoint: string): string {
  const canonical = canonicalEndpoint(endpoint);
  if (canonical === null) {
    throw new BaselineEditError(
      'invalid_input',
      `expected one exact endpoint, host:port with a DNS name or an IP address and a port 1-65535 (e.g. api.example.com:443 or [2001:db8::1]:443), got "${endpoint}"`,
      'endpoint',
    );
  }
  return canonical;
}

export function describeTarget(t: ExpectTarget): string {
  return `${t.owner}/${t.repo}${t.workflow ? ' workflow ' + t.workflow : ''}${t.job ? ' job ' + t.job : ''}`;
}

/** Marks the endpoint expected in the target's jobs; refused for a risky destination or when no job matches. */
export async function expectEndpoint(editor: BaselineEditor, tenant: string, req: BaselineEditRequest, risky: RiskyDestinations): Promise<ExpectResult> {
  const endpoint = checkExpectEndpoint(req.endpoint);
  let r: ExpectResult;
  try {
    r = await editor.markExpected(tenant, req, endpoint, risky);
  } catch (err) {
    if (err instanceof BaselineError && err.code === 'refused_risky') throw new BaselineEditError('refused_risky', err.message, 'endpoint');
    throw err;
  }
  if (r.jobs.length === 0 && r.learned.length === 0) throw new BaselineEditError('not_found', `no jobs found for ${describeTarget(req)} in tenant "${tenant}"`, null);
  return r;
}

/** Undoes expectEndpoint where the endpoint is expected; refused when it is expected in none of the target's jobs. */
export async function unexpectEndpoint(editor: BaselineEditor, tenant: string, req: BaselineEditRequest): Promise<BaselineEditResult> {
  const endpoint = checkExpectEndpoint(req.endpoint);
  const r = await editor.unmarkExpected(tenant, req, endpoint);
  if (r.jobs.length === 0) {
    throw new BaselineEditError('not_found', `${endpoint} is not expected in any job of ${describeTarget(req)} in tenant "${tenant}"`, null);
  }
  return r;
}
