import { Command, Option } from 'commander';
import { withStore, withStoreOptions, printJson, parseIntOption, parseTimeOption, formatTable, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { DETECTION_STATUSES, type DetectionStatus } from '../../domain/types.js';
import { CursorError } from '../../storage/sqlite/detection-repo.js';
import { dashboardUrl, resolveDashboardUrl } from '../../domain/dashboard.js';

interface ListOpts extends StoreOptions {
  type?: string[];
  status?: DetectionStatus | 'all';
  owner?: string;
  repo?: string;
  process?: string;
  endpoint?: string;
  since?: number;
  until?: number;
  limit: number;
  cursor?: string;
  dashboardUrl?: string;
}

export function register(program: Command): void {
  const det = program.command('detections').description('Query stored detections');
  const list = det
    .command('list')
    .description('List detections, newest first')
    .option('--type <type...>', 'detection type(s), e.g. New-Outbound-Network-Call Domain-Blocked')
    .addOption(new Option('--status <status>', 'detection status').choices([...DETECTION_STATUSES, 'all']).default('all'))
    .option('--owner <owner>', 'GitHub org / owner')
    .option('--repo <repo>', 'repository name')
    .option('--process <name>', 'process name (normalised: basename, no .exe, case-insensitive)')
    .option('--endpoint <endpoint>', 'exact endpoint, host:port')
    .option('--since <time>', 'RFC 3339 time or relative age (24h, 7d)', parseTimeOption('--since'))
    .option('--until <time>', 'RFC 3339 time or relative age', parseTimeOption('--until'))
    .option('--limit <n>', 'page size', parseIntOption('--limit', 1, 10_000), 50)
    .option('--cursor <cursor>', 'next_cursor from a previous page')
    .option('--dashboard-url <url>', 'dashboard base URL (env EGRESS_TRIAGE_DASHBOARD_URL)');
  withStoreOptions(list).action(async (opts: ListOpts) => {
    await withStore(opts, async ({ store, tenant, json, config }) => {
      const base = resolveDashboardUrl(opts.dashboardUrl ?? config.dashboard_url);
      let page;
      try {
        page = await store.detections.list(
          tenant,
          {
            types: opts.type,
            statuses: opts.status && opts.status !== 'all' ? [opts.status] : undefined,
            owner: opts.owner,
            repo: opts.repo,
            process: opts.process,
            endpoint: opts.endpoint,
            since: opts.since,
            until: opts.until,
          },
          opts.limit,
          opts.cursor,
        );
      } catch (err) {
        if (err instanceof CursorError) throw new UserError(`--cursor: ${err.message}`);
        throw err;
      }
      const detections = page.detections.map((d) => ({ ...d, dashboard_url: dashboardUrl(base, d) }));
      if (json) return printJson({ tenant, total: page.total, returned: detections.length, next_cursor: page.nextCursor, detections });
      const rows = detections.map((d) => [
        d.id, d.timestamp.slice(0, 19).replace('T', ' '), d.detection_id, d.status, `${d.owner}/${d.repo}`, d.job, d.tool.name, d.endpoint,
      ]);
      process.stdout.write(formatTable(['id', 'time (UTC)', 'type', 'status', 'repo', 'job', 'process', 'endpoint'], rows) + '\n');
      process.stdout.write(`${detections.length} of ${page.total} detections${page.nextCursor ? `; next page: --cursor ${page.nextCursor}` : ''}\n`);
    });
  });
}
