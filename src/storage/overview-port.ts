import type { DetectionStatus } from '../domain/types.js';

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

export interface OverviewReader {
  /** Detections per day, type and status, oldest day first; from `sinceDay` (epoch day) when given. */
  detectionsByDay(tenant: string, q?: { sinceDay?: number }): Promise<DetectionDayCount[]>;
  /** The processes with the most open detections, most first (ties by name). */
  topOpenProcesses(tenant: string, limit: number): Promise<ProcessOpenCount[]>;
}
