import type { Detection } from '../domain/types.js';
import type { DetectionFilter } from '../domain/filter.js';
import type { DashboardQueries } from '../storage/dashboard-port.js';
import { dashboardUrl } from '../domain/dashboard.js';
import { csvRecord } from './csv.js';

/**
 * The Detections page's CSV export as an async iterable of text chunks, for the HTTP layer to pipe
 * (Readable.from(...)). It walks the filter's matches newest first by keyset, one page of
 * `batchSize` per chunk, so memory stays flat and the first chunk costs one page whatever the
 * store holds; a consumer that stops reading stops the queries. The first chunk is the header.
 */

export const DETECTION_CSV_COLUMNS = [
  'id', 'timestamp', 'type', 'status', 'owner', 'repo', 'workflow', 'job', 'run_id', 'run_attempt', 'job_id',
  'endpoint', 'host', 'ip_address', 'port', 'protocol', 'process', 'process_path', 'process_sha256', 'suppress_rule_id',
] as const;

export function detectionCsvCells(d: Detection): (string | number | null)[] {
  return [
    d.id, d.timestamp, d.detection_id, d.status, d.owner, d.repo, d.workflow_path, d.job, d.run_id, d.run_attempt, d.job_id,
    d.endpoint, d.host, d.ip_address, d.port, d.protocol, d.tool.name, d.tool.path, d.tool.sha256, d.suppress_rule_id,
  ];
}

export interface DetectionsCsvOptions {
  /** rows per query and per chunk (default 1000) */
  batchSize?: number;
  /** adds a dashboard_url column pointing at this dashboard base URL */
  dashboardBase?: string;
}

export async function* detectionsCsv(
  queries: Pick<DashboardQueries, 'detectionWindow'>,
  tenant: string,
  filter: DetectionFilter,
  opts: DetectionsCsvOptions = {},
): AsyncGenerator<string> {
  const limit = opts.batchSize ?? 1000;
  const base = opts.dashboardBase;
  yield csvRecord(base === undefined ? [...DETECTION_CSV_COLUMNS] : [...DETECTION_CSV_COLUMNS, 'dashboard_url']);
  let after: string | null = null;
  do {
    const page = await queries.detectionWindow(tenant, { filter, limit, after });
    if (page.detections.length > 0) {
      yield page.detections.map((d) => csvRecord(base === undefined ? detectionCsvCells(d) : [...detectionCsvCells(d), dashboardUrl(base, d)])).join('');
    }
    after = page.nextCursor;
  } while (after);
}
