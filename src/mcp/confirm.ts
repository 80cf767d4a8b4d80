import { ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { ToolContext, ToolExtra } from './context.js';

export type ConfirmOutcome =
  | { kind: 'confirmed'; via: 'elicitation' }
  | { kind: 'not-asked' }
  | { kind: 'declined'; message: string };

/** True when the connected client declared the elicitation capability (form mode). */
export function clientSupportsElicitation(ctx: ToolContext): boolean {
  const caps = ctx.server.server.getClientCapabilities();
  const el = caps?.elicitation as { form?: unknown; url?: unknown } | undefined;
  if (!el) return false;
  // An empty object means form mode (backwards compatibility); a URL-only client cannot show a form.
  return el.form !== undefined || el.url === undefined;
}

/**
 * Asks the human through MCP elicitation when the client supports it. The request is sent on the
 * tool call's own stream (so it reaches the right HTTP session). Decline, cancel, a false answer, a
 * timeout or a transport error all count as "no": the caller must then change nothing.
 */
export async function confirmWithUser(ctx: ToolContext, extra: ToolExtra, message: string): Promise<ConfirmOutcome> {
  if (!clientSupportsElicitation(ctx)) return { kind: 'not-asked' };
  try {
    const res = await extra.sendRequest(
      {
        method: 'elicitation/create',
        params: {
          message,
          requestedSchema: {
            type: 'object',
            properties: {
              confirm: {
                type: 'boolean',
                title: 'Apply this change',
                description: 'Tick to apply the change described above; leave unticked or decline to change nothing.',
              },
            },
            required: ['confirm'],
          },
        },
      },
      ElicitResultSchema,
      { timeout: 10 * 60_000 },
    );
    if (res.action === 'accept' && res.content?.confirm === true) return { kind: 'confirmed', via: 'elicitation' };
    if (res.action === 'accept') return { kind: 'declined', message: 'The user did not tick "Apply this change" in the confirmation dialog.' };
    return { kind: 'declined', message: `The user ${res.action === 'decline' ? 'declined' : 'cancelled'} the confirmation dialog.` };
  } catch (e) {
    return { kind: 'declined', message: `The confirmation dialog failed or timed out (${(e as Error).message}).` };
  }
}
