/**
 * The one HTTP layer in front of every MCP endpoint (`serve` and the HTTP `gateway`).
 *
 * It owns everything that must be identical wherever MCP is served over HTTP: the node:http listener,
 * the guard (Host/Origin against DNS rebinding, then the bearer token), one body limit (413), one
 * JSON-RPC error shape, the media headers of every POST (src/http/media.ts: 406 and 415 on both
 * revisions), and the one decision whether a POST is 2025-11-25 (a session) or 2026-07-28
 * (stateless) with its standard headers checked against the body (src/http/classify.ts). What to do
 * with a classified request is the caller's: `serve` runs its own tools, the gateway enforces a policy
 * and forwards. It stays on node:http: the gateway's per-call path was tuned on it, and nothing here
 * needs a framework.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { indexGrants, type Grant } from './grants.js';
import { allowedHostNames, checkHostOrigin } from './host-origin.js';
import { guardRequest, hostOriginRefusal, writeRefusal, type GuardResult } from './guard.js';
import { isLoopbackAddress, listenDecision, ListenRefusedError } from './listen.js';
import { classifyPost, type PostRoute } from './classify.js';
import { mediaRefusal } from './media.js';

export type Id = string | number;

/** Writes a JSON-RPC error answer, the one shape every refusal of this layer has. */
export function writeRpcError(res: ServerResponse, status: number, code: number, message: string, id: Id | null = null, headers: Record<string, string> = {}, data?: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } }));
}

/** The id of a request body, to answer it with (null when there is none usable). */
export function requestId(body: unknown): Id | null {
  const id = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { id?: unknown }).id : undefined;
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : null;
}

export class BodyTooLarge extends Error {}

/** Reads a body up to `max` bytes; above it rejects with BodyTooLarge and stops reading. */
export function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > max) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (e) => {
      if (done) return;
      done = true;
      reject(e);
    });
  });
}

/** A POST on an MCP endpoint that passed the guard and was refused: `body` when it parsed. */
export interface PostRefusal {
  req: IncomingMessage;
  grant: Grant | undefined;
  endpoint: string;
  body?: unknown;
  message: string;
}

/** A request on an MCP endpoint that passed the guard, the body limit and (for POST) classification. */
export interface McpRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** the grant of the bearer token; undefined when serving without grants */
  grant: Grant | undefined;
  /** what `mcpPath` returned for this path (e.g. the upstream's name) */
  endpoint: string;
  method: 'POST' | 'GET' | 'DELETE';
  /** parsed POST body */
  body?: unknown;
  /** POST only: legacy or modern (never `reject`: those are answered here) */
  route?: Exclude<PostRoute, { kind: 'reject' }>;
}

export interface McpListenerOptions {
  host: string;
  port: number;
  grants: readonly Grant[];
  /** host names accepted in Host/Origin besides loopback names and the listen address */
  allowedHosts?: readonly string[];
  maxBodyBytes: number;
  /** maps a path to an MCP endpoint key, or undefined when the path is not an MCP endpoint */
  mcpPath: (pathname: string) => string | undefined;
  /** the path shown in the listening URL */
  displayPath: string;
  onMcp: (r: McpRequest) => Promise<void>;
  /**
   * A POST this layer refuses after the guard let it in: its body too large or not JSON, its media
   * headers wrong (src/http/media.ts), or refused by
   * classifyPost (a header that disagrees with the body, which routing on the header would have made a
   * policy bypass; a revision or version it cannot serve). Called before the answer is written, which
   * waits for the promise it returns: the gateway audits the refusal, as it does every request it
   * refuses (docs/policy.md), and its record is in before the client hears of it.
   */
  onRefused?: (r: PostRefusal) => Promise<void> | void;
  /**
   * A request the guard refused (401, or 403 for its Host or Origin), before its body is read: it
   * has no identity, so the server tallies these per address (guard-refusals.ts) into its audit.
   */
  onGuardRefused?: (req: IncomingMessage, r: Extract<GuardResult, { ok: false }>) => void;
  /**
   * Browser pages (the dashboard): paths it claims pass the Host/Origin check and then skip the bearer
   * token, because a browser signs in once and carries a session cookie that the dashboard checks
   * itself (src/dashboard/session.ts). Everything else on the listener still needs the bearer token.
   */
  browser?: { claims: (pathname: string) => boolean; handle: (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<void> };
  /** other routes behind the same guard (approvals API, health); return true when answered */
  routes?: (req: IncomingMessage, res: ServerResponse, grant: Grant | undefined, pathname: string) => boolean | Promise<boolean>;
  log: (line: string) => void;
}

export interface McpListener {
  readonly server: Server;
  listen(): Promise<string>;
  readonly url: string | null;
  close(): Promise<void>;
}

export function createMcpListener(o: McpListenerOptions): McpListener {
  const decision = listenDecision(o.host, o.grants.length);
  if (!decision.ok) throw new ListenRefusedError(decision.message);
  const guard = { allowedHosts: allowedHostNames(o.host, o.allowedHosts), grants: indexGrants(o.grants) };
  let url: string | null = null;

  function refuseUnguarded(req: IncomingMessage, res: ServerResponse, r: Extract<GuardResult, { ok: false }>): void {
    try {
      o.onGuardRefused?.(req, r);
    } catch (e) {
      o.log(`refusal hook failed: ${(e as Error).message}`);
    }
    writeRefusal(res, r);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    if (o.browser && o.mcpPath(pathname) === undefined && o.browser.claims(pathname)) {
      // Host/Origin (DNS rebinding) first, as for every route; the dashboard then checks its own session.
      const ho = checkHostOrigin(req.headers, guard.allowedHosts);
      if (!ho.ok) return refuseUnguarded(req, res, hostOriginRefusal(ho));
      delete req.headers.authorization;
      return o.browser.handle(req, res, pathname);
    }
    // Host/Origin (DNS rebinding) and bearer token, before any route.
    const verdict = guardRequest(req, guard);
    if (!verdict.ok) return refuseUnguarded(req, res, verdict);
    const grant = verdict.grant;
    // The agent's token stops here: no tool, route or upstream below ever sees it.
    delete req.headers.authorization;
    const endpoint = o.mcpPath(pathname);
    if (endpoint === undefined) {
      if (o.routes && (await o.routes(req, res, grant, pathname))) return;
      return writeRpcError(res, 404, -32000, `Not found: the MCP endpoint is ${o.displayPath}`);
    }
    const method = req.method ?? 'GET';
    if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
      return writeRpcError(res, 405, -32000, 'Method not allowed: use POST, GET or DELETE', null, { allow: 'POST, GET, DELETE' });
    }
    if (method !== 'POST') return o.onMcp({ req, res, grant, endpoint, method });
    const refused = async (message: string, body?: unknown) => {
      try {
        await o.onRefused?.({ req, grant, endpoint, body, message });
      } catch (e) {
        o.log(`refusal hook failed: ${(e as Error).message}`);
      }
    };
    let text: string;
    try {
      text = await readBody(req, o.maxBodyBytes);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        const message = `Request body too large: limit is ${o.maxBodyBytes} bytes`;
        await refused(message);
        return writeRpcError(res, 413, -32600, message, null, { connection: 'close' });
      }
      // The client went away mid-body: no request arrived to refuse.
      return writeRpcError(res, 400, -32700, 'Could not read the request body');
    }
    let body: unknown;
    let parsed = true;
    try {
      body = JSON.parse(text);
    } catch {
      parsed = false;
    }
    // The media headers are refused before the body's own faults, as the SDK's transport orders them; the
    // body is read first all the same, so the audit can say which tool the refused request named.
    const media = mediaRefusal(req.headers);
    if (media) {
      await refused(media.message, parsed ? body : undefined);
      return writeRpcError(res, media.status, -32000, media.message, parsed ? requestId(body) : null);
    }
    if (!parsed) {
      await refused('Parse error: the body is not valid JSON');
      return writeRpcError(res, 400, -32700, 'Parse error: the body is not valid JSON');
    }
    const route = classifyPost(req.headers, body);
    if (route.kind === 'reject') {
      await refused(route.message, body);
      return writeRpcError(res, route.status, route.code, route.message, requestId(body), {}, route.data);
    }
    return o.onMcp({ req, res, grant, endpoint, method, body, route });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      o.log(`request failed: ${e.stack ?? e.message}`);
      writeRpcError(res, 500, -32603, 'Internal error');
    });
  });
  server.keepAliveTimeout = 30_000;
  // A request Node cannot parse gets an answer, not a dropped connection: a link past the 16 KiB
  // header limit (a page's filter on a long stored name) showed the browser an empty reply.
  server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || e.code === 'ECONNRESET') return void socket.destroy();
    const [status, text] =
      e.code === 'HPE_HEADER_OVERFLOW'
        ? ['431 Request Header Fields Too Large', 'the request address and headers are longer than 16 KiB']
        : ['400 Bad Request', 'the request is not valid HTTP'];
    socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\nx-content-type-options: nosniff\r\nconnection: close\r\ncontent-length: ${text.length + 1}\r\n\r\n${text}\n`);
  });

  return {
    server,
    get url() {
      return url;
    },
    listen() {
      return new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, o.host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          const h = a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]` : a.address;
          url = `http://${h}:${a.port}${o.displayPath}`;
          if (!isLoopbackAddress(o.host)) o.log(`listening on ${o.host}, which is not loopback: every request needs a bearer token; put TLS in front, tokens travel in plain text`);
          resolve(url);
        });
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 500).unref();
      });
    },
  };
}
