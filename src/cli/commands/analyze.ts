import { Command } from 'commander';
import { dashboardUrlFor, withPorts, withStoreOptions, printJson, parseIntOption, parseCursorOption, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { addFilterOptions, filterFromOptions, type FilterOptionValues } from '../filter-options.js';
import { AnalysisError, analyzeAnomalousCallsByProcess } from '../../analysis/analyze-by-process.js';
import { renderAnalysisTable } from '../../analysis/render.js';
import { NEW_OUTBOUND } from '../../domain/types.js';
import { relativeClock } from '../../analysis/cursor.js';

export { renderAnalysisTable } from '../../analysis/render.js';

interface AnalyzeOpts extends StoreOptions, FilterOptionValues {
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
    .option('--detection-id <type>', `alias of --type (StepSecurity's name), repeatable; default ${NEW_OUTBOUND}`, collect);
  addFilterOptions(cmd, ['type', 'status', 'owner', 'repo', 'workflow', 'job', 'since', 'until'], { status: 'new' })
    .option('--min-count <n>', 'omit process groups with fewer detections (never one that calls a risky destination or is a suspected impostor)', parseIntOption('--min-count', 1), 2)
    .option('--limit <n>', 'process groups per page', parseIntOption('--limit', 1, 1000), 50)
    .option('--cursor <cursor>', 'next_cursor from a previous page', parseCursorOption)
    .option('--samples <n>', 'sample detections per process', parseIntOption('--samples', 0, 100), 5)
    .option('--dashboard-url <url>', 'base URL for dashboard links (env EGRESS_TRIAGE_DASHBOARD_URL)');
  // every backend: on PostgreSQL, without a rules service there yet, no rule is suggested (open-store.ts)
  withStoreOptions(cmd).action(async (opts: AnalyzeOpts) => {
    // a next page reads relative times ("--since 24h") against the first page's clock: the same window
    const now = relativeClock(opts.since, opts.until, opts.cursor);
    const filter = filterFromOptions(opts, { status: 'new', types: [NEW_OUTBOUND], ...(now !== undefined ? { now } : {}) }, opts.detectionId?.length ? '--detection-id' : '--type');
    await withPorts(opts, async ({ ports, tenant, json, config }) => {
      let result;
      try {
        const rules = ports.analysisRules(config.risky_destinations);
        result = await analyzeAnomalousCallsByProcess(
          { analysis: ports.analysis },
          {
            tenant,
            filter,
            ...(now !== undefined ? { now } : {}),
            minCount: opts.minCount,
            limit: opts.limit,
            cursor: opts.cursor ?? null,
            samples: opts.samples,
            dashboardUrl: dashboardUrlFor(opts.dashboardUrl, config),
            extraRiskyDestinations: config.risky_destinations,
          },
          { rules },
        );
      } catch (err) {
        // a cursor is only ever wrong as the option that carried it: say which
        if (err instanceof AnalysisError) throw new UserError(err.code === 'invalid_cursor' ? `--cursor: ${err.message}` : err.message);
        if (err instanceof Error && /risky_destinations/.test(err.message)) throw new UserError(err.message);
        throw err;
      }
      if (json) return printJson(result);
      process.stdout.write(renderAnalysisTable(result) + '\n');
    }, 'read', { aboutTenant: true });
  });
}
