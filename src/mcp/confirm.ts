import { CLIENT_CAPABILITIES_META_KEY, inputRequired, inputResponse, type InputRequiredResult } from '@modelcontextprotocol/server';
import type { ToolContext, ToolExtra } from './context.js';
import { argsDigest, confirmStateCodec, sameConfirmState, type ConfirmState } from './request-state.js';

export type ConfirmOutcome =
  | { kind: 'confirmed'; via: 'elicitation' }
  | { kind: 'not-asked' }
  | { kind: 'declined'; message: string }
  /** return `result` from the tool: the client asks the user and calls again with the answer */
  | { kind: 'ask'; result: InputRequiredResult };

/** The key of our one question in `inputRequests` / `inputResponses`. */
const CONFIRM_KEY = 'confirm';

const CONFIRM_SCHEMA = {
  type: 'object' as const,
  properties: {
    confirm: {
      type: 'boolean' as const,
      title: 'Apply this change',
      description: 'Tick to apply the change described above; leave unticked or decline to change nothing.',
    },
  },
  required: ['confirm'],
};

/**
 * True when the client declared the elicitation capability (form mode). A 2026-07-28 client declares
 * it on every request (`_meta` envelope); a 2025-11-25 client once, at initialize. Asking a client that
 * cannot answer would be a protocol error (-32021), not a "no".
 */
export function clientSupportsElicitation(ctx: ToolContext, extra?: ToolExtra): boolean {
  const envelope = extra?.mcpReq.envelope as Record<string, unknown> | undefined;
  const caps = (envelope?.[CLIENT_CAPABILITIES_META_KEY] as { elicitation?: unknown } | undefined) ?? ctx.server.server.getClientCapabilities();
  const el = caps?.elicitation as { form?: unknown; url?: unknown } | undefined;
  if (!el) return false;
  // An empty object means form mode (backwards compatibility); a URL-only client cannot show a form.
  return el.form !== undefined || el.url === undefined;
}

/**
 * Asks the human through MCP elicitation when the client supports it, written once for both protocol
 * revisions: the tool returns the `ask` result; on 2026-07-28 the client answers and retries the call,
 * on 2025-11-25 the SDK sends a real elicitation/create on the call's own stream and calls the tool
 * again. The retry's answer only counts together with the signed state of the question, which binds
 * the tool, its arguments and the identity (request-state.ts). Decline, cancel, a false answer, a
 * timeout or a transport error all count as "no": the caller must then change nothing.
 */
export async function confirmWithUser(
  ctx: ToolContext,
  extra: ToolExtra,
  message: string,
  about: { tool: string; args: unknown },
): Promise<ConfirmOutcome> {
  if (!clientSupportsElicitation(ctx, extra)) return { kind: 'not-asked' };
  const expected: ConfirmState = { tool: about.tool, args: argsDigest(about.args), actor: ctx.actor, tenant: ctx.tenant };
  const answer = inputResponse(extra.mcpReq.inputResponses, CONFIRM_KEY);
  const state = extra.mcpReq.requestState<ConfirmState>();
  if (answer.kind === 'missing' || !sameConfirmState(state, expected)) {
    return {
      kind: 'ask',
      result: inputRequired({
        inputRequests: { [CONFIRM_KEY]: inputRequired.elicit({ mode: 'form', message, requestedSchema: CONFIRM_SCHEMA }) },
        requestState: await confirmStateCodec().mint(expected),
      }),
    };
  }
  if (answer.kind !== 'elicit') return { kind: 'declined', message: 'The confirmation dialog returned no answer.' };
  if (answer.action === 'accept' && answer.content?.confirm === true) return { kind: 'confirmed', via: 'elicitation' };
  if (answer.action === 'accept') return { kind: 'declined', message: 'The user did not tick "Apply this change" in the confirmation dialog.' };
  return { kind: 'declined', message: `The user ${answer.action === 'decline' ? 'declined' : 'cancelled'} the confirmation dialog.` };
}
