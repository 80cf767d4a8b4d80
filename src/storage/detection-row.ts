import type { Detection, DetectionStatus, ParentLink, Protocol } from '../domain/types.js';
import { STATUS_NAME } from './store.js';

/**
 * A detection as every backend's detection query returns it (one row of its joins), and the one
 * mapping of that row to the domain's Detection: both stores answer `detections list/get` alike.
 */
export interface DetectionRow {
  id: number;
  type: string;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  run_attempt: number;
  gh_job_id: string | null;
  expected_sample: string;
  ts: number;
  endpoint: string;
  host: string;
  /** SQLite returns 0/1, PostgreSQL a boolean */
  is_ip: number | boolean;
  ip: string | null;
  direct_ip: number | boolean;
  port: number | null;
  protocol: string | null;
  pname: string;
  norm_name: string;
  path: string | null;
  sha256: string | null;
  parent_chain: string;
  status: number;
  rule_uid: string | null;
  ext: string;
  matched_policy?: string | null;
  reason?: string | null;
}

export function rowToDetection(tenant: string, r: DetectionRow): Detection {
  const status = STATUS_NAME[r.status] as DetectionStatus;
  return {
    id: String(r.id),
    tenant,
    detection_id: r.type,
    owner: r.owner,
    repo: r.repo,
    workflow_path: r.workflow,
    job: r.job,
    job_id: r.gh_job_id,
    run_id: r.run_id,
    run_attempt: r.run_attempt,
    timestamp: new Date(r.ts).toISOString(),
    endpoint: r.endpoint,
    host: r.is_ip ? null : r.host,
    ip_address: r.ip,
    direct_ip_address: r.direct_ip ? (r.ip ?? r.host) : null,
    port: r.port,
    protocol: (r.protocol as Protocol | null) ?? null,
    tool: {
      name: r.pname,
      normalized_name: r.norm_name,
      path: r.path,
      sha256: r.sha256,
      parent: JSON.parse(r.parent_chain) as ParentLink[],
    },
    expected_outbound_connections: JSON.parse(r.expected_sample) as string[],
    status,
    is_resolved: status === 'resolved',
    is_suppressed: status === 'suppressed',
    suppress_rule_id: r.rule_uid,
    external_id: r.ext === '' ? null : r.ext,
    // present only when the producer gave a verdict, so a blocked call can show why
    ...(r.matched_policy != null ? { matched_policy: r.matched_policy } : {}),
    ...(r.reason != null ? { reason: r.reason } : {}),
  };
}
