import { CONDITION_KEYS, type RuleConditions, type RuleInput, type SuppressionRule } from '../rules/types.js';
import { sameConditions } from '../rules/matcher.js';
import { ruleHistory } from '../dashboard-data/views.js';
import type { RuleAuditRow } from '../storage/rules-port.js';
import { CONDITION_PREFIX, RuleFormError } from './processes-view.js';

/**
 * The Rules page's view model: plain data in (a rule, a form, the rule's audit rows), plain data
 * out. Pure, so what the page asks the rules service to do, and how it reads a change back, is
 * unit-tested without a browser or a store. Nothing here decides a guard: the service does.
 */

/** One changed value, readable: the raw text of a string, JSON of anything else, null when absent. */
export interface ReadableChange {
  field: string;
  before: string | null;
  after: string | null;
}

/** What an edit form asks of RulesService.update, and what it changes, field by field. */
export interface RuleEdit {
  /** only the fields that differ from the rule: update moves detections only when type or conditions change */
  input: Partial<RuleInput>;
  changes: ReadableChange[];
  /** type or conditions change: the service previews, re-checks every guard and moves detections */
  matchChanged: boolean;
}

const FIELD_LABEL: Record<string, string> = { id: 'detection type' };

const label = (field: string) => FIELD_LABEL[field] ?? field;

// never change after create, and the history row already says who: listing them would be noise
const NOT_LISTED = new Set(['rule_id', 'created_by', 'severity_action']);

/** The per-key differences of two condition sets, in CONDITION_KEYS order. */
export function conditionChanges(before: RuleConditions | null, after: RuleConditions | null): ReadableChange[] {
  const b = before ?? {};
  const a = after ?? {};
  const out: ReadableChange[] = [];
  for (const k of CONDITION_KEYS) {
    const x = b[k] ?? null;
    const y = a[k] ?? null;
    if (x !== y) out.push({ field: `condition ${k}`, before: x, after: y });
  }
  return out;
}

/**
 * The update an edit form asks for. The form holds every editable field (`detection_id`, `name`,
 * `description`, `c.<key>`); an empty condition drops that key, as on the processes page. Only what
 * differs from the rule is sent, so renaming a rule never re-evaluates its detections. Values are
 * validated by the service; unknown keys and a rule without any condition are refused here by name.
 */
export function ruleEditFromForm(rule: SuppressionRule, form: URLSearchParams): RuleEdit {
  const conditions: RuleConditions = {};
  for (const [k, raw] of form.entries()) {
    if (!k.startsWith(CONDITION_PREFIX)) continue;
    const key = k.slice(CONDITION_PREFIX.length);
    if (!(CONDITION_KEYS as readonly string[]).includes(key)) throw new RuleFormError(`unknown rule condition "${key}": use ${CONDITION_KEYS.join(', ')}`);
    const v = raw.trim();
    if (v !== '') conditions[key as keyof RuleConditions] = v;
  }
  if (Object.keys(conditions).length === 0) throw new RuleFormError('the rule has no condition: give at least one (e.g. process and process_sha256), or delete the rule');
  const input: Partial<RuleInput> = {};
  const changes: ReadableChange[] = [];
  const type = (form.get('detection_id') ?? '').trim() || rule.id;
  if (type !== rule.id) {
    input.detection_id = type;
    changes.push({ field: label('id'), before: rule.id, after: type });
  }
  for (const field of ['name', 'description'] as const) {
    const v = form.get(field);
    if (v === null) continue;
    const t = v.trim();
    // an emptied name would get no default on update: keep the rule's name rather than blank it
    if (field === 'name' && t === '') continue;
    if (t !== rule[field]) {
      input[field] = t;
      changes.push({ field, before: rule[field], after: t });
    }
  }
  if (!sameConditions(conditions, rule.conditions)) {
    input.conditions = conditions;
    changes.push(...conditionChanges(rule.conditions, conditions));
  }
  return { input, changes, matchChanged: input.detection_id !== undefined || input.conditions !== undefined };
}

/** The delete form's required choice: restore the detections the rule suppressed, or keep them suppressed. */
export function deleteRestoreChoice(form: URLSearchParams): boolean {
  const v = form.get('restore');
  if (v === 'yes') return true;
  if (v === 'no') return false;
  throw new RuleFormError('restore: choose "restore the detections it suppressed" (yes) or "keep them suppressed" (no)');
}

export interface HistoryEntry {
  action: string;
  actor: string;
  at: string;
  /** detections the change moved (see RuleChangeResult: suppressed, restored and handed on) */
  affected: number;
  changes: ReadableChange[];
}

function readable(json: string | null): string | null {
  if (json === null) return null;
  const v: unknown = JSON.parse(json);
  return typeof v === 'string' ? v : json;
}

function conditionsOf(json: string | null): RuleConditions | null {
  if (json === null) return null;
  const v: unknown = JSON.parse(json);
  return v && typeof v === 'object' ? (v as RuleConditions) : null;
}

/**
 * A rule's change history (RulesService.audit rows, newest first) as the page shows it: ruleHistory's
 * field-by-field diff, with conditions split into one row per condition key and strings shown as
 * text. A delete lists no fields: the rule as it was is the row before it. The rule id, its creator
 * and its action are not listed: they never change, and the page shows them elsewhere.
 */
export function historyEntries(rows: RuleAuditRow[]): HistoryEntry[] {
  return ruleHistory(rows).map((h) => {
    const changes: ReadableChange[] = [];
    if (!h.action.startsWith('delete')) {
      for (const c of h.changes) {
        if (c.field === 'conditions') changes.push(...conditionChanges(conditionsOf(c.before), conditionsOf(c.after)));
        else if (!NOT_LISTED.has(c.field)) changes.push({ field: label(c.field), before: readable(c.before), after: readable(c.after) });
      }
    }
    return { action: h.action, actor: h.actor, at: h.at, affected: h.affected, changes };
  });
}

/** The words for an audit action and what its count means. */
export function actionSummary(e: Pick<HistoryEntry, 'action' | 'affected'>): string {
  const n = e.affected.toLocaleString('en-US');
  switch (e.action) {
    case 'create':
      return `created; suppressed ${n} detection(s)`;
    case 'update':
      return `changed; ${n} detection(s) moved`;
    case 'delete+restore':
      return `deleted; ${n} detection(s) restored to open`;
    case 'delete':
      return 'deleted; its past suppressions kept';
    default:
      return `${e.action}; ${n} detection(s) affected`;
  }
}
