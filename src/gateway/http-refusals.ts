/**
 * The HTTP gateway's refusals that no policy proxy decides: the listener's (src/http/mcp-listener.ts),
 * the gateway's own before a session's proxy (a batch, no or another identity's session, an id MCP
 * does not allow), and those the SDK's session transport answers itself (a wrong Content-Type or
 * Accept, an unsupported MCP-Protocol-Version, a body that is not a JSON-RPC message). docs/policy.md
 * promises a record for every refused request; src/gateway/http.ts and `serve --policy`
 * (src/mcp/http.ts) route each one to the session's proxy when the request names a live session of its
 * identity, and to appendRefusal otherwise, under the session refusalSession names.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashArgs } from '../policy/canonical.js';
import type { PolicyStateBackend } from '../storage/policy-state.js';
import { isValidId } from './json-lines.js';
import { claimedEra, INVALID_ID_MESSAGE } from './methods.js';
import { refusalSubject } from './refusal.js';
import { GuardRefusalTally } from '../http/guard-refusals.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Why a request is refused for its id, or undefined. JSON-RPC counts `"id": null` as a request and MCP
 * forbids it; a fraction or a number past 2^53 would come back as another id. The proxy refuses these
 * too, but with id null, which an HTTP session cannot route back to the request's POST: the gateway
 * answers them on their own POST before the session sees them.
 */
export function invalidIdReason(body: unknown): string | undefined {
  if (!isObj(body) || typeof body.method !== 'string' || !('id' in body) || isValidId(body.id)) return undefined;
  return INVALID_ID_MESSAGE;
}

/**
 * Calls `refused` with the error message of this response when it is an HTTP error (400 and up), just
 * before it ends: for POSTs handed to the SDK's session transport, which refuses some requests itself
 * and never hands them on. Its error bodies are small JSON; the first 4 KiB are kept to read the
 * message from. When `refused` returns a promise (its audit record still being written), the answer
 * is held until it settles, as every other refusal waits for its record: its writes too, not only its
 * end, since the SDK's adapter writes the whole body (with its Content-Length) before it ends, and a
 * client has its answer then. Anything else passes untouched.
 */
export function onErrorAnswer(res: ServerResponse, refused: (message: string) => Promise<void> | void): void {
  const kept: Buffer[] = [];
  let size = 0;
  const keep = (chunk: unknown) => {
    if (res.statusCode < 400 || size >= 4096 || !(typeof chunk === 'string' || chunk instanceof Uint8Array)) return;
    const b = Buffer.from(chunk);
    kept.push(b);
    size += b.length;
  };
  const write = res.write.bind(res) as (...a: unknown[]) => boolean;
  const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
  /** an error answer's writes, held until its record is written (the headers go out with the first) */
  const held: unknown[][] = [];
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    keep(chunk);
    if (res.statusCode < 400) return write(chunk, ...rest);
    held.push([chunk, ...rest]);
    return true;
  }) as ServerResponse['write'];
  res.end = ((...args: unknown[]) => {
    keep(args[0]);
    if (res.statusCode < 400) return end(...args);
    const send = () => {
      for (const w of held) write(...w);
      return end(...args);
    };
    afterRecord(refused(errorMessage(Buffer.concat(kept).toString('utf8'), res.statusCode)), send);
    return res;
  }) as ServerResponse['end'];
}

/**
 * Sends a refusal's answer once its audit record is written (`written` settles), at once when the
 * record was written synchronously: a client never holds a refusal the audit does not. A failed write
 * is already logged by whoever returned the promise, so the answer goes out either way.
 */
export function afterRecord(written: Promise<void> | void, send: () => unknown): void {
  if (written) void written.then(send, send);
  else send();
}

function errorMessage(text: string, status: number): string {
  try {
    const v: unknown = JSON.parse(text);
    const e = isObj(v) && isObj(v.error) ? v.error : undefined;
    if (typeof e?.message === 'string') return e.message;
  } catch {
    // not the JSON-RPC error shape
  }
  return `refused with HTTP ${status}`;
}

/**
 * The session a refusal outside any live session is recorded under: `modern:<identity>` when the
 * request claims 2026-07-28 (in its body or its MCP-Protocol-Version header), where the identity is
 * the session; `no-session` otherwise. Any claim other than 2025-11-25's silence counts as modern,
 * since only the 2026 revisions put a version in the body.
 */
export function refusalSession(req: Pick<IncomingMessage, 'headers'>, body: unknown, identity: string): string {
  const pv = req.headers['mcp-protocol-version'];
  const modern = claimedEra(body) !== 'legacy' || (typeof pv === 'string' && pv.startsWith('2026-'));
  return modern ? `modern:${identity}` : 'no-session';
}

/**
 * The `deny` record of a request refused outside any live session: by default rule `protocol`, never
 * forwarded. A request refused because the upstream could not be reached (the HTTP 502s: its revision
 * could not be asked, its child could not start) says so instead, as rule `upstream` with the outcome
 * `unreachable` that a forwarded call failing the same way gets.
 */
export function appendRefusal(
  state: PolicyStateBackend,
  r: {
    identity: string; session: string; body: unknown; reason: string; policyHash: string; upstreamName?: string; log: (line: string) => void;
    unreachable?: boolean;
  },
): Promise<void> | void {
  const method = isObj(r.body) && typeof r.body.method === 'string' ? r.body.method : undefined;
  const s = refusalSubject(r.body, method, r.reason);
  let argsHash = 'unhashable';
  try {
    argsHash = hashArgs(state.hashKey, s.args);
  } catch {
    // left as unhashable
  }
  try {
    const written = state.audit.append(
      {
        ts: new Date().toISOString(), session: r.session, identity: r.identity, tool: s.tool, args_hash: argsHash, decision: 'deny', rule: r.unreachable ? 'upstream' : 'protocol',
        reason: s.reason, latency_ms: 0, upstream: r.unreachable ? 'unreachable' : 'not_forwarded', policy_hash: r.policyHash.slice(0, 16), ...(r.upstreamName ? { upstreamName: r.upstreamName } : {}),
      },
      true,
    );
    // settles once the record is written (or its failure logged): the answer waits for it
    if (written) return Promise.resolve(written).catch((e: Error) => r.log(`audit failed: ${e.message}`));
  } catch (e) {
    r.log(`audit failed: ${(e as Error).message}`);
  }
}

/**
 * The audit side of the guard's refusals (src/http/guard-refusals.ts says why they are tallied): a
 * tally whose records go into `state`'s audit with decision `deny`, identity `unauthenticated`, the
 * session `remote:<address>`, tool `<unauthenticated>`, and rule `auth` (401) or `host_origin` (403).
 * A summary's reason says how many more came in its window. `stop` records what is still counted.
 */
export function auditGuardRefusals(
  state: PolicyStateBackend,
  o: { policyHash: () => string; log: (line: string) => void; windowMs?: number; now?: () => number },
): { note: (req: IncomingMessage, r: { status: 401 | 403; kind: string; message: string }) => void; stop: () => void } {
  const windowMs = o.windowMs ?? 60_000;
  const tally = new GuardRefusalTally(
    (r) => {
      const reason = r.first ? r.message : `${r.message} (${r.count} more from ${r.remote} in the ${Math.round(windowMs / 1000)} s after ${new Date(r.since).toISOString()})`;
      try {
        const written = state.audit.append(
          {
            ts: new Date(o.now?.() ?? Date.now()).toISOString(), session: `remote:${r.remote}`, identity: 'unauthenticated', tool: '<unauthenticated>', args_hash: hashArgs(state.hashKey, {}),
            decision: 'deny', rule: r.status === 401 ? 'auth' : 'host_origin', reason, latency_ms: 0, upstream: 'not_forwarded', policy_hash: o.policyHash().slice(0, 16),
          },
          true,
        );
        if (written) void Promise.resolve(written).catch((e: Error) => o.log(`audit failed: ${e.message}`));
      } catch (e) {
        o.log(`audit failed: ${(e as Error).message}`);
      }
    },
    { windowMs, now: o.now },
  );
  const timer = setInterval(() => tally.flush(), windowMs);
  timer.unref();
  return {
    note: (req, r) => tally.note({ remote: req.socket.remoteAddress ?? 'unknown', status: r.status, kind: r.kind, message: r.message }),
    stop: () => {
      clearInterval(timer);
      tally.flush(true);
    },
  };
}
