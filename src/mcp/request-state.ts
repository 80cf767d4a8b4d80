import { createHash, randomBytes } from 'node:crypto';
import { createRequestStateCodec, type RequestStateCodec } from '@modelcontextprotocol/server';
import { canonicalJson } from '../policy/canonical.js';

/**
 * The signed `requestState` of a confirmation round (MCP 2026-07-28 multi-round-trip requests).
 *
 * On 2026-07-28 a tool that needs the user's confirmation answers "input required" and the client
 * retries the call with the answer. The retry is a new request: `requestState` is the only thing that
 * links it to the question, and it comes back from the client, so it is HMAC-sealed (the SDK's codec)
 * and binds the exact tool, arguments and identity the question was about. An answer that arrives
 * without a state we minted for this very call is never taken as a confirmation.
 */
export interface ConfirmState {
  tool: string;
  /** sha256 of the canonical JSON of the parsed arguments */
  args: string;
  /** the rule-audit actor (`mcp` or `mcp:<identity>`) */
  actor: string;
  /**
   * The tenant of the server that asked: replicas of several tenants may share one key
   * (EGRESS_TRIAGE_REQUEST_STATE_KEY), and a confirmation given in one is never one in another.
   */
  tenant: string;
}

/** Environment variable holding the HMAC key (at least 32 bytes) that every replica behind one URL must share. */
export const REQUEST_STATE_KEY_ENV = 'EGRESS_TRIAGE_REQUEST_STATE_KEY';

/** Ten minutes: as long as a human gets to answer a confirmation dialog. */
export const CONFIRM_TTL_SECONDS = 600;

let codec: RequestStateCodec<ConfirmState> | undefined;

/**
 * One codec per process. Without the environment variable the key is random, which is right for one
 * process (stdio, or one `serve`); replicas behind a load balancer must share a key, or a retry that
 * lands on another replica is refused (-32602) and the client asks again.
 */
export function confirmStateCodec(env: NodeJS.ProcessEnv = process.env): RequestStateCodec<ConfirmState> {
  codec ??= createRequestStateCodec<ConfirmState>({ key: requestStateKey(env, 'confirmation state'), ttlSeconds: CONFIRM_TTL_SECONDS });
  return codec;
}

/**
 * The HMAC key of a request-state codec: $EGRESS_TRIAGE_REQUEST_STATE_KEY (at least 32 bytes), or
 * without it a random key for this process. `what` names the state it signs, for the error.
 */
export function requestStateKey(env: NodeJS.ProcessEnv, what: string): string | Buffer {
  const configured = env[REQUEST_STATE_KEY_ENV];
  if (configured !== undefined && configured !== '' && Buffer.byteLength(configured) < 32) {
    throw new Error(`${REQUEST_STATE_KEY_ENV}: the key must be at least 32 bytes long (it signs ${what}; every replica behind one URL needs the same one)`);
  }
  return configured || randomBytes(32);
}

export function argsDigest(args: unknown): string {
  return createHash('sha256').update(canonicalJson(args ?? {})).digest('hex');
}

export function sameConfirmState(a: ConfirmState | undefined, b: ConfirmState): boolean {
  return a !== undefined && a.tool === b.tool && a.args === b.args && a.actor === b.actor && a.tenant === b.tenant;
}
