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
}
