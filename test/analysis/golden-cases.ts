import type { AnalyzeInput, AnalyzeResult } from '../../src/analysis/types.js';

/**
 * The golden analysis calls: the demo tenant (writeTenant, seed 3) analysed unfiltered, filtered
 * (window, owner, repo, workflow/job, types, statuses) and paged by cursor to the end. Their JSON was
 * captured from the build before the analysis moved onto the port (test/fixtures/analysis-golden).
 */

export const GOLDEN_TENANT = { runs: 14, seed: 3, events: 40_000 };
const DASH = 'https://dash.example.test';

export const GOLDEN_CALLS: [name: string, input: AnalyzeInput][] = [
  ['default', { tenant: 'default', dashboardUrl: DASH }],
  ['window', { tenant: 'default', since: '2026-11-05T13:00:00Z', until: '2026-11-12T07:30:00Z', minCount: 1, dashboardUrl: DASH }],
  ['same-day-window', { tenant: 'default', since: '2026-11-05T13:00:00Z', until: '2026-11-05T19:00:00Z', minCount: 1, dashboardUrl: DASH }],
  ['owner', { tenant: 'default', owner: 'ACME-CORP', samples: 2, dashboardUrl: DASH }],
  ['repo-window', { tenant: 'default', repo: 'ACME-CORP/Ingest-Service', since: '2026-11-02', until: '2026-11-19T09:16:40Z', minCount: 1, dashboardUrl: DASH }],
  ['workflow-job', { tenant: 'default', filter: { types: ['New-Outbound-Network-Call'], statuses: ['new'], workflow: '.github/workflows/ci.yml', job: 'build' }, minCount: 1, dashboardUrl: DASH }],
  ['types', { tenant: 'default', detectionTypes: ['New-Outbound-Network-Call', 'Domain-Blocked'], status: 'all', samples: 0, dashboardUrl: DASH }],
  ['page-3', { tenant: 'default', limit: 2, page: 3, minCount: 1, dashboardUrl: DASH }],
];

/** After a suppression rule (the suggested tailscaled one) moved detections to `suppressed`. */
export const GOLDEN_CALLS_AFTER_RULE: [name: string, input: AnalyzeInput][] = [
  ['after-rule-all', { tenant: 'default', status: 'all', minCount: 1, samples: 1, dashboardUrl: DASH }],
  ['after-rule-suppressed', { tenant: 'default', status: 'suppressed', minCount: 1, samples: 3, dashboardUrl: DASH }],
  ['after-rule-suppressed-window', { tenant: 'default', status: 'suppressed', since: '2026-11-10T10:00:00Z', minCount: 1, samples: 1, dashboardUrl: DASH }],
  ['after-rule-new', { tenant: 'default', samples: 1, dashboardUrl: DASH }],
];

type Analyze = (input: AnalyzeInput) => Promise<AnalyzeResult>;

/**
 * Every golden call, two cursor walks to the end (unfiltered, and windowed and scoped), then
 * `createRule` with the default call's suggested tailscaled rule and the calls after it.
 */
export async function goldenOutputs(analyze: Analyze, createRule: (conditions: Record<string, string>) => Promise<void>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [name, input] of GOLDEN_CALLS) out.set(name, JSON.stringify(await analyze(input), null, 2) + '\n');
  for (const [name, base] of [
    ['walk', { tenant: 'default', limit: 2, minCount: 1, samples: 1, dashboardUrl: DASH }],
    ['walk-filtered', { tenant: 'default', limit: 2, minCount: 1, samples: 1, since: '2026-11-02T06:00:00Z', owner: 'globex', dashboardUrl: DASH }],
  ] as [string, AnalyzeInput][]) {
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const r = await analyze({ ...base, cursor });
      out.set(`${name}-${i}`, JSON.stringify(r, null, 2) + '\n');
      cursor = r.next_cursor;
      if (!cursor) break;
    }
  }
  const first = JSON.parse(out.get('default')!) as AnalyzeResult;
  const suggestion = first.processes.find((p) => p.process === 'tailscaled')?.suggested_rule;
  if (!suggestion || suggestion.blocked_reason) throw new Error('the golden tenant should suggest a tailscaled rule');
  await createRule(suggestion.conditions as Record<string, string>);
  for (const [name, input] of GOLDEN_CALLS_AFTER_RULE) out.set(name, JSON.stringify(await analyze(input), null, 2) + '\n');
  return out;
}
