import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/server';
import { definition, type ToolPolicyView } from './context.js';
import { ANALYZE_TOOL as ANALYZE, CREATE_TOOL as CREATE, PREVIEW_TOOL as PREVIEW, fitParts, mention } from './mentions.js';

/**
 * One step of a prompt's plan: its text, and the tools it tells the agent to call. Under a policy
 * (`mcp|serve --policy`) a step whose tool the policy hides or denies outright is left out, or
 * replaced by `instead`, which names no tool: a prompt must neither reveal a hidden tool's name nor
 * send the agent to a call that can only be refused.
 */
interface Step {
  text: string;
  tools: readonly string[];
  instead?: string;
}

/** The plan's text: usable steps numbered 1..n, each policy-asked when the prompt is got (a reload applies). */
export function planText(steps: readonly Step[], policy: ToolPolicyView | undefined): string {
  const lines = fitParts(steps.map((s) => mention(s.tools, s.text, s.instead)), policy);
  return lines.map((line, i) => `${i + 1}. ${line}`).join('\n');
}


function triageSteps(owner: string | undefined): Step[] {
  const forOwner = owner ? ` with owner "${owner}"` : '';
  return [
    { tools: [ANALYZE], text: `Call ${ANALYZE}${forOwner}. If next_cursor is non-null, fetch the remaining pages.`, instead: 'The analysis is not available to you under the policy in force: tell the user, and stop.' },
    { tools: [ANALYZE], text: 'Summarise the processes in a table: process, count, distinct endpoints, distinct direct IPs, VPN candidate, impostor suspected. Include the dashboard_url of at least one sample detection per process as a link.' },
    { tools: [ANALYZE], text: 'For each process with is_vpn_process_candidate = true AND name_impersonation_suspected = false AND suggested_rule.blocked_reason = null: treat the VPN verdict as evidence, not proof. Check vpn_evidence (supporting / contradicting), binaries (sha256, genuine) and parents, and say what convinced you.' },
    {
      tools: [ANALYZE, PREVIEW],
      text: `For each such genuine VPN daemon call ${PREVIEW} with suggested_rule.detection_id and suggested_rule.conditions. Show the user the exact impact: would_suppress, by_process, by_repo, warnings and sample dashboard_url links.`,
      instead: "For each such genuine VPN daemon show the user the suggested rule's impact as the analysis gives it (suggested_rule.impact) and its sample dashboard_url links.",
    },
    {
      tools: [ANALYZE, CREATE],
      text: `Ask the user to approve each rule separately. Only after an explicit "yes" call ${CREATE} with the same conditions, a clear name, a description of the evidence, and confirm: true. Report how many detections it suppressed.`,
      instead: 'You cannot create rules under the policy in force: for each rule the user approves, give them its detection_id and conditions, so that a person can create it (`egress-triage rules create`).',
    },
    { tools: [ANALYZE], text: 'Never create or propose a rule that covers risky destinations (gist.githubusercontent.com, webhook.site, oast / ngrok / trycloudflare tunnels, pastebin, ...). If a process has name_impersonation_suspected = true, a non-null blocked_reason, or risky destinations: do NOT suppress it; flag it to the user as a possible compromise with its dashboard links and the evidence.' },
    { tools: [ANALYZE], text: 'For non-VPN processes (curl, node, dockerd, ...) do not propose process-wide rules; list their destinations for per-destination review.' },
    { tools: [ANALYZE], text: `Finally re-run ${ANALYZE} and report what is left.` },
  ];
}

function investigateSteps(endpoint: string): Step[] {
  return [
    { tools: ['check_ioc_in_baseline'], text: `Call check_ioc_in_baseline with indicator "${endpoint}": is it in any job's baseline (treated as normal), and how many detections does it have by status?` },
    { tools: ['find_endpoint_calls_in_tenant'], text: `Call find_endpoint_calls_in_tenant with endpoint "${endpoint}" (page through next_cursor) to list every run that called it: owner, repo, workflow, job, run, process and its sha256, blocked or not.` },
    { tools: ['find_repos_using_endpoint'], text: 'For each owner involved call find_repos_using_endpoint to get the per-repo inventory.' },
    { tools: ['list_detections'], text: 'Call list_detections with endpoint filters (exact host:port values found above) to get the detections and their dashboard_url links.' },
    { tools: [], text: 'Assess: which processes called it (and with which parent chain), since when, from how many repos. Is it a known exfiltration or payload-staging destination? Does the timing match a dependency or workflow change?' },
    { tools: [], text: 'Report your findings with one dashboard_url link per run or detection you mention. Do not create, update or delete any suppression rule during this investigation; if you think one is warranted, tell the user which and why.' },
  ];
}

/** Prompts: reusable, step-by-step plans for the two common jobs, fitted to the policy in force. */
export function registerPrompts(server: McpServer, tenant: string, toolPolicy?: () => ToolPolicyView): void {
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

${planText(triageSteps(owner), toolPolicy?.())}`,
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

${planText(investigateSteps(endpoint), toolPolicy?.())}`,
          },
        },
      ],
    }),
  );
}
