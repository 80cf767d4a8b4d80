import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/server';
import { definition } from './context.js';

/** Prompts: reusable, step-by-step plans for the two common jobs. */
export function registerPrompts(server: McpServer, tenant: string): void {
  server.registerPrompt(
    'triage-anomalies',
    definition('prompt:triage-anomalies', () => ({
      title: 'Triage anomalous CI egress',
      description:
        'Step-by-step plan: analyse open anomalies by process, preview a rule for each genuine VPN daemon, show the impact, create only after approval, never touch risky destinations.',
      argsSchema: z.object({
        owner: z.string().optional().describe('Optional GitHub owner (organization) to restrict the triage to'),
      }),
    })),
    ({ owner }) => ({
      description: 'Triage anomalous outbound calls safely',
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: `Triage the open anomalous outbound network calls of tenant "${tenant}"${owner ? ` for owner "${owner}"` : ''} with the egress-triage tools. Follow this plan exactly:

1. Call analyze_anomalous_calls_by_process${owner ? ` with owner "${owner}"` : ''}. If next_cursor is non-null, fetch the remaining pages.
2. Summarise the processes in a table: process, count, distinct endpoints, distinct direct IPs, VPN candidate, impostor suspected. Include the dashboard_url of at least one sample detection per process as a link.
3. For each process with is_vpn_process_candidate = true AND name_impersonation_suspected = false AND suggested_rule.blocked_reason = null: treat the VPN verdict as evidence, not proof. Check vpn_evidence (supporting / contradicting), binaries (sha256, genuine) and parents, and say what convinced you.
4. For each such genuine VPN daemon call preview_suppression_rule with suggested_rule.detection_id and suggested_rule.conditions. Show the user the exact impact: would_suppress, by_process, by_repo, warnings and sample dashboard_url links.
5. Ask the user to approve each rule separately. Only after an explicit "yes" call create_suppression_rule with the same conditions, a clear name, a description of the evidence, and confirm: true. Report how many detections it suppressed.
6. Never create or propose a rule that covers risky destinations (gist.githubusercontent.com, webhook.site, oast / ngrok / trycloudflare tunnels, pastebin, ...). If a process has name_impersonation_suspected = true, a non-null blocked_reason, or risky destinations: do NOT suppress it; flag it to the user as a possible compromise with its dashboard links and the evidence.
7. For non-VPN processes (curl, node, dockerd, ...) do not propose process-wide rules; list their destinations for per-destination review.
8. Finally re-run analyze_anomalous_calls_by_process and report what is left.`,
          },
        },
      ],
    }),
  );

  server.registerPrompt(
    'investigate-endpoint',
    definition('prompt:investigate-endpoint', () => ({
      title: 'Investigate an endpoint',
      description: 'Find who called an endpoint, whether it is in any baseline, and whether it looks like exfiltration.',
      argsSchema: z.object({
        endpoint: z.string().describe('Domain, host:port, IP or CIDR to investigate, e.g. "webhook.site"'),
      }),
    })),
    ({ endpoint }) => ({
      description: `Investigate ${endpoint}`,
      messages: [
        {
          role: 'user',
          content: {
            type: 'text',
            text: `Investigate the endpoint "${endpoint}" in tenant "${tenant}" with the egress-triage tools:

1. Call check_ioc_in_baseline with indicator "${endpoint}": is it in any job's baseline (treated as normal), and how many detections does it have by status?
2. Call find_endpoint_calls_in_tenant with endpoint "${endpoint}" (page through next_cursor) to list every run that called it: owner, repo, workflow, job, run, process and its sha256, blocked or not.
3. For each owner involved call find_repos_using_endpoint to get the per-repo inventory.
4. Call list_detections with endpoint filters (exact host:port values from step 2) to get the detections and their dashboard_url links.
5. Assess: which processes called it (and with which parent chain), since when, from how many repos. Is it a known exfiltration or payload-staging destination? Does the timing match a dependency or workflow change?
6. Report your findings with one dashboard_url link per run or detection you mention. Do not create, update or delete any suppression rule during this investigation; if you think one is warranted, preview it and ask the user.`,
          },
        },
      ],
    }),
  );
}
