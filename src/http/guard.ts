import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkHostOrigin } from './host-origin.js';
import { authenticate, type Grant } from './grants.js';

/** What every request must pass before any route runs, in `serve` and in the HTTP `gateway` alike. */
export interface RequestGuard {
  /** host names from allowedHostNames() */
  allowedHosts: ReadonlySet<string>;
  /** grants keyed by token hash (indexGrants); empty means no authentication (loopback only) */
  grants: ReadonlyMap<string, Grant>;
}

export type GuardResult =
  | { ok: true; grant?: Grant }
  | {
      ok: false;
      status: 401 | 403;
      /** why, from a fixed list (the message may quote the request's own Host or Origin) */
      kind: 'missing_token' | 'unknown_token' | HostOriginRefusal['reason'];
      message: string;
      headers: Record<string, string>;
    };

export type HostOriginRefusal = Extract<ReturnType<typeof checkHostOrigin>, { ok: false }>;

/** Host/Origin first (a rebinding page is refused before its token is even looked at), then the bearer token. */
export function guardRequest(req: Pick<IncomingMessage, 'headers'>, g: RequestGuard): GuardResult {
  const ho = checkHostOrigin(req.headers, g.allowedHosts);
  if (!ho.ok) return hostOriginRefusal(ho);
  const auth = authenticate(req.headers.authorization, g.grants);
  switch (auth.kind) {
    case 'open':
      return { ok: true };
    case 'granted':
      return { ok: true, grant: auth.grant };
    case 'denied':
      return { ok: false, status: 401, kind: auth.token ? 'unknown_token' : 'missing_token', message: `Unauthorized: ${auth.message}`, headers: { 'www-authenticate': 'Bearer' } };
  }
}

/** A failed Host/Origin check as a refusal: the one shape every route (MCP, dashboard) answers and audits. */
export function hostOriginRefusal(ho: HostOriginRefusal): Extract<GuardResult, { ok: false }> {
  return { ok: false, status: ho.status, kind: ho.reason, message: ho.message, headers: {} };
}

/** Writes a refused request as a JSON-RPC error body (id null), the shape MCP clients expect. */
export function writeRefusal(res: ServerResponse, r: Extract<GuardResult, { ok: false }>): void {
  res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: r.message } }));
}
