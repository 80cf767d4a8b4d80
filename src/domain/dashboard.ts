/** Default base: the local dashboard served by `egress-triage serve`. */
export const DEFAULT_DASHBOARD_URL = 'http://127.0.0.1:8787';

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
