import type { DashboardPermission } from '../../http/grants.js';
import type { Theme } from '../cookies.js';

/** What every page's frame needs: who is signed in, the CSRF token for its forms, the assets. */
export interface PageContext {
  /** the signed-in identity; "local" on an open loopback dashboard */
  identity: string;
  permissions: readonly DashboardPermission[];
  /** true when the dashboard needs sign-in (grants configured): shows "Sign out" */
  signedIn: boolean;
  csrf: string;
  theme: Theme;
  /** the path of this request (the active nav link) */
  path: string;
  /** path and query of this request (where the theme form returns to) */
  location: string;
  assets: { script: string; styles: string[] };
  /**
   * Why this open dashboard holds back permissions it would otherwise give (OPEN_UNDER_POLICY), or
   * null: a signed-in session's permissions are its grant's, and an open one without a policy has all.
   */
  openLimit?: string | null;
}

/**
 * An open dashboard (loopback, no --grants) cannot tell a person from a local agent: both are
 * "local". Next to a policy that governs that agent's tool calls (`serve --policy`), a write or an
 * approval there would let the agent do what the policy holds back, or approve its own held call.
 */
export const OPEN_UNDER_POLICY =
  'This dashboard runs without --grants next to a policy that governs the agent\'s tool calls, so it cannot tell a person from the agent and is read-only. ' +
  'Decide approvals with "egress-triage approvals approve ID" (or "deny") in a terminal, or restart it with --grants and sign in.';

/** What to say where a page leaves out what the session may not do. */
export function permissionNote(ctx: PageContext, needs: string): string {
  return ctx.openLimit ?? needs;
}
