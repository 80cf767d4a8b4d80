import type { SampleRecord } from '../storage/analysis-port.js';
import { dashboardUrl } from '../domain/dashboard.js';
import type { SampleDetection } from './types.js';

/**
 * sample_detections of a group: the newest `limit` of its variants' newest detections, except that
 * every suspected impostor binary shows at least one (it replaces the oldest non-impostor sample).
 * Pure: `rows` are each variant's newest detections, `keyOf` names a sample's binary.
 */
export function pickSamples(rows: SampleRecord[], limit: number, impostorKeys: string[], keyOf: (r: SampleRecord) => string): SampleRecord[] {
  const newestFirst = (a: SampleRecord, b: SampleRecord) => b.ts - a.ts || b.id - a.id;
  const all = [...rows].sort(newestFirst);
  let chosen = all.slice(0, limit);
  for (const k of impostorKeys) {
    if (chosen.some((r) => keyOf(r) === k)) continue;
    const extra = all.find((r) => keyOf(r) === k);
    if (!extra) continue;
    const replace = [...chosen].reverse().find((r) => !impostorKeys.includes(keyOf(r)));
    if (replace) chosen = chosen.filter((r) => r !== replace);
    if (chosen.length < limit) chosen.push(extra);
  }
  return chosen.sort(newestFirst);
}

export function sampleDetection(r: SampleRecord, dashboardBase: string): SampleDetection {
  return {
    id: String(r.id),
    owner: r.owner,
    repo: r.repo,
    workflow: r.workflow,
    run_id: r.runId,
    job: r.job,
    endpoint: r.endpoint,
    direct_ip: r.directIp ? (r.ip ?? r.host) : null,
    timestamp: new Date(r.ts).toISOString(),
    process_sha256: r.sha256,
    dashboard_url: dashboardUrl(dashboardBase, { owner: r.owner, repo: r.repo, run_id: r.runId, job_id: r.ghJobId }),
  };
}
