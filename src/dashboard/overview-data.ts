import type { Detection } from '../domain/types.js';
import type { DetectionDayCount, OverviewCounts, ProcessOpenCount } from '../storage/overview-port.js';
import type { DashboardStore } from './store.js';

/** What the overview page shows, read through the ports in one place. */
export interface OverviewData {
  tenant: string;
  stats: OverviewCounts;
  chart: TimelineChart;
  topProcesses: ProcessOpenCount[];
  newest: Detection[];
  /** null when no policy gateway holds calls in this server */
  pendingApprovals: number | null;
}

/** Dense daily series for the chart (and its table): one series per detection type and status seen. */
export interface TimelineChart {
  days: number[];
  series: { label: string; values: number[] }[];
}

/** The chart shows at most this many days, ending with the newest day that has a detection. */
export const CHART_DAYS = 90;

/** Pure: sparse (day, type, status, n) rows -> dense days and one series per (type, status). */
export function timelineChart(rows: readonly DetectionDayCount[], maxDays = CHART_DAYS): TimelineChart {
  if (rows.length === 0) return { days: [], series: [] };
  const last = Math.max(...rows.map((r) => r.day));
  const first = Math.max(Math.min(...rows.map((r) => r.day)), last - maxDays + 1);
  const days = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  const series = new Map<string, number[]>();
  for (const r of rows) {
    if (r.day < first) continue;
    const label = `${r.type} (${r.status})`;
    let values = series.get(label);
    if (!values) series.set(label, (values = days.map(() => 0)));
    values[r.day - first]! += r.n;
  }
  return { days, series: [...series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([label, values]) => ({ label, values })) };
}

/** How many of the newest detections the overview lists. */
export const NEWEST_DETECTIONS = 10;

/**
 * Nothing here reads in proportion to the tenant's detections or calls: the detection counts come
 * from the rollups, the other counts skip the observations (overview.counts, not detections.stats,
 * which counts every distinct call), and the newest detections come from the Detections page's
 * keyset window without its count (detections.list would also total the tenant's detections).
 */
export async function loadOverview(store: DashboardStore, tenant: string): Promise<OverviewData> {
  const [stats, byDay, topProcesses, newest, pendingApprovals] = await Promise.all([
    store.overview.counts(tenant),
    store.overview.detectionsByDay(tenant),
    store.overview.topOpenProcesses(tenant, 10),
    store.dashboard.detectionWindow(tenant, { filter: {}, limit: NEWEST_DETECTIONS }),
    store.pendingApprovals ? store.pendingApprovals() : Promise.resolve(null),
  ]);
  return { tenant, stats, chart: timelineChart(byDay), topProcesses, newest: newest.detections, pendingApprovals };
}
