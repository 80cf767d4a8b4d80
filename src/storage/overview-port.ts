import type { DetectionStatus } from '../domain/types.js';
import type { TenantStats } from './store.js';

/**
 * The tenant at a glance (the dashboard's overview), answered from the exact rollups every backend
 * keeps, so it costs the same on a store with a million detections as on a small one.
 */

export interface DetectionDayCount {
  /** epoch day (UTC) */
  day: number;
  type: string;
  status: DetectionStatus;
  n: number;
}

export interface ProcessOpenCount {
  /** normalised process name */
  process: string;
  /** open (status new) detections */
  n: number;
}

/**
 * What DetectionRepository.stats counts except observations and baseline endpoints: those counts
 * grow with every distinct call ever seen, and the overview shows neither. On SQLite the
 * observations alone cost one index probe per run even when there are none: stats took 62 ms of CPU
 * on the 1M-detection bench store, these counts 6.7 ms (bench/dashboard-queries.ts).
 */
export type OverviewCounts = Omit<TenantStats, 'observations' | 'baselineEndpoints'>;

export interface OverviewReader {
  /** The tenant's jobs (and those still learning), runs, active rules, and detections by type and status. */
  counts(tenant: string): Promise<OverviewCounts>;
  /** Detections per day, type and status, oldest day first; from `sinceDay` (epoch day) when given. */
  detectionsByDay(tenant: string, q?: { sinceDay?: number }): Promise<DetectionDayCount[]>;
  /** The processes with the most open detections, most first (ties by name). */
  topOpenProcesses(tenant: string, limit: number): Promise<ProcessOpenCount[]>;
}
