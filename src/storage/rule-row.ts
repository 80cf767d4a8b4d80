import type { RuleConditions } from '../rules/types.js';
import type { StoredRule } from './rules-port.js';

/**
 * A rule as every backend's rules table holds it (the columns both schemas share), and the one
 * mapping of that row to the port's StoredRule.
 */
export interface RuleRecord {
  id: number;
  tenant_id: number;
  rule_uid: string;
  detection_type: string;
  name: string;
  description: string;
  conditions: string;
  created_by: string;
  created_on: string;
  updated_on: string;
}

export function storedRule(r: RuleRecord): StoredRule {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    uid: r.rule_uid,
    detectionType: r.detection_type,
    name: r.name,
    description: r.description,
    conditions: JSON.parse(r.conditions) as RuleConditions,
    createdBy: r.created_by,
    createdOn: r.created_on,
    updatedOn: r.updated_on,
  };
}
