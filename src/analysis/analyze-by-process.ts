import type { AnalysisAggregates, SampleRecord } from '../storage/analysis-port.js';
import { RulesService } from '../rules/service.js';
import { rulesFromService, type AnalysisRules } from './rules-source.js';
import { normalizeInput, pageNumber } from './input.js';
import { decodeCursor, queryFingerprint } from './cursor.js';
import { VariantAggregates } from './aggregate.js';
import { choosePage, groupByName, nextCursorString, type ProcessGroupTotals } from './paging.js';
import { endpointFacts } from './endpoint-facts.js';
import { IdCounter } from './counts.js';
import { buildGroup, mustShowGroup, riskyAddressesByVariant, type GroupContext, type GroupVariant } from './group-report.js';
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
  /**
   * The rules layer: a RulesService (reused across calls with its risky endpoint cache) or any
   * AnalysisRules (rules-source.ts). Absent: a RulesService over the store's rules port.
   */
  rules?: RulesService | AnalysisRules;
}

/**
 * The store the analysis runs on: its analysis-aggregates port; with no rules in the options, also
 * what the rules service takes (suggestion impact and the tenant's impostor verdict come from the
 * rules layer).
 */
export type AnalysisStore = { readonly analysis: AnalysisAggregates } & Omit<Partial<ConstructorParameters<typeof RulesService>[0]>, 'analysis'>;

function rulesFor(store: AnalysisStore, input: AnalyzeInput, given: AnalyzeOptions['rules']): AnalysisRules {
  if (given instanceof RulesService) return rulesFromService(given);
  if (given) return given;
  if (!store.rulesPort) throw new Error('analyzeAnomalousCallsByProcess: this store has no rules port; pass opts.rules');
  return rulesFromService(new RulesService({ rulesPort: store.rulesPort.bind(store) }, { extraRiskyDestinations: input.extraRiskyDestinations }));
}

export async function analyzeAnomalousCallsByProcess(store: AnalysisStore, input: AnalyzeInput, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const req = normalizeInput(input);
  const rules = rulesFor(store, input, opts.rules);
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
  // state even while another process ingests or moves detections. The tenant's commit stamp is taken
  // just before it opens: the verdict and the suggestions' impact are reused while it holds
  // (rules-source.ts).
  const stamp = await rules.stampBeforeSnapshot(port.inSnapshot(), req.tenant);
  return port.readSnapshot(() => analyzeIn(stamp));

  async function analyzeIn(stamp: number | null | undefined): Promise<AnalyzeResult> {
    const resolved = await port.scope(req.tenant, filter);
    if (!resolved.ok) {
      result.note = resolved.missing === 'tenant' ? `tenant "${req.tenant}" has no data` : 'no detections of the requested types';
      return result;
    }
    const scope = resolved.scope;
    // A suggested rule scoped like the query uses the names as stored (rule conditions are exact).
    const owner = filter.owner === undefined ? undefined : await port.storedSpelling(scope, 'owner', filter.owner);
    const repo = filter.repo === undefined ? undefined : await port.storedSpelling(scope, 'repo', filter.repo);

    // ---- 1. exact per-variant totals ----
    const aggregates = await VariantAggregates.read(port, scope);

    // ---- 2. group by normalised name, choose the page ----
    const variants = await port.variants(scope);
    const { groups: all, total } = groupByName(aggregates.totals(), (v) => variants.norm[v]!);
    result.total_anomalies_scanned = total;

    const dict = await port.endpoints(scope);
    const facts = endpointFacts(dict, rules.risky);
    // the set the rule guards use: the whole tenant's evidence, whatever this call's filters
    const impostors = await rules.impostors(req.tenant, stamp, { port, scope });
    const epScratch = new IdCounter(dict.maxId + 1);
    const riskyAt = riskyAddressesByVariant(await port.riskyAddressCalls(scope, rules.risky), facts);
    /** A group's variants with their details (read once: the aggregates keep them). */
    const detailsOf = async (g: ProcessGroupTotals): Promise<GroupVariant[]> => {
      // one variant at a time: details share the aggregates' scratch counters
      const details: GroupVariant[] = [];
      for (const v of g.variants) {
        const d = await aggregates.detail(v);
        details.push({
          variant: v, sha256: variants.sha256[v] ?? null, path: variants.path[v] ?? null, parents: variants.parents[v]!, n: d.n, eps: d.eps,
          first: d.first, last: d.last, jobs: d.jobs, riskyAt: riskyAt.get(v),
        });
      }
      return details;
    };
    // The minimum count cuts noise; it never hides a group that holds a call to a risky destination
    // or a suspected impostor's call (one curl to webhook.site is exactly what must be seen).
    const mustShow = new Set<ProcessGroupTotals>();
    for (const g of all) {
      if (g.count >= req.minCount) continue;
      const details = await detailsOf(g);
      if (mustShowGroup(g.name, details, facts, impostors, epScratch)) mustShow.add(g);
    }
    const kept = all.filter((g) => g.count >= req.minCount || mustShow.has(g));
    const chosen = choosePage(kept, req.limit, fingerprint, { page, cursor });
    // the clock of relative times, when the face read any: absolute windows keep cursors that do not depend on when they were asked
    result.next_cursor = nextCursorString(chosen.next && req.now !== undefined ? { ...chosen.next, n: req.now } : chosen.next);

    // ---- 3. details for the page ----
    const primaryType = types[0]!;
    const impact = rules.impact;
    const ctx: GroupContext = {
      facts,
      jobs: await port.jobs(scope),
      impostors,
      detectionType: primaryType,
      otherTypes: types.slice(1),
      scope: { owner, repo, workflow: filter.workflow, job: filter.job },
      impact: (conditions) => impact(req.tenant, stamp, primaryType, conditions, impostors),
      samples: req.samples,
      dashboardBase: req.dashboardBase,
      epScratch,
      hostScratch: new IdCounter(dict.hostCount),
    };
    for (const g of chosen.page) {
      const details = await detailsOf(g);
      const sampleRows: SampleRecord[] = [];
      if (req.samples > 0) for (const v of g.variants) sampleRows.push(...(await port.samples(scope, v, req.samples)));
      result.processes.push(await buildGroup(ctx, g.name, g.count, details, sampleRows));
    }
    result.processes_returned = result.processes.length;
    const omittedGroups = all.filter((g) => g.count < req.minCount && !mustShow.has(g));
    const omitted = omittedGroups.length;
    const omittedCount = omittedGroups.reduce((s, g) => s + g.count, 0);
    const shownSmall = [...mustShow].map((g) => g.name);
    result.note =
      `Exact counts over all ${result.total_anomalies_scanned} matching detection(s) in ${all.length} process group(s), not a sample. ` +
      (omitted ? `${omitted} group(s) with fewer than ${req.minCount} detection(s) (${omittedCount} detection(s)) are omitted; none of them calls a risky destination or is a suspected impostor. ` : '') +
      (shownSmall.length
        ? `${shownSmall.length} group(s) with fewer than ${req.minCount} detection(s) are shown anyway because they call a risky destination or are suspected impostors: ${shownSmall.join(', ')}. `
        : '') +
      'VPN verdicts are evidence-based per binary (sha256/path): destinations and parent chain, never the name alone. ' +
      'suggested_rule.impact is computed by the same matcher as rules preview/create.' +
      (result.next_cursor ? ' More groups: pass next_cursor.' : '');
    return result;
  }
}
