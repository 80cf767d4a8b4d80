import { Command, Option } from 'commander';
import { withStore, withStoreOptions, printJson, parseIntOption, parseTimeOption, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { AnalysisError, analyzeAnomalousCallsByProcess } from '../../analysis/analyze-by-process.js';
import { renderAnalysisTable } from '../../analysis/render.js';
import { RulesService } from '../../rules/service.js';
import { resolveDashboardUrl } from '../../domain/dashboard.js';
import type { DetectionStatus } from '../../domain/types.js';

export { renderAnalysisTable } from '../../analysis/render.js';

interface AnalyzeOpts extends StoreOptions {
  detectionId: string[];
  status: DetectionStatus | 'all';
  since?: number;
  until?: number;
  owner?: string;
  repo?: string;
  minCount: number;
  limit: number;
  cursor?: string;
  samples: number;
  dashboardUrl?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  const cmd = program
    .command('analyze')
    .description('Group anomalous calls by process: exact counts, VPN verdicts with evidence, safe rule suggestions')
    .option('--detection-id <type>', 'detection type (repeatable; default New-Outbound-Network-Call)', collect)
    .addOption(new Option('--status <status>', 'detection status').choices(['new', 'suppressed', 'resolved', 'all']).default('new'))
    .option('--since <time>', 'from (inclusive): RFC 3339 or relative age (24h, 7d)', parseTimeOption('--since'))
    .option('--until <time>', 'to (exclusive): RFC 3339 or relative age', parseTimeOption('--until'))
    .option('--owner <owner>', 'only this org / owner')
    .option('--repo <repo>', 'only this repository (name or owner/name)')
    .option('--min-count <n>', 'omit process groups with fewer detections', parseIntOption('--min-count', 1), 2)
    .option('--limit <n>', 'process groups per page', parseIntOption('--limit', 1, 1000), 50)
    .option('--cursor <cursor>', 'next_cursor from a previous page')
    .option('--samples <n>', 'sample detections per process', parseIntOption('--samples', 0, 100), 5)
    .option('--dashboard-url <url>', 'base URL for dashboard links (env EGRESS_TRIAGE_DASHBOARD_URL)');
  withStoreOptions(cmd).action(async (opts: AnalyzeOpts) => {
    await withStore(opts, async ({ store, tenant, json, config }) => {
      let result;
      try {
        const rules = new RulesService(store, { extraRiskyDestinations: config.risky_destinations });
        result = await analyzeAnomalousCallsByProcess(
          store,
          {
            tenant,
            detectionTypes: opts.detectionId,
            status: opts.status,
            since: opts.since,
            until: opts.until,
            owner: opts.owner,
            repo: opts.repo,
            minCount: opts.minCount,
            limit: opts.limit,
            cursor: opts.cursor ?? null,
            samples: opts.samples,
            dashboardUrl: resolveDashboardUrl(opts.dashboardUrl ?? process.env.EGRESS_TRIAGE_DASHBOARD_URL ?? config.dashboard_url),
            extraRiskyDestinations: config.risky_destinations,
          },
          { rules },
        );
      } catch (err) {
        if (err instanceof AnalysisError) throw new UserError(err.message);
        if (err instanceof Error && /risky_destinations/.test(err.message)) throw new UserError(err.message);
        throw err;
      }
      if (json) return printJson(result);
      process.stdout.write(renderAnalysisTable(result) + '\n');
    });
  });
}
