import type { DetectionStatus, ParentLink } from '../domain/types.js';

/**
 * Every outbound call of one CI run (the dashboard's run page, where every dashboard_url leads), with
 * what the store knows about each: process and parent chain, the producer's verdict, whether the job's
 * baseline has the endpoint, and the detections raised on it. Tenant-scoped; owner and repo compare
 * case-insensitively (GitHub's names do).
 */

/** One job run of the run: a (workflow, job, attempt, GitHub job id) leg. */
export interface RunLeg {
  workflow: string;
  job: string;
  runAttempt: number;
  jobId: string | null;
  startedAt: string;
  endedAt: string;
  completed: boolean;
  /** the run was part of the job's learning window: its calls taught the baseline, no detection */
  learning: boolean;
}

export interface RunDetectionRef {
  id: string;
  type: string;
  status: DetectionStatus;
}

export interface RunCall {
  /** index into RunCalls.legs */
  leg: number;
  endpoint: string;
  host: string;
  port: number | null;
  /** the resolved IP the call went to, when the producer gave one */
  ip: string | null;
  protocol: string | null;
  process: { name: string; path: string | null; sha256: string | null; parent: ParentLink[] };
  blocked: boolean;
  /** the producer's policy verdict (Harden-Runner matched_policy / reason), when it gave one */
  matchedPolicy: string | null;
  reason: string | null;
  firstSeen: string;
  /** the job's baseline holds this endpoint */
  inBaseline: boolean;
  detections: RunDetectionRef[];
}

export interface RunCalls {
  /** owner and repo as stored */
  owner: string;
  repo: string;
  runId: string;
  legs: RunLeg[];
  /** by leg, then first seen, endpoint, process */
  calls: RunCall[];
  /** detections of the run with no stored call (imported ones, for instance) */
  otherDetections: RunDetectionRef[];
}

export interface RunCallsReader {
  /** The run's calls, for every leg or (jobId) the one GitHub job; null when the tenant has no such run. */
  runCalls(tenant: string, q: { owner: string; repo: string; runId: string; jobId?: string }): Promise<RunCalls | null>;
}
