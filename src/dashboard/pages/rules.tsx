import { CONDITION_KEYS, type RuleChangeResult, type RuleConditions, type SuppressionRule } from '../../rules/types.js';
import { DETECTION_TYPES } from '../../domain/types.js';
import { ruleHref } from '../links.js';
import { actionSummary, type HistoryEntry, type ReadableChange } from '../rules-view.js';
import { CsrfField, Layout } from './layout.js';
import type { PageContext } from './context.js';
import { formatCount, Time } from './format.js';
import { canWrite, Refusal } from './processes.js';
import { ConditionInputs } from './condition-inputs.js';

/**
 * The Rules page: the tenant's active suppression rules, one rule with its change history, the edit
 * and delete forms (permission "write"; both go through the confirm step), and their outcomes. Every
 * number comes from the rules service; nothing here decides a guard.
 */

/** A rule's conditions exactly as the rule holds them ("*" included: it is what the rule says). */
export function FullConditions({ c }: { c: RuleConditions }) {
  const parts = Object.entries(c);
  if (parts.length === 0) return <span class="muted">(no condition)</span>;
  return (
    <ul class="plain conditions">
      {parts.map(([k, v]) => (
        <li>
          <code>
            {k}={v}
          </code>
        </li>
      ))}
    </ul>
  );
}

export function RulesListPage({ ctx, tenant, rules, recent }: { ctx: PageContext; tenant: string; rules: SuppressionRule[]; recent: (HistoryEntry & { rule_id: string })[] }) {
  return (
    <Layout ctx={ctx} title="Rules">
      <h1>
        Rules <span class="muted">· tenant {tenant}</span>
      </h1>
      <p>
        {formatCount(rules.length)} active suppression rule(s), oldest first (the order rules are applied in). Each suppresses the
        detections of its type that match every condition, except detections to risky destinations and of suspected impostor
        binaries, which stay open whatever a rule says.
      </p>
      {rules.length === 0 ? (
        <p class="muted">No active rule. Rules are created from the processes page, the CLI or MCP.</p>
      ) : (
        <div class="table-wrap">
          <table aria-label="Active rules">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Detection type</th>
                <th scope="col">Conditions</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {rules.map((r) => (
                <tr data-rule-id={r.rule_id}>
                  <th scope="row">
                    <a href={ruleHref(r.rule_id)}>{r.name}</a>
                    <div>
                      <code class="muted">{r.rule_id}</code>
                    </div>
                  </th>
                  <td>{r.id}</td>
                  <td>
                    <FullConditions c={r.conditions} />
                  </td>
                  <td>
                    <Time iso={r.created_on} />
                    <div class="muted">by {r.created_by}</div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2 id="recent">Recent rule changes</h2>
      {recent.length === 0 ? <p class="muted">None.</p> : <HistoryTable entries={recent} label="Recent rule changes" withRule />}
    </Layout>
  );
}

function Value({ v }: { v: string | null }) {
  if (v === null) return <span class="muted">(none)</span>;
  if (v === '') return <span class="muted">(empty)</span>;
  return <code>{v}</code>;
}

export function ChangeList({ changes }: { changes: ReadableChange[] }) {
  if (changes.length === 0) return <span class="muted">no field listed</span>;
  return (
    <ul class="plain">
      {changes.map((c) => (
        <li data-field-change={c.field}>
          {c.field}: <Value v={c.before} /> → <Value v={c.after} />
        </li>
      ))}
    </ul>
  );
}

export function HistoryTable({ entries, label, withRule = false }: { entries: (HistoryEntry & { rule_id?: string })[]; label: string; withRule?: boolean }) {
  return (
    // focusable: on a narrow screen the table scrolls inside its box, and a keyboard must reach it
    <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
      <table aria-label={label}>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            {withRule ? <th scope="col">Rule</th> : null}
            <th scope="col">What</th>
            <th scope="col">Before → after</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr data-action={e.action}>
              <td>
                <Time iso={e.at} />
              </td>
              <td>{e.actor}</td>
              {withRule ? (
                <td>
                  <a href={ruleHref(e.rule_id!)}>
                    <code>{e.rule_id}</code>
                  </a>
                </td>
              ) : null}
              <td>{actionSummary(e)}</td>
              <td>
                <ChangeList changes={e.changes} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RuleFacts({ r }: { r: SuppressionRule }) {
  return (
    <dl class="facts">
      <dt>Rule id</dt>
      <dd>
        <code>{r.rule_id}</code>
      </dd>
      <dt>Detection type</dt>
      <dd>{r.id}</dd>
      <dt>Conditions</dt>
      <dd>
        <FullConditions c={r.conditions} />
      </dd>
      <dt>Description</dt>
      <dd>{r.description || <span class="muted">(none)</span>}</dd>
      <dt>Created</dt>
      <dd>
        <Time iso={r.created_on} /> by {r.created_by}
      </dd>
      <dt>Last changed</dt>
      <dd>
        <Time iso={r.updated_on} />
      </dd>
    </dl>
  );
}

/** What the edit form shows: the rule's values, or what was typed when the service refused them. */
export interface EditValues {
  detection_id: string;
  name: string;
  description: string;
  conditions: Partial<Record<string, string>>;
}

export const editValuesOf = (r: SuppressionRule): EditValues => ({ detection_id: r.id, name: r.name, description: r.description, conditions: r.conditions });

/** The form's values as typed (a refused edit shows them again). */
export function editValuesFromForm(form: URLSearchParams): EditValues {
  const conditions: Record<string, string> = {};
  for (const k of CONDITION_KEYS) conditions[k] = form.get(`c.${k}`) ?? '';
  return { detection_id: form.get('detection_id') ?? '', name: form.get('name') ?? '', description: form.get('description') ?? '', conditions };
}

/** The edit form: its first post asks for confirmation with the exact impact (POST /rules/{id}/edit). */
export function EditRuleForm({ ctx, ruleId, v }: { ctx: PageContext; ruleId: string; v: EditValues }) {
  return (
    <section aria-labelledby="edit-heading" class="edit-rule">
      <h2 id="edit-heading">Edit</h2>
      <p class="muted">
        An empty condition is dropped; <code>*</code> matches anything. New conditions apply at once to the open detections they match;
        the detections the rule suppresses now that they no longer match go back to open, or to another rule that matches them.
      </p>
      <form method="post" action={`${ruleHref(ruleId)}/edit`}>
        <CsrfField ctx={ctx} />
        <dl class="facts">
          <dt>
            <label for="rule-name">name</label>
          </dt>
          <dd>
            <input id="rule-name" name="name" value={v.name} maxLength={500} />
          </dd>
          <dt>
            <label for="rule-description">description</label>
          </dt>
          <dd>
            <input id="rule-description" name="description" value={v.description} maxLength={500} />
          </dd>
          <dt>
            <label for="rule-type">detection type</label>
          </dt>
          <dd>
            <select id="rule-type" name="detection_id">
              {(DETECTION_TYPES.includes(v.detection_id as never) ? DETECTION_TYPES : [v.detection_id, ...DETECTION_TYPES]).map((t) => (
                <option value={t} selected={t === v.detection_id}>
                  {t}
                </option>
              ))}
            </select>
          </dd>
          <ConditionInputs keys={CONDITION_KEYS} values={v.conditions} />
        </dl>
        <button type="submit" class="primary">
          Review the change…
        </button>
      </form>
    </section>
  );
}

/** The delete form: a required choice between restoring the rule's suppressions and keeping them. */
function DeleteRuleForm({ ctx, ruleId }: { ctx: PageContext; ruleId: string }) {
  return (
    <section aria-labelledby="delete-heading">
      <h2 id="delete-heading">Delete</h2>
      <form method="post" action={`${ruleHref(ruleId)}/delete`}>
        <CsrfField ctx={ctx} />
        <fieldset>
          <legend>The detections this rule suppressed</legend>
          <div>
            <input type="radio" id="restore-yes" name="restore" value="yes" required />{' '}
            <label for="restore-yes">restore the detections it suppressed (they become open again, unless another active rule matches them)</label>
          </div>
          <div>
            <input type="radio" id="restore-no" name="restore" value="no" required /> <label for="restore-no">keep them suppressed</label>
          </div>
        </fieldset>
        <button type="submit" class="danger">
          Delete…
        </button>
      </form>
    </section>
  );
}

export function RuleDetailPage({ ctx, rule, history, edit }: { ctx: PageContext; rule: SuppressionRule; history: HistoryEntry[]; edit?: EditValues }) {
  return (
    <Layout ctx={ctx} title={`Rule ${rule.name}`}>
      <p>
        <a href="/rules">All rules</a>
      </p>
      <h1>{rule.name}</h1>
      <RuleFacts r={rule} />
      <h2 id="history">Change history</h2>
      {history.length === 0 ? <p class="muted">No recorded change.</p> : <HistoryTable entries={history} label="Change history" />}
      {canWrite(ctx) ? (
        <>
          <EditRuleForm ctx={ctx} ruleId={rule.rule_id} v={edit ?? editValuesOf(rule)} />
          <DeleteRuleForm ctx={ctx} ruleId={rule.rule_id} />
        </>
      ) : (
        <p class="muted">Editing and deleting rules needs the dashboard permission "write".</p>
      )}
    </Layout>
  );
}

/** A rule that is not active: unknown, or deleted (then its history is still shown). */
export function RuleGonePage({ ctx, ruleId, tenant, history }: { ctx: PageContext; ruleId: string; tenant: string; history: HistoryEntry[] }) {
  const deleted = history.find((h) => h.action.startsWith('delete'));
  return (
    <Layout ctx={ctx} title="Rule not found">
      <h1>Rule not found</h1>
      <div class="notice error">
        <p>
          {deleted ? (
            <>
              Rule <code>{ruleId}</code> was deleted by {deleted.actor} at <Time iso={deleted.at} />.
            </>
          ) : (
            <>
              No rule <code>{ruleId}</code> in tenant "{tenant}".
            </>
          )}
        </p>
      </div>
      {history.length ? (
        <>
          <h2 id="history">Change history</h2>
          <HistoryTable entries={history} label="Change history" />
        </>
      ) : null}
      <p>
        <a href="/rules">All rules</a>
      </p>
    </Layout>
  );
}

/** A refused edit: the reason plainly, nothing changed, and the form again with what was typed. */
export function RuleEditRefusedPage({ ctx, rule, reason, values }: { ctx: PageContext; rule: SuppressionRule; reason: string; values: EditValues }) {
  return (
    <Layout ctx={ctx} title="Change refused">
      <p>
        <a href={ruleHref(rule.rule_id)}>Back to the rule</a>
      </p>
      <h1>Change refused</h1>
      <p>
        Rule <strong>{rule.name}</strong> (<code>{rule.rule_id}</code>):
      </p>
      <Refusal reason={reason} />
      <EditRuleForm ctx={ctx} ruleId={rule.rule_id} v={values} />
    </Layout>
  );
}

export function RuleUpdatedPage({ ctx, r }: { ctx: PageContext; r: RuleChangeResult }) {
  const handed = r.handed_to_other_rules ?? [];
  return (
    <Layout ctx={ctx} title="Rule changed">
      <h1>Rule changed</h1>
      <div class="notice" role="status">
        <p>
          <strong>{r.rule.name}</strong> was changed. It newly suppressed <strong data-field="suppressed">{formatCount(r.suppressed)}</strong>{' '}
          detection(s), kept <strong data-field="kept">{formatCount(r.kept ?? 0)}</strong>, restored{' '}
          <strong data-field="restored">{formatCount(r.restored)}</strong> to open, and handed{' '}
          <strong data-field="handed">{formatCount(handed.reduce((a, h) => a + h.count, 0))}</strong> to other rules
          {handed.length ? ` (${handed.map((h) => `${h.rule_id}: ${formatCount(h.count)}`).join(', ')})` : ''}.
        </p>
      </div>
      <RuleFacts r={r.rule} />
      <p>
        <a href={ruleHref(r.rule.rule_id)}>Back to the rule</a> · <a href="/rules">All rules</a>
      </p>
    </Layout>
  );
}

export function RuleDeletedPage({ ctx, r, restore }: { ctx: PageContext; r: RuleChangeResult; restore: boolean }) {
  return (
    <Layout ctx={ctx} title="Rule deleted">
      <h1>Rule deleted</h1>
      <div class="notice" role="status">
        <p>
          <strong>{r.rule.name}</strong> (<code>{r.rule.rule_id}</code>) was deleted.{' '}
          {restore ? (
            <>
              <strong data-field="restored">{formatCount(r.restored)}</strong> detection(s) it suppressed were restored to open.
            </>
          ) : (
            <>The detections it suppressed stay suppressed.</>
          )}
        </p>
      </div>
      <p>
        <a href={ruleHref(r.rule.rule_id)}>Its history</a> · <a href="/rules">All rules</a>
      </p>
    </Layout>
  );
}
