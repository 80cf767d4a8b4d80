import type { IncomingMessage } from 'node:http';
import type { OpenStore } from '../storage/open-store.js';
import type { AnalyzeInput, AnalyzeResult } from '../analysis/types.js';
import type { RulesService } from '../rules/service.js';
import type { RiskyDestinations } from '../analysis/risky-destinations.js';

/**
 * The analysis and the rules service the processes page uses: the same instances MCP's tools and the
 * CLI go through (src/mcp/services.ts), so every guard (risky destinations, suspected impostors) is
 * decided in one place, src/rules/service.ts.
 */
export interface ProcessesServices {
  analyze(input: AnalyzeInput): Promise<AnalyzeResult>;
  rules(): Promise<RulesService>;
}
import type { PolicyStateBackend } from '../storage/policy-state.js';
import type { PolicyHolder } from '../policy/holder.js';

/** The ports the dashboard reads (and later writes) through: never SQL, always an OpenStore's ports. */
export type DashboardStore = Pick<OpenStore, 'detections' | 'runCalls' | 'overview' | 'dashboard'> &
  Partial<Pick<OpenStore, 'baselines'>> & {
  /**
   * The risky list to judge by now (built in, what the store remembers, the server's config), read
   * for each request of the destinations and baselines pages: an entry another command makes the
   * store remember is guarded from the next request on, not from a restart.
   */
  risky?: () => Promise<RiskyDestinations>;
  /** pending approvals of the running policy gateway; undefined when no policy holds calls */
  pendingApprovals?: () => Promise<number>;
  /** the analysis and rules of the processes page */
  processes?: ProcessesServices;
  /** the policy state the running server holds calls with (approvals, audit); undefined without a policy */
  policy?: Pick<PolicyStateBackend, 'approvals' | 'audit'>;
  /** the policy file the running server enforces (`serve --policy`); undefined without one */
  policyFile?: string;
  /**
   * The holder that enforces policyFile in this process: the Policy page saves through it, so the
   * save is in force (and audited) before the page answers. Undefined: the page cannot edit.
   */
  policyHolder?: Pick<PolicyHolder, 'path' | 'replace' | 'current'>;
};

/** What the server that mounts the dashboard shares with it (src/mcp/http.ts builds it for `serve`). */
export interface DashboardShared {
  policyState: PolicyStateBackend | undefined;
  excludedPaths: string[];
  policyFile?: string;
  policyHolder?: DashboardStore['policyHolder'];
  /** told of each refused sign-in, so `serve --policy` audits them beside the MCP route's 401s and 403s */
  onSignInRefused?: SignInRefusedHook;
}

/** A refused sign-in: `kind` is a fixed name (never text from the request), the key it is tallied under. */
export type SignInRefusedHook = (req: IncomingMessage, r: { status: 401 | 403; kind: string; message: string }) => void;
