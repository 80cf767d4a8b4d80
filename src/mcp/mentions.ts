import { mayCall, type ToolContext, type ToolPolicyView } from './context.js';

/**
 * A piece of text that names other tools: a sentence of a tool's description, of an error, of the
 * capability catalog. Under a policy (`mcp|serve --policy`) no text may name a tool the policy hides
 * (tools/list leaves it out) or send the agent to one it denies outright, as the prompts and the
 * server instructions do not (mayCall): the piece then gives way to `otherwise`, or is left out.
 */
export interface Mention {
  tools: readonly string[];
  text: string;
  otherwise: string;
}

export type TextPart = string | Mention;

/** The tools whose names the servers' texts (descriptions, prompts, instructions, refusals) mention. */
export const ANALYZE_TOOL = 'analyze_anomalous_calls_by_process';
export const PREVIEW_TOOL = 'preview_suppression_rule';
export const CREATE_TOOL = 'create_suppression_rule';
export const WRITE_TOOLS = [CREATE_TOOL, 'update_suppression_rule', 'delete_suppression_rule'] as const;

export function mention(tools: string | readonly string[], text: string, otherwise = ''): Mention {
  return { tools: typeof tools === 'string' ? [tools] : tools, text, otherwise };
}

/** The parts as the agent may read them: each mention as itself when it may call every tool it names; empty parts left out. */
export function fitParts(parts: readonly TextPart[], policy: ToolPolicyView | undefined): string[] {
  const out: string[] = [];
  for (const p of parts) {
    const s = typeof p === 'string' ? p : p.tools.every((t) => mayCall(policy, t)) ? p.text : p.otherwise;
    if (s !== '') out.push(s);
  }
  return out;
}

/** fitParts joined by spaces: one text. */
export function fitText(parts: readonly TextPart[], policy: ToolPolicyView | undefined): string {
  return fitParts(parts, policy).join(' ');
}

/**
 * Makes a registered tool's description follow the policy in force. The definition the tool was
 * registered with is shared by every server of the process (context.ts, definition()) and carries
 * the text without a policy; under one, the description is fitted each time tools/list is answered,
 * so a hot reload that hides a tool also takes its name out of the other tools' descriptions (the
 * gateway then sends notifications/tools/list_changed). The SDK's tools/list reads the registered
 * tool's `description` at each request; test/mcp/tool-mentions.test.ts fails if an upgrade stops it.
 */
export function followPolicy(registered: { description?: string }, ctx: ToolContext, parts: readonly TextPart[]): void {
  const policy = ctx.toolPolicy;
  if (!policy) return;
  Object.defineProperty(registered, 'description', { get: () => fitText(parts, policy()), enumerable: true, configurable: true });
}
