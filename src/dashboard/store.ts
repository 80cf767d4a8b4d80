import type { OpenStore } from '../storage/open-store.js';
import type { PolicyStateBackend } from '../storage/policy-state.js';

/** The ports the dashboard reads (and later writes) through: never SQL, always an OpenStore's ports. */
export type DashboardStore = Pick<OpenStore, 'detections' | 'runCalls' | 'overview'> & {
  /** pending approvals of the running policy gateway; undefined when no policy holds calls */
  pendingApprovals?: () => Promise<number>;
  /** the policy state the running server holds calls with (approvals, audit); undefined without a policy */
  policy?: Pick<PolicyStateBackend, 'approvals' | 'audit'>;
  /** the policy file the running server enforces (`serve --policy`); undefined without one */
  policyFile?: string;
};
