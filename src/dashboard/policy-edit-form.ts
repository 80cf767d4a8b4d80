import { PolicyEditError, type LimitInput, type PolicyEdit } from '../policy/edit.js';
import { POLICY_COLUMNS, type PolicyColumn } from '../policy/columns.js';
import { SCOPES, type Scope } from '../policy/schema.js';

/**
 * The Policy page's edit forms, read: urlencoded fields in, the edit and the file hash it was made
 * against out, or a PolicyEditError naming the field. Numbers are only checked to be numbers here;
 * whether 0 or 10^9 is a valid limit is the policy parser's to say, at its path.
 *
 * Fields: `hash` (sha256 of the file the form was made from), `tool`, `op` (move | limit), and
 * `to`, `max`, `window`, `scope`, `timeout`, `reason` (move) or `index`, `max`, `window`, `scope` (limit).
 */

export const EDIT_FIELDS = ['hash', 'op', 'tool', 'to', 'index', 'max', 'window', 'scope', 'timeout', 'reason'] as const;

const field = (form: URLSearchParams, k: string) => (form.get(k) ?? '').trim();

function num(form: URLSearchParams, k: string, what: string): number | undefined {
  const v = field(form, k);
  if (v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new PolicyEditError(`${what} must be a number, not "${v}"`, k);
  return n;
}

function limit(form: URLSearchParams, required: boolean): LimitInput | undefined {
  const max = num(form, 'max', 'max');
  const window = num(form, 'window', 'the window');
  const scope = field(form, 'scope');
  if (scope && !(SCOPES as readonly string[]).includes(scope)) throw new PolicyEditError(`scope must be one of ${SCOPES.join(', ')}`, 'scope');
  if (max === undefined || window === undefined) {
    if (required) throw new PolicyEditError('a rate limit needs max and window (seconds)', max === undefined ? 'max' : 'window');
    return undefined;
  }
  return scope ? { max, window, scope: scope as Scope } : { max, window };
}

export function policyEditFromForm(form: URLSearchParams): { edit: PolicyEdit; hash: string } {
  const hash = field(form, 'hash');
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new PolicyEditError('the form has no file hash: reload the Policy page', 'hash');
  const tool = form.get('tool') ?? '';
  if (!tool) throw new PolicyEditError('no tool named', 'tool');
  const op = field(form, 'op') || 'move';
  if (op === 'limit') {
    const index = num(form, 'index', 'index') ?? 0;
    if (!Number.isInteger(index) || index < 0) throw new PolicyEditError('index must be a whole number from 0', 'index');
    return { hash, edit: { op, tool, index, limit: limit(form, true)! } };
  }
  if (op !== 'move') throw new PolicyEditError('op must be move or limit', 'op');
  const to = field(form, 'to');
  if (!(POLICY_COLUMNS as readonly string[]).includes(to)) throw new PolicyEditError(`choose a column: ${POLICY_COLUMNS.join(', ')}`, 'to');
  const reason = field(form, 'reason');
  return {
    hash,
    edit: {
      op,
      tool,
      to: to as PolicyColumn,
      limit: to === 'rate_limited' ? limit(form, true) : undefined,
      approvalTimeout: to === 'approval' ? num(form, 'timeout', 'the approval timeout') : undefined,
      reason: to === 'deny' && reason ? reason : undefined,
    },
  };
}
