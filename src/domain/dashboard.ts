/** Default base: the local dashboard served by `egress-triage serve`. */
export const DEFAULT_DASHBOARD_URL = 'http://127.0.0.1:8787';

/**
 * Why `value` cannot be the dashboard's base URL, or null when it can: an absolute http(s) URL. Every
 * dashboard_url is built on it, and people and agents follow those links (a `javascript:` one runs).
 */
export function dashboardUrlProblem(value: string): string | null {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return `${JSON.stringify(value)} is not a URL; give the dashboard's base URL, like ${DEFAULT_DASHBOARD_URL}`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `${JSON.stringify(value)} is not an http or https URL; give the dashboard's base URL, like ${DEFAULT_DASHBOARD_URL}`;
  // links are built by appending a path: a query or fragment would swallow it, and credentials would
  // be copied into every link an agent shows
  if (u.search || u.hash || value.includes('#')) return `${JSON.stringify(value)} has a query or fragment; give the dashboard's base URL only, like ${DEFAULT_DASHBOARD_URL}`;
  if (u.username || u.password) return `${JSON.stringify(value)} holds credentials, which every link would repeat; give the dashboard's base URL without them`;
  return null;
}

export function resolveDashboardUrl(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (flag ?? env.EGRESS_TRIAGE_DASHBOARD_URL ?? DEFAULT_DASHBOARD_URL).replace(/\/+$/, '');
}

/** StepSecurity's shape: /github/{owner}/{repo}/actions/runs/{run_id}?jobId=..&tab=network-events */
export function dashboardUrl(base: string, d: { owner: string; repo: string; run_id: string; job_id: string | null }): string {
  const q = new URLSearchParams();
  if (d.job_id) q.set('jobId', d.job_id);
  q.set('tab', 'network-events');
  return `${base}/github/${encodeURIComponent(d.owner)}/${encodeURIComponent(d.repo)}/actions/runs/${encodeURIComponent(d.run_id)}?${q.toString()}`;
}
