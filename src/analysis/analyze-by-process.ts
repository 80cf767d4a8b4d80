import type { AnalysisAggregates } from '../storage/analysis-port.js';
import { RulesService } from '../rules/service.js';
import { compileRule } from '../rules/matcher.js';
import { ImpostorSet } from '../rules/guards.js';
import type { RuleConditions } from '../rules/types.js';
import { normalizeInput, pageNumber } from './input.js';
import { decodeCursor, queryFingerprint } from './cursor.js';
import { VariantAggregates } from './aggregate.js';
import { choosePage, groupByName, nextCursorString } from './paging.js';
import { endpointFacts } from './endpoint-facts.js';
import { IdCounter } from './counts.js';
import { buildGroup, type GroupContext, type GroupVariant } from './group-report.js';
import type { AnalyzeInput, AnalyzeResult } from './types.js';

export { AnalysisError } from './input.js';

/**
 * analyze_anomalous_calls_by_process, exact and evidence-based (docs/analysis.md). The orchestrator:
 * it reads through the analysis-aggregates port (storage/analysis-port.ts) and composes the pure
 * parts (input, cursor, paging, verdict, suggestion, samples).
 *
 * 1. Per process variant, exact counts: from the coarse aggregates when they answer the query (no
 *    window, no owner/repo/workflow/job), otherwise from one streaming scan (aggregate.ts).
 * 2. Variants are grouped by normalised process name; totals are exact; groups are sorted by count
 *    descending then name, filtered by minCount and paged with an opaque cursor (paging.ts).
 * 3. Only the page's groups get details (endpoint and job counts, first/last seen, samples), then
 *    binaries, parents, VPN evidence per binary, risky destinations, review notes and a suggested
 *    rule whose impact comes from the same preview function `rules preview` uses (group-report.ts).
 */

export interface AnalyzeOptions {
  /** reuse a RulesService (and its risky endpoint cache) across calls */
  rules?: RulesService;
}

/**
 * The store the analysis runs on: its analysis-aggregates port, and what the rules service takes
 * (suggestion impact and the tenant's impostor verdict come from the rules layer).
 */
export type AnalysisStore = ConstructorParameters<typeof RulesService>[0] & { readonly analysis: AnalysisAggregates };

export async function analyzeAnomalousCallsByProcess(store: AnalysisStore, input: AnalyzeInput, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const req = normalizeInput(input);
  const rules = opts.rules ?? new RulesService(store, { extraRiskyDestinations: input.extraRiskyDestinations });
  const fingerprint = queryFingerprint(req);
  const cursor = req.cursor ? decodeCursor(req.cursor, fingerprint) : null;
  const page = pageNumber(input, cursor !== null);
  const port = store.analysis;
  const { filter, since, until, types } = req;

  const result: AnalyzeResult = {
    tenant: req.tenant,
    detection_id: types.join(','),
    total_anomalies_scanned: 0,
    processes_returned: 0,
    min_count_filter: req.minCount,
    note: '',
    processes: [],
    window: { since: since === undefined ? null : new Date(since).toISOString(), until: until === undefined ? null : new Date(until).toISOString() },
    next_cursor: null,
  };
  // One read snapshot, so totals, breakdowns, timestamp probes and samples all see the same committed
  // state even while another process ingests or moves detections. The rules port is async and the
  // snapshot is not: the impostor verdict is read just before it opens (with the commit stamp, the
  // snapshot sees at least that state), and the suggestions' impact previews just after, with the
  // same impostor set; the suggestions are then completed with them.
  const stamp = port.inSnapshot() ? undefined : await rules.repo.commitStamp();
  const tenantId = await rules.repo.tenantId(req.tenant);
  const impostors = tenantId === undefined ? new ImpostorSet() : (await rules.repo.impostors(tenantId, stamp)).set;
  const pendingImpact: { conditions: RuleConditions; group: AnalyzeResult['processes'][number] | null }[] = [];
  const primaryType = types[0]!;
  const out = port.readSnapshot(() => analyzeIn());
  for (const p of pendingImpact) {
    const s = p.group?.suggested_rule;
    if (!s) continue;
    const preview = await rules.previewCompiled(req.tenant, primaryType, compileRule(primaryType, p.conditions), 0, { countsOnly: true, impostors });
    s.impact = { would_suppress: preview.would_suppress, risky: preview.risky_matches };
    // as buildSuggestion does with the preview: a refusal blocks a suggestion not blocked already
    if (!s.blocked_reason && preview.refused_reason) {
      s.blocked_reason = preview.refused_reason;
      p.group!.no_suggestion_reason = preview.refused_reason;
    }
  }
  return out;

  function analyzeIn(): AnalyzeResult {
    const resolved = port.scope(req.tenant, filter);
    if (!resolved.ok) {
      result.note = resolved.missing === 'tenant' ? `tenant "${req.tenant}" has no data` : 'no detections of the requested types';
      return result;
    }
    const scope = resolved.scope;
    // A suggested rule scoped like the query uses the names as stored (rule conditions are exact).
    const owner = filter.owner === undefined ? undefined : port.storedSpelling(scope, 'owner', filter.owner);
    const repo = filter.repo === undefined ? undefined : port.storedSpelling(scope, 'repo', filter.repo);

    // ---- 1. exact per-variant totals ----
    const aggregates = VariantAggregates.read(port, scope);

    // ---- 2. group by normalised name, choose the page ----
    const variants = port.variants();
    const { groups: all, total } = groupByName(aggregates.totals(), (v) => variants.norm[v]!);
    result.total_anomalies_scanned = total;
    const kept = all.filter((g) => g.count >= req.minCount);
    const chosen = choosePage(kept, req.limit, fingerprint, { page, cursor });
    result.next_cursor = nextCursorString(chosen.next);

    // ---- 3. details for the page ----
    const dict = port.endpoints();
    const facts = endpointFacts(dict, rules.risky);
    const ctx: GroupContext = {
      facts,
      jobs: port.jobs(scope),
      // the set the rule guards use: the whole tenant's evidence, whatever this call's filters
      impostors,
      detectionType: primaryType,
      scope: { owner, repo, workflow: filter.workflow, job: filter.job },
      // filled in after the snapshot (above); a placeholder blocks nothing the preview would not
      impact: (conditions) => {
        pendingImpact.push({ conditions, group: null });
        return { would_suppress: 0, risky_matches: 0, refused_reason: null };
      },
      samples: req.samples,
      dashboardBase: req.dashboardBase,
      epScratch: new IdCounter(dict.maxId + 1),
      hostScratch: new IdCounter(dict.hostCount),
    };
    for (const g of chosen.page) {
      const details: GroupVariant[] = g.variants.map((v) => {
        const d = aggregates.detail(v);
        return { variant: v, sha256: variants.sha256[v] ?? null, path: variants.path[v] ?? null, parents: variants.parents[v]!, n: d.n, eps: d.eps, first: d.first, last: d.last, jobs: d.jobs };
      });
      const sampleRows = req.samples === 0 ? [] : g.variants.flatMap((v) => port.samples(scope, v, req.samples));
      const asked = pendingImpact.length;
      const group = buildGroup(ctx, g.name, g.count, details, sampleRows);
      for (const p of pendingImpact.slice(asked)) p.group = group;
      result.processes.push(group);
    }
    result.processes_returned = result.processes.length;
    const omitted = all.length - kept.length;
    const omittedCount = all.filter((g) => g.count < req.minCount).reduce((s, g) => s + g.count, 0);
    result.note =
      `Exact counts over all ${result.total_anomalies_scanned} matching detection(s) in ${all.length} process group(s), not a sample. ` +
      (omitted ? `${omitted} group(s) with fewer than ${req.minCount} detection(s) (${omittedCount} detection(s)) are omitted. ` : '') +
      'VPN verdicts are evidence-based per binary (sha256/path): destinations and parent chain, never the name alone. ' +
      'suggested_rule.impact is computed by the same matcher as rules preview/create.' +
      (result.next_cursor ? ' More groups: pass next_cursor.' : '');
    return result;
  }
}
