/** Core domain model shared by every module. Pure data: no I/O here. */

export type Protocol = 'tcp' | 'udp';
export type CallStatus = 'allowed' | 'blocked';
export type DetectionStatus = 'new' | 'suppressed' | 'resolved';

export const DETECTION_STATUSES: readonly DetectionStatus[] = ['new', 'suppressed', 'resolved'];

/** StepSecurity detection type ids. We raise the first two; the rest arrive via imports. */
export const DETECTION_TYPES = [
  'New-Outbound-Network-Call',
  'Domain-Blocked',
  'HTTPS-Outbound-Network-Call',
  'Suspicious-Network-Call',
  'Source-Code-Overwritten',
  'Secret-In-Build-Log',
  'Secret-In-Artifact',
  'Action-Uses-Imposter-Commit',
  'Runner-Worker-Memory-Read',
  'Reverse-Shell',
  'Privileged-Container',
] as const;
export type DetectionType = (typeof DETECTION_TYPES)[number];
/**
 * Detection types that are a behaviour, not a destination: no VPN / mesh daemon opens a reverse
 * shell, makes a call the monitor calls suspicious, reads the runner's memory or overwrites the
 * source. A daemon-named binary with one of them is a suspected impostor, and no rule is suggested
 * for them (analysis/impostor.ts, analysis/suggestion.ts).
 */
export const NEVER_DAEMON_TYPES: ReadonlySet<string> = new Set<DetectionType>(['Reverse-Shell', 'Suspicious-Network-Call', 'Runner-Worker-Memory-Read', 'Source-Code-Overwritten']);
export const NEW_OUTBOUND = 'New-Outbound-Network-Call' satisfies DetectionType;
export const DOMAIN_BLOCKED = 'Domain-Blocked' satisfies DetectionType;

export function isDetectionType(value: string): value is DetectionType {
  return (DETECTION_TYPES as readonly string[]).includes(value);
}

/** A process as attributed by the runtime monitor. `parent` is recursive. */
export interface ProcessInfo {
  name: string;
  path?: string;
  sha256?: string;
  pid?: number;
  parent?: ProcessInfo | null;
}

/** The CI job a call belongs to. Harden-Runner knows this per job, not per record. */
export interface JobContext {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  runId: string;
  runAttempt: number;
  jobId?: string;
}

/** One process-attributed outbound connection, normalised from any ingest format. */
export interface NetworkCallEvent {
  tenant: string;
  ctx: JobContext;
  /** epoch milliseconds */
  timestamp: number;
  domain?: string;
  ip?: string;
  port: number;
  protocol?: Protocol;
  process: ProcessInfo;
  status: CallStatus;
  /** the producer's policy verdict, when it gives one (Harden-Runner `matched_policy`, `reason`) */
  matchedPolicy?: string;
  reason?: string;
}

/** One entry of a process's parent chain, nearest parent first. */
export interface ParentLink {
  name: string;
  path?: string;
  sha256?: string;
}

/** The tool block of a detection, StepSecurity-compatible plus our additions. */
export interface DetectionTool {
  name: string;
  normalized_name: string;
  path: string | null;
  sha256: string | null;
  parent: ParentLink[];
}

/** A detection as returned by every read API. Field names follow StepSecurity's API. */
export interface Detection {
  id: string;
  tenant: string;
  detection_id: DetectionType | string;
  owner: string;
  repo: string;
  workflow_path: string;
  job: string;
  job_id: string | null;
  run_id: string;
  run_attempt: number;
  timestamp: string;
  endpoint: string;
  host: string | null;
  ip_address: string | null;
  direct_ip_address: string | null;
  port: number | null;
  protocol: Protocol | null;
  tool: DetectionTool;
  expected_outbound_connections: string[];
  status: DetectionStatus;
  is_resolved: boolean;
  is_suppressed: boolean;
  suppress_rule_id: string | null;
  external_id: string | null;
  /** the producer's policy verdict on the call, when it gave one (Harden-Runner) */
  matched_policy?: string;
  reason?: string;
}

/** A detection imported as-is from a StepSecurity export. */
export interface ImportedDetection {
  tenant: string;
  externalId: string;
  type: string;
  ctx: JobContext;
  timestamp: number;
  endpoint: string;
  host?: string;
  ip?: string;
  directIp?: string;
  port?: number;
  protocol?: Protocol;
  process: ProcessInfo;
  expected: string[];
  status: DetectionStatus;
  /** StepSecurity's suppress_rule_id, when the export carries one */
  suppressRuleId?: string;
}
