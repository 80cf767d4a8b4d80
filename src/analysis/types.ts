import type { DetectionStatus } from '../domain/types.js';
import type { DetectionFilter } from '../domain/filter.js';
import type { RuleConditions } from '../rules/types.js';

/** Input of analyzeAnomalousCallsByProcess (library, CLI `analyze`, MCP tool). */
export interface AnalyzeInput {
  tenant: string;
  /** default ['New-Outbound-Network-Call'] */
  detectionTypes?: string[];
  /** default 'new' */
  status?: DetectionStatus | 'all';
  /** RFC 3339, epoch ms or a relative age (domain/time.ts); inclusive */
  since?: string | number;
  /** exclusive */
  until?: string | number;
  /** case-insensitive */
  owner?: string;
  /** "name" or "owner/name", case-insensitive */
  repo?: string;
  /**
   * Already parsed by domain/filter.ts (faces do this so errors name their own arguments). When set,
   * detectionTypes, status, since, until, owner and repo must be left out.
   */
  filter?: DetectionFilter;
  /** clock for relative times ("24h") in the raw fields; default Date.now() */
  now?: number;
  /** default 2 */
  minCount?: number;
  /** process groups per page, default 50 */
  limit?: number;
  cursor?: string | null;
  /** 1-based page of process groups (page size `limit`); an alternative to cursor */
  page?: number;
  /** sample detections per process, default 5 */
  samples?: number;
  /** base URL for dashboard_url, default resolveDashboardUrl() */
  dashboardUrl?: string;
  /** extra risky destination patterns from config */
  extraRiskyDestinations?: string[];
}

export interface SampleDetection {
  id: string;
  owner: string;
  repo: string;
  workflow: string;
  run_id: string;
  job: string;
  endpoint: string;
  direct_ip: string | null;
  timestamp: string;
  process_sha256: string | null;
  dashboard_url: string;
}

export interface SuggestedRule {
  /** the detection type the rule applies to (StepSecurity's field name) */
  detection_id: string;
  conditions: RuleConditions;
  severity_action: { type: 'ignore' };
  rationale: string;
  /** null when the rule is safe to create; otherwise why it must not be (and conditions are then advisory) */
  blocked_reason: string | null;
  impact: {
    /** exact number of currently-new detections this rule would suppress */
    would_suppress: number;
    /** of those, how many go to risky destinations (always 0 for a suggestion that is not blocked) */
    risky: number;
  };
}

/** Evidence about one binary (sha256, or path when the hash is unknown) of a VPN-named process. */
export interface BinaryVerdict {
  sha256: string | null;
  path: string | null;
  count: number;
  /** genuine: signature traffic and no contradiction; impostor: any contradiction; unverified: neither */
  verdict: 'genuine' | 'impostor' | 'unverified';
  supporting: string[];
  contradicting: string[];
}

export interface VpnEvidence {
  name_match: boolean;
  daemon: string | null;
  supporting: string[];
  contradicting: string[];
  /** per-binary verdicts (empty for non-VPN names) */
  binaries: BinaryVerdict[];
}

export interface ProcessGroup {
  process: string;
  count: number;
  distinct_endpoints: number;
  distinct_direct_ips: number;
  is_vpn_process_candidate: boolean;
  name_impersonation_suspected: boolean;
  endpoints_sample: string[];
  direct_ips_sample: string[];
  risky_destinations_suppressed_by_process_rule: number;
  risky_destination_samples: string[];
  suggested_rule: SuggestedRule | null;
  sample_detections: SampleDetection[];
  distinct_repos: number;
  distinct_owners: number;
  first_seen: string;
  last_seen: string;
  binaries: { sha256: string | null; path: string | null; count: number; genuine: boolean | null }[];
  parents: { chain: string; count: number }[];
  vpn_evidence: VpnEvidence;
  /** for non-VPN processes: per-destination review notes */
  review: { endpoint: string; count: number; rationale: string }[];
  warnings: string[];
  /** why suggested_rule is null or blocked, in one sentence (null when a safe suggestion exists) */
  no_suggestion_reason: string | null;
}

export interface AnalyzeResult {
  tenant: string;
  detection_id: string;
  total_anomalies_scanned: number;
  processes_returned: number;
  min_count_filter: number;
  note: string;
  processes: ProcessGroup[];
  window: { since: string | null; until: string | null };
  next_cursor: string | null;
}
