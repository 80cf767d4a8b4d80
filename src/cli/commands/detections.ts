import { Command } from 'commander';
import { dashboardUrlFor, withPorts, withStoreOptions, printJson, parseIntOption, parseCursorOption, formatTable, type StoreOptions } from '../common.js';
import { UserError } from '../errors.js';
import { addFilterOptions, filterFromOptions, type FilterOptionValues } from '../filter-options.js';
import { CursorError } from '../../storage/detection-cursor.js';
import { dashboardUrl } from '../../domain/dashboard.js';

interface ListOpts extends StoreOptions, FilterOptionValues {
  limit: number;
  cursor?: string;
  dashboardUrl?: string;
}

export function register(program: Command): void {
  const det = program.command('detections').description('Query stored detections');
  const list = det
    .command('list')
    .description('List detections, newest first');
  addFilterOptions(list, ['type', 'status', 'owner', 'repo', 'workflow', 'job', 'run-id', 'process', 'sha256', 'endpoint', 'since', 'until'], { status: 'all' })
    .option('--limit <n>', 'page size', parseIntOption('--limit', 1, 10_000), 50)
    .option('--cursor <cursor>', 'next_cursor from a previous page', parseCursorOption)
    .option('--dashboard-url <url>', 'dashboard base URL (env EGRESS_TRIAGE_DASHBOARD_URL)');
  withStoreOptions(list).action(async (opts: ListOpts) => {
    // validated before the store is opened: a bad filter is a usage error whatever the store holds
    const filter = filterFromOptions(opts, { status: 'all' });
    await withPorts(opts, async ({ ports, tenant, json, config }) => {
      const base = dashboardUrlFor(opts.dashboardUrl, config);
      let page;
      try {
        page = await ports.detections.list(tenant, filter, opts.limit, opts.cursor);
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
    }, 'read', { aboutTenant: true });
  });
}
