import type { Reply, Route, RouteRequest } from './routes.js';
import { message, page } from './replies.js';
import type { PageContext } from './pages/context.js';
import type { RulesService } from '../rules/service.js';
import type { SuppressionRule } from '../rules/types.js';
import { isRuleRefusal, RuleError } from '../rules/matcher.js';
import { carriedFields, isConfirmed } from './confirm.js';
import { ConfirmPage } from './pages/confirm.js';
import { PreviewSummary } from './pages/processes.js';
import { ChangeList, editValuesFromForm, FullConditions, RuleDeletedPage, RuleDetailPage, RuleEditRefusedPage, RuleGonePage, RulesListPage, RuleUpdatedPage } from './pages/rules.js';
import { deleteRestoreChoice, historyEntries, ruleEditFromForm } from './rules-view.js';
import { RuleFormError } from './processes-view.js';
import { ruleHref } from './links.js';
import { formatCount } from './pages/format.js';

/**
 * The Rules page's routes: the active rules (GET /rules), one rule with its change history
 * (GET /rules/{id}), and edit and delete (POST /rules/{id}/edit, /rules/{id}/delete; "write"), each
 * through the confirm step, applied by the same RulesService as the CLI and MCP, which re-checks
 * every guard in its write transaction. Refusals are shown with the service's reason.
 */

/** Changes shown on the list page (the rule_audit table holds human-scale edits, read whole). */
const RECENT_CHANGES = 20;

async function rulesOf(r: RouteRequest): Promise<RulesService | Reply> {
  if (!r.store.processes) return message(r.ctx, 503, 'Rules unavailable', 'This server was started without the rules service.');
  return r.store.processes.rules();
}

const isReply = <T extends object>(x: T | Reply): x is Reply => 'kind' in x;

const refusalReason = (e: RuleError) => e.message.replace(/^rule refused: /, '');

/** The active rule, or the 404 page (with its history when it was deleted). */
async function activeRule(svc: RulesService, r: RouteRequest, ruleId: string): Promise<SuppressionRule | Reply> {
  try {
    return await svc.get(r.tenant, ruleId);
  } catch (e) {
    if (!(e instanceof RuleError && e.code === 'not_found')) throw e;
    // a rule id no record names (never created) has no history: the same 404
    const unknown = (e2: unknown) => {
      if (e2 instanceof RuleError && e2.code === 'not_found') return [];
      throw e2;
    };
    const history = historyEntries(await svc.audit(r.tenant, ruleId).catch(unknown));
    return page(<RuleGonePage ctx={r.ctx} ruleId={ruleId} tenant={r.tenant} history={history} />, 404);
  }
}

/** The rules service and the active rule the path names (r.params[0]), or the reply when either is missing. */
async function ruleFor(r: RouteRequest): Promise<{ svc: RulesService; rule: SuppressionRule } | Reply> {
  const svc = await rulesOf(r);
  if (isReply(svc)) return svc;
  const rule = await activeRule(svc, r, r.params[0]!);
  if (isReply(rule)) return rule;
  return { svc, rule };
}

const listRoute: Route = {
  method: 'GET',
  path: /^\/rules\/?$/,
  permission: 'read',
  async handle(r) {
    const svc = await rulesOf(r);
    if (isReply(svc)) return svc;
    const rules = await svc.list(r.tenant);
    const rows = (await svc.audit(r.tenant)).slice(0, RECENT_CHANGES);
    const recent = historyEntries(rows).map((h, i) => ({ ...h, rule_id: rows[i]!.rule_id }));
    return page(<RulesListPage ctx={r.ctx} tenant={r.tenant} rules={rules} recent={recent} />);
  },
};

const detailRoute: Route = {
  method: 'GET',
  path: /^\/rules\/([^/]+)\/?$/,
  permission: 'read',
  async handle(r) {
    const found = await ruleFor(r);
    if (isReply(found)) return found;
    const { svc, rule } = found;
    return page(<RuleDetailPage ctx={r.ctx} rule={rule} history={historyEntries(await svc.audit(r.tenant, rule.rule_id))} />);
  },
};

const editRoute: Route = {
  method: 'POST',
  path: /^\/rules\/([^/]+)\/edit$/,
  permission: 'write',
  async handle(r) {
    const found = await ruleFor(r);
    if (isReply(found)) return found;
    const { svc, rule } = found;
    const form = r.form ?? new URLSearchParams();
    const refused = (reason: string) => page(<RuleEditRefusedPage ctx={r.ctx} rule={rule} reason={reason} values={editValuesFromForm(form)} />, 422);
    try {
      const edit = ruleEditFromForm(rule, form);
      if (edit.changes.length === 0) return refused('the form holds the rule as it is: there is nothing to change');
      if (!isConfirmed(form)) {
        // The first post: the exact effect, from the preview update re-checks inside its transaction.
        const preview = edit.matchChanged ? await svc.preview(r.tenant, { detection_id: edit.input.detection_id ?? rule.id, conditions: edit.input.conditions ?? rule.conditions }, { exceptRule: rule.rule_id }) : null;
        if (preview?.refused_reason) return refused(preview.refused_reason);
        return page(
          <ConfirmPage
            ctx={r.ctx}
            d={{
              title: 'Change suppression rule',
              action: `${ruleHref(rule.rule_id)}/edit`,
              fields: carriedFields(form),
              confirmLabel: preview ? `Change rule and suppress ${formatCount(preview.would_suppress)} more detection(s)` : 'Change rule',
              cancelHref: ruleHref(rule.rule_id),
            }}
          >
            <p>
              Rule <strong>{rule.name}</strong> (<code>{rule.rule_id}</code>) changes:
            </p>
            <ChangeList changes={edit.changes} />
            {preview ? (
              <>
                <p>It will then hold these conditions:</p>
                <FullConditions c={preview.conditions} />
                <PreviewSummary p={preview} />
                <p>
                  The detections it suppresses now that the new conditions no longer match go back to open, or to the first other active
                  rule that matches them; the result page counts them.
                </p>
              </>
            ) : (
              <p>Its type and conditions stay as they are: no detection moves.</p>
            )}
          </ConfirmPage>,
        );
      }
      const result = await svc.update(r.tenant, rule.rule_id, edit.input, `dashboard:${r.session.identity}`);
      return page(<RuleUpdatedPage ctx={r.ctx} r={result} />);
    } catch (e) {
      if (e instanceof RuleFormError) return refused(e.message);
      if (e instanceof RuleError) {
        if (e.code === 'not_found') return message(r.ctx, 404, 'Rule not found', e.message);
        // the service's refusals and its verdict on the values typed (invalid condition, type, text)
        return refused(isRuleRefusal(e) ? refusalReason(e) : e.message);
      }
      throw e;
    }
  },
};

const deleteRoute: Route = {
  method: 'POST',
  path: /^\/rules\/([^/]+)\/delete$/,
  permission: 'write',
  async handle(r) {
    const found = await ruleFor(r);
    if (isReply(found)) return found;
    const { svc, rule } = found;
    const form = r.form ?? new URLSearchParams();
    let restore: boolean;
    try {
      restore = deleteRestoreChoice(form);
    } catch (e) {
      if (e instanceof RuleFormError) return message(r.ctx, 400, 'Bad request', e.message);
      throw e;
    }
    if (!isConfirmed(form)) {
      return page(
        <ConfirmPage
          ctx={r.ctx}
          d={{
            title: 'Delete suppression rule',
            action: `${ruleHref(rule.rule_id)}/delete`,
            fields: carriedFields(form),
            confirmLabel: restore ? 'Delete rule and restore its detections' : 'Delete rule and keep its detections suppressed',
            cancelHref: ruleHref(rule.rule_id),
            danger: true,
          }}
        >
          <p>
            Rule <strong>{rule.name}</strong> (<code>{rule.rule_id}</code>) for {rule.id}:
          </p>
          <FullConditions c={rule.conditions} />
          <p>
            {restore
              ? 'is deleted, and every detection it suppressed goes back to open, except those another active rule matches, which that rule takes (as if they arrived now). The result page counts them.'
              : 'is deleted; the detections it suppressed stay suppressed. New detections it would have matched stay open from now on.'}
          </p>
        </ConfirmPage>,
      );
    }
    try {
      const result = await svc.delete(r.tenant, rule.rule_id, { restore }, `dashboard:${r.session.identity}`);
      return page(<RuleDeletedPage ctx={r.ctx} r={result} restore={restore} />);
    } catch (e) {
      // deleted by someone else between the two clicks
      if (e instanceof RuleError && e.code === 'not_found') return message(r.ctx, 404, 'Rule not found', e.message);
      throw e;
    }
  },
};

export const RULES_ROUTES: readonly Route[] = [listRoute, detailRoute, editRoute, deleteRoute];
