/**
 * The dashboard's URLs, built in one place so every page links alike. The run URL is the shape of
 * every dashboard_url the tools emit (src/domain/dashboard.ts).
 */

const q = (params: Record<string, string | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) s.set(k, v);
  const t = s.toString();
  return t ? `?${t}` : '';
};

export function runHref(r: { owner: string; repo: string; runId: string; jobId?: string | null }): string {
  return `/github/${encodeURIComponent(r.owner)}/${encodeURIComponent(r.repo)}/actions/runs/${encodeURIComponent(r.runId)}${q({ jobId: r.jobId ?? undefined, tab: 'network-events' })}`;
}

/** One job's baseline on the baselines page. */
export function baselineHref(j: { owner: string; repo: string; workflow: string; job: string }): string {
  return `/baselines${q({ owner: j.owner, repo: j.repo, workflow: j.workflow, job: j.job })}`;
}

/** The detections page filtered to one process (normalised name). */
export function processHref(name: string): string {
  return `/detections${q({ process: name })}`;
}

/** One suppression rule, with its history (the Rules page). */
export function ruleHref(ruleId: string): string {
  return `/rules/${encodeURIComponent(ruleId)}`;
}
