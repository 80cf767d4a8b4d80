/**
 * The gateway's side of MCP 2026-07-28 multi-round-trip requests (MRTR).
 *
 * A 2026-07-28 call held for approval is answered with an `input_required` result asking the client
 * for the approval (an `elicitation/create` form); the client retries with a NEW request carrying the
 * answer in `inputResponses` and our `requestState`. That state comes back from the client, so it is
 * HMAC-sealed (the SDK's codec) and binds the exact tool, canonical arguments, identity, upstream, tenant,
 * policy and approval it was minted for, with its own expiry. When the upstream itself answers `input_required`,
 * its `requestState` travels inside ours (`up`), because a retry only carries one state and
 * `inputResponses` are per round: our verdict must survive the upstream's rounds.
 *
 * Every `requestState` reaching the gateway must be one it minted: it never passes one through
 * unverified, so a client cannot hand the upstream a state of its own making.
 */
import { createRequestStateCodec, type RequestStateCodec, type ServerContext } from '@modelcontextprotocol/server';
import { requestStateKey } from '../mcp/request-state.js';

/** The key of the gateway's question in `inputRequests` and of the answer in `inputResponses`. */
export const APPROVAL_INPUT_KEY = 'egress-triage/policy-approval';

export interface GatewayState {
  tool: string;
  /** the audit hash of the canonical arguments (keyed, so it says nothing about their values) */
  argsHash: string;
  identity: string;
  /**
   * the registered upstream the call was for (multi-upstream gateway): two upstreams may share a
   * policy file, so without it a state (an approval) won at one would be spent at the other
   */
  upstream?: string;
  /**
   * the tenant of the server that minted it (`mcp` / `serve`): tenants' servers may share the state
   * key and the policy state (one Redis), so without it an approval won in one tenant would be spent
   * by the same call in another
   */
  tenant?: string;
  /** hash of the policy in force when the state was minted: a reload invalidates it */
  policy: string;
  /**
   * the approval this state asks about, or the one filed approved for this retry of an approved call
   * (proxy.ts roundApproval): either is spent once
   */
  approvalId?: string;
  /** the upstream's own requestState, handed back to it on the retry */
  up?: string;
  /** expiry, ms since the epoch */
  exp: number;
}

/** What a state is bound to: one call (tool and arguments) of one identity, at one upstream, in one tenant. */
export type StateBinding = Pick<GatewayState, 'tool' | 'argsHash' | 'identity' | 'upstream' | 'tenant'>;

/** True when `s` was minted for the call `b` describes: every field of the binding, none left out. */
export function boundTo(s: GatewayState, b: StateBinding): boolean {
  return s.tool === b.tool && s.argsHash === b.argsHash && s.identity === b.identity && s.upstream === b.upstream && s.tenant === b.tenant;
}

/** Longest life of any state; each state carries its own (shorter) expiry on top. */
const MAX_TTL_SECONDS = 24 * 3600;

let codec: RequestStateCodec<GatewayState> | undefined;

function stateCodec(env: NodeJS.ProcessEnv = process.env): RequestStateCodec<GatewayState> {
  // Without the variable the key is random per process: right for stdio and one gateway process;
  // replicas must share it or a retry landing on another replica is refused (and asked again).
  codec ??= createRequestStateCodec<GatewayState>({ key: requestStateKey(env, 'approval state'), ttlSeconds: MAX_TTL_SECONDS });
  return codec;
}

export function mintState(s: GatewayState): Promise<string> {
  return stateCodec().mint(s);
}

/** The state we minted, still valid; undefined for anything forged, altered, malformed or expired. */
export async function openState(raw: unknown, now = Date.now()): Promise<GatewayState | undefined> {
  if (typeof raw !== 'string' || raw.length > 64 * 1024) return undefined;
  try {
    const s = await stateCodec().verify(raw, {} as ServerContext);
    return typeof s === 'object' && s !== null && typeof s.exp === 'number' && s.exp > now ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The approval form, the same in both revisions: the params of the `elicitation/create` pushed to a
 * 2025-11-25 client, and of the one inside a 2026-07-28 `input_required` result.
 */
export function approvalElicitation(message: string): Record<string, unknown> {
  return {
    mode: 'form',
    message,
    requestedSchema: {
      type: 'object',
      properties: {
        approve: { type: 'boolean', title: 'Approve this call', default: false },
        reason: { type: 'string', title: 'Reason (optional)' },
      },
      required: ['approve'],
    },
  };
}

/** The `input_required` result asking the client for the approval. */
export function approvalQuestion(message: string, requestState: string): Record<string, unknown> {
  return {
    resultType: 'input_required',
    inputRequests: { [APPROVAL_INPUT_KEY]: { method: 'elicitation/create', params: approvalElicitation(message) } },
    requestState,
  };
}

/** The client's answer to our question in a retry: approved, declined, or not answered. */
export function approvalAnswer(inputResponses: unknown): { answer: 'approve' | 'deny' | 'none'; reason?: string } {
  const r = isObj(inputResponses) ? inputResponses[APPROVAL_INPUT_KEY] : undefined;
  if (!isObj(r)) return { answer: 'none' };
  const content = isObj(r.content) ? r.content : {};
  const reason = typeof content.reason === 'string' ? content.reason : undefined;
  if (r.action === 'accept') return content.approve === true ? { answer: 'approve', reason } : { answer: 'deny', reason: reason ?? 'declined in the client' };
  if (r.action === 'decline') return { answer: 'deny', reason: reason ?? 'declined in the client' };
  return { answer: 'none' };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
