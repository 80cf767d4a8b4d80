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
  | { ok: false; status: 401 | 403; message: string; headers: Record<string, string> };

/** Host/Origin first (a rebinding page is refused before its token is even looked at), then the bearer token. */
export function guardRequest(req: Pick<IncomingMessage, 'headers'>, g: RequestGuard): GuardResult {
  const ho = checkHostOrigin(req.headers, g.allowedHosts);
  if (!ho.ok) return { ok: false, status: ho.status, message: ho.message, headers: {} };
  const auth = authenticate(req.headers.authorization, g.grants);
  switch (auth.kind) {
    case 'open':
      return { ok: true };
    case 'granted':
      return { ok: true, grant: auth.grant };
    case 'denied':
      return { ok: false, status: 401, message: `Unauthorized: ${auth.message}`, headers: { 'www-authenticate': 'Bearer' } };
  }
}

/** Writes a refused request as a JSON-RPC error body (id null), the shape MCP clients expect. */
export function writeRefusal(res: ServerResponse, r: Extract<GuardResult, { ok: false }>): void {
  res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: r.message } }));
}
