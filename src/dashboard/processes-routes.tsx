import type { Reply, Route, RouteRequest } from './routes.js';
import { message, page } from './replies.js';
import type { PageContext } from './pages/context.js';
import type { RuleInput } from '../rules/types.js';
import { AnalysisError } from '../analysis/input.js';
import { isRuleRefusal, RuleError } from '../rules/matcher.js';
import { isConfirmed, carriedFields } from './confirm.js';
import { ConfirmPage } from './pages/confirm.js';
import { PreviewSummary, ProcessesPage, RuleCreatedPage, RulePreviewPage, RuleRefusedPage, Conditions } from './pages/processes.js';
import { createRule, loadPreview, loadProcesses, previewRule } from './processes-data.js';
import { pageParam, previewHref, RuleFormError, ruleInputFromParams } from './processes-view.js';
import type { ProcessesServices } from './store.js';
import { formatCount } from './pages/format.js';

/**
 * The processes page's routes: the analysis (GET /processes), a rule's exact preview
 * (GET /processes/preview) and its creation through the confirm step (POST /processes/rules, needs
 * "write"). Rules are created by the rules service MCP and the CLI use; its refusals are shown as
 * they are given.
 */



function services(r: RouteRequest): ProcessesServices | Reply {
  return r.store.processes ?? message(r.ctx, 503, 'Processes unavailable', 'This server was started without the analysis and rules services.');
}

const isReply = (x: ProcessesServices | Reply): x is Reply => 'kind' in x;

/** Bad input in a link or form: 400, saying what. */
function badInput(ctx: PageContext, e: unknown): Reply | undefined {
  if (e instanceof RuleFormError || e instanceof AnalysisError || (e instanceof RuleError && !isRuleRefusal(e))) return message(ctx, 400, 'Bad request', (e as Error).message);
  return undefined;
}


const processesRoute: Route = {
  method: 'GET',
  path: /^\/processes\/?$/,
  permission: 'read',
  async handle(r) {
    const svc = services(r);
    if (isReply(svc)) return svc;
    try {
      const pageNo = pageParam(r.url.searchParams.get('page'));
      return page(<ProcessesPage ctx={r.ctx} d={await loadProcesses(svc, r.tenant, pageNo)} />);
    } catch (e) {
      if (e instanceof AnalysisError && /past the end/.test(e.message)) return message(r.ctx, 404, 'No such page', e.message);
      const bad = badInput(r.ctx, e);
      if (bad) return bad;
      throw e;
    }
  },
};

const previewRoute: Route = {
  method: 'GET',
  path: /^\/processes\/preview$/,
  permission: 'read',
  async handle(r) {
    const svc = services(r);
    if (isReply(svc)) return svc;
    try {
      const input = ruleInputFromParams(r.url.searchParams);
      const pageNo = pageParam(r.url.searchParams.get('page'));
      return page(<RulePreviewPage ctx={r.ctx} d={await loadPreview(svc, r.store, r.tenant, input, pageNo)} />);
    } catch (e) {
      const bad = badInput(r.ctx, e);
      if (bad) return bad;
      throw e;
    }
  },
};

const createRoute: Route = {
  method: 'POST',
  path: /^\/processes\/rules$/,
  permission: 'write',
  async handle(r) {
    const svc = services(r);
    if (isReply(svc)) return svc;
    const form = r.form ?? new URLSearchParams();
    let input: RuleInput;
    try {
      input = ruleInputFromParams(form);
    } catch (e) {
      const bad = badInput(r.ctx, e);
      if (bad) return bad;
      throw e;
    }
    try {
      if (!isConfirmed(form)) {
        // The first post: the exact effect, from the same preview create re-checks, and one more click.
        const p = await previewRule(svc, r.tenant, input);
        if (p.refused_reason) return page(<RuleRefusedPage ctx={r.ctx} input={input} reason={p.refused_reason} />, 422);
        return page(
          <ConfirmPage
            ctx={r.ctx}
            d={{
              title: 'Create suppression rule',
              action: '/processes/rules',
              fields: carriedFields(form),
              confirmLabel: `Create rule and suppress ${formatCount(p.would_suppress)} detection(s)`,
              cancelHref: previewHref(input),
            }}
          >
            <p>A suppression rule for {input.detection_id} with these conditions:</p>
            <Conditions c={input.conditions} />
            <PreviewSummary p={p} />
          </ConfirmPage>,
        );
      }
      const result = await createRule(svc, r.tenant, input, `dashboard:${r.session.identity}`);
      return page(<RuleCreatedPage ctx={r.ctx} r={result} />);
    } catch (e) {
      if (e instanceof RuleError && isRuleRefusal(e)) return page(<RuleRefusedPage ctx={r.ctx} input={input} reason={e.message.replace(/^rule refused: /, '')} />, 422);
      const bad = badInput(r.ctx, e);
      if (bad) return bad;
      throw e;
    }
  },
};

export const PROCESSES_ROUTES: readonly Route[] = [processesRoute, previewRoute, createRoute];
