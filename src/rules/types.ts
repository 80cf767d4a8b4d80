/** Condition keys a suppression rule may use. Absent key = wildcard. */
export const SCOPE_KEYS = ['owner', 'repo', 'workflow', 'job'] as const;
export const TYPE_KEYS = [
  'endpoint', 'ip_address', 'process', 'process_sha256', 'host', 'file', 'file_path', 'secret_type', 'action',
] as const;
export const CONDITION_KEYS = [...SCOPE_KEYS, ...TYPE_KEYS] as const;
export type ConditionKey = (typeof CONDITION_KEYS)[number];
export type RuleConditions = Partial<Record<ConditionKey, string>>;

/** Risky detections a rule would match, by destination and process. */
export interface RiskySample {
  endpoint: string;
  /** the address the calls went to, when that alone makes them risky (a configured range) */
  address?: string;
  process: string;
  count: number;
}

export interface SuppressionRule {
  rule_id: string;
  /** detection type the rule applies to (StepSecurity's field name) */
  id: string;
  name: string;
  description: string;
  conditions: RuleConditions;
  severity_action: { type: 'ignore' };
  created_by: string;
  created_on: string;
  updated_on: string;
}

export interface RuleInput {
  detection_id: string;
  conditions: RuleConditions;
  name?: string;
  description?: string;
}

export interface RulePreview {
  detection_id: string;
  conditions: RuleConditions;
  /** exact count of currently-new detections the rule would suppress */
  would_suppress: number;
  /** of those, risky destinations (a non-zero value means create will refuse) */
  risky_matches: number;
  /** of those, detections of suspected impostor binaries (a non-zero value means create will refuse) */
  impostor_matches: number;
  risky_samples: RiskySample[];
  by_process: { process: string; count: number }[];
  by_repo: { owner: string; repo: string; count: number }[];
  sample_detection_ids: string[];
  warnings: string[];
  /** null when create would accept the rule */
  refused_reason: string | null;
}

export interface RuleChangeResult {
  rule: SuppressionRule;
  /** detections moved new -> suppressed */
  suppressed: number;
  /** detections moved suppressed -> new */
  restored: number;
  /**
   * update only: detections this rule suppressed before the change and still matches (they stay
   * suppressed by it), and those it no longer matches that another active rule covers (moved to that
   * rule). The rest of its former suppressions are in `restored`.
   */
  kept?: number;
  handed_to_other_rules?: { rule_id: string; count: number }[];
  /**
   * create, and update with new conditions: the warnings the rule's preview gives
   * (RulePreview.warnings), so a rule written without a preview first (`rules create --yes`, `rules
   * update --yes`) still says what it risks, such as a VPN daemon covered by name alone.
   */
  warnings?: string[];
}
