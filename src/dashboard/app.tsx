import type { IncomingMessage, ServerResponse } from 'node:http';
import { renderToString } from 'preact-render-to-string';
import type { VNode } from 'preact';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DASHBOARD_PERMISSIONS, sha256Hex, type DashboardPermission, type Grant } from '../http/grants.js';
import { BodyTooLarge, readBody } from '../http/mcp-listener.js';
import { loadAssets, readAsset, type Assets } from './assets.js';
import { clearedSessionCookie, parseCookies, SESSION_COOKIE, sessionCookie, themeCookie, themeOf, THEMES, type Theme } from './cookies.js';
import { checkCsrf, checkOrigin } from './csrf.js';
import { foreignRead } from './fetch-metadata.js';
import { SECURITY_HEADERS } from './security-headers.js';
import { installVisibleText } from './visible-text.js';
import { SessionStore, type Session } from './session.js';
import { OPEN_UNDER_POLICY, permissionNote, type PageContext } from './pages/context.js';
import { SignInPage } from './pages/signin.js';
import { MessagePage } from './pages/message.js';
import { ROUTES, type Reply, type Route } from './routes.js';
import type { DashboardStore, SignInRefusedHook } from './store.js';

/**
 * The web dashboard: server-rendered pages on the one HTTP layer (src/http/mcp-listener.ts, which has
 * already checked Host and Origin). It owns the browser side of security: sign-in with a grants token
 * into a server-side session (HttpOnly, SameSite=Strict cookie), the CSRF check on every non-GET, and
 * the security headers (CSP without inline script) on every response.
 */

export interface DashboardOptions {
  store: DashboardStore;
  tenant: string;
  /** the grants file's entries; none = open dashboard (only allowed on loopback, listen.ts) */
  grants: readonly Grant[];
  /**
   * A policy governs the agent's tool calls on this server (`serve --policy`): an open dashboard is
   * then read-only (OPEN_UNDER_POLICY in pages/context.ts).
   */
  underPolicy?: boolean;
  /** TLS is in front (--secure-cookies): cookies get Secure */
  secureCookies?: boolean;
  /** the client bundle (default: dist/web of this package) */
  assets?: Assets;
  sessions?: SessionStore;
  log?: (line: string) => void;
  /** paths that are not the dashboard's (e.g. /healthz of `serve`) */
  excludedPaths?: readonly string[];
  /** told of each refused sign-in (store.ts) */
  onSignInRefused?: SignInRefusedHook;
}

export interface Dashboard {
  claims(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void>;
}

/** Form bodies are small: a sign-in token, a rule's fields. */
const MAX_FORM_BYTES = 64 * 1024;
/** The identity of an open (loopback, no grants) dashboard. */
export const LOCAL_IDENTITY = 'local';

/**
 * A `next` after sign-in must be a path on this server, never another origin (`//evil`, `/\evil`).
 * It becomes a Location header, which Node refuses (a 500) for anything but visible ASCII: the
 * rest is percent-encoded, and what cannot be (a lone surrogate) sends to `/`.
 */
export function safeNext(next: string | null | undefined): string {
  if (!next || !/^\/(?![/\\])[^\s\\]*$/.test(next)) return '/';
  try {
    return next.replace(/[^\x21-\x7e]+/g, (s) => encodeURIComponent(s));
  } catch {
    return '/';
  }
}

export function createDashboard(o: DashboardOptions): Dashboard {
  // telemetry's invisible characters (bidi overrides, zero-width) are drawn by name on every page
  installVisibleText();
  const assets = o.assets ?? loadAssets();
  const sessions = o.sessions ?? new SessionStore();
  const secure = o.secureCookies ?? false;
  const open = o.grants.length === 0;
  const openLimit = open && o.underPolicy ? OPEN_UNDER_POLICY : null;
  const openPermissions: readonly DashboardPermission[] = openLimit ? ['read'] : DASHBOARD_PERMISSIONS;
  const byHash = new Map(o.grants.map((g) => [g.tokenSha256, g]));
  const excluded = new Set(o.excludedPaths ?? []);
  const log = o.log ?? (() => undefined);

  function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'cache-control': 'no-store', ...headers });
    res.end(body);
  }

  function sendPage(res: ServerResponse, status: number, page: VNode, headers: Record<string, string | string[]> = {}): void {
    send(res, status, 'text/html; charset=utf-8', `<!doctype html>${renderToString(page)}`, headers);
  }

  function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
    send(res, 303, 'text/plain; charset=utf-8', `See ${location}`, { location, ...headers });
  }

  function pageContext(s: Session, theme: Theme, path: string, location: string): PageContext {
    return { identity: s.identity, permissions: s.permissions, signedIn: !open, csrf: s.csrf, theme, path, location, assets: { script: assets.script, styles: assets.styles }, openLimit };
  }

  async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const text = await readBody(req, MAX_FORM_BYTES);
    return type === 'application/x-www-form-urlencoded' ? new URLSearchParams(text) : undefined;
  }

  function refused(req: IncomingMessage, status: 401 | 403, kind: string, message: string): void {
    try {
      o.onSignInRefused?.(req, { status, kind, message });
    } catch (e) {
      log(`sign-in refusal hook failed: ${(e as Error).message}`);
    }
  }

  async function signIn(req: IncomingMessage, res: ServerResponse, form: URLSearchParams | undefined): Promise<void> {
    const next = safeNext(form?.get('next'));
    // A browser always sends Origin on a POST: one that is not this dashboard's own (or none) is
    // refused, so no other page, not even one on another port of this host, can sign a visitor in to
    // an account of its choosing.
    const origin = checkOrigin(req);
    if (!origin.ok) {
      log(`dashboard sign-in refused: ${origin.message}`);
      // The listener refused a foreign Origin already (host-origin.ts): here it is missing, or not this
      // dashboard's own where --allowed-host admits more names. A fixed message: the Origin is the
      // request's own text, and anyone can send it.
      refused(req, 403, 'signin_origin', 'Forbidden: dashboard sign-in without an Origin, or from another origin');
      return sendPage(res, 403, <SignInPage d={{ styles: assets.styles, next, error: `Refused: ${origin.message}.` }} />);
    }
    const token = form?.get('token') ?? '';
    const grant = token ? byHash.get(sha256Hex(token)) : undefined;
    if (!grant) {
      log(`dashboard sign-in refused: ${token ? 'unknown' : 'no'} token`);
      if (token) refused(req, 401, 'signin_unknown_token', 'Unauthorized: dashboard sign-in with an unknown token');
      else refused(req, 401, 'signin_missing_token', 'Unauthorized: dashboard sign-in without a token');
      return sendPage(res, 401, <SignInPage d={{ styles: assets.styles, next, error: 'Unknown token: sign-in refused.' }} />);
    }
    if (grant.dashboard.length === 0) {
      return sendPage(res, 403, <SignInPage d={{ styles: assets.styles, next, error: `The token of "${grant.identity}" has no dashboard access (dashboard: [] in the grants file).` }} />);
    }
    const s = sessions.create(grant.identity, grant.dashboard);
    log(`dashboard sign-in: ${grant.identity}`);
    redirect(res, next, { 'set-cookie': sessionCookie(s.id, secure) });
  }

  function findRoute(method: string, pathname: string): { route?: Route; params: string[]; pathKnown: boolean; badEncoding?: true } {
    let pathKnown = false;
    for (const route of ROUTES) {
      const m = route.path.exec(pathname);
      if (!m) continue;
      pathKnown = true;
      if (route.method === method) {
        try {
          return { route, params: m.slice(1).map((p) => decodeURIComponent(p ?? '')), pathKnown };
        } catch {
          return { params: [], pathKnown, badEncoding: true };
        }
      }
    }
    return { params: [], pathKnown };
  }

  /**
   * A page that fails is the dashboard's own 500, with its security headers, not the listener's
   * JSON-RPC error for the MCP endpoint. The cause goes to the server log, never to the page.
   */
  async function handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    try {
      await answer(req, res, pathname);
    } catch (e) {
      log(`dashboard ${req.method ?? 'GET'} ${pathname} failed: ${(e as Error).stack ?? (e as Error).message}`);
      if (res.headersSent) return void res.destroy();
      send(res, 500, 'text/plain; charset=utf-8', 'Internal error: the dashboard could not answer this request; the server log says why.');
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');

    const assetFile = method === 'GET' ? assets.file(pathname) : undefined;
    if (assetFile) {
      const a = await readAsset(assetFile);
      return send(res, 200, a.type, a.body, { 'cache-control': 'public, max-age=31536000, immutable' });
    }

    if (foreignRead(method, req.headers)) {
      return send(res, 403, 'text/plain; charset=utf-8', 'Refused: another site may open a dashboard page as a top-level link, but not load it into its own page (Fetch Metadata).');
    }

    const cookies = parseCookies(req.headers.cookie);
    const theme = themeOf(cookies);
    let session = sessions.get(cookies.get(SESSION_COOKIE));
    const setCookies: string[] = [];
    if (!session && open) {
      // Open dashboard (loopback, no grants): every visitor gets a session anyway, for its CSRF token.
      session = sessions.create(LOCAL_IDENTITY, openPermissions);
      setCookies.push(sessionCookie(session.id, secure));
    }

    let form: URLSearchParams | undefined;
    if (method !== 'GET') {
      try {
        form = await readForm(req);
      } catch (e) {
        if (e instanceof BodyTooLarge) return send(res, 413, 'text/plain; charset=utf-8', `Request body too large: limit is ${MAX_FORM_BYTES} bytes`, { connection: 'close' });
        throw e;
      }
    }

    if (pathname === '/signin') {
      if (open) return redirect(res, '/', { 'set-cookie': setCookies });
      if (method === 'POST') return signIn(req, res, form);
      if (method === 'GET') return sendPage(res, 200, <SignInPage d={{ styles: assets.styles, next: safeNext(url.searchParams.get('next')) }} />);
      return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed', { allow: 'GET, POST' });
    }

    if (!session) {
      if (method === 'GET') return redirect(res, `/signin?next=${encodeURIComponent(safeNext(pathname + url.search))}`);
      return send(res, 401, 'text/plain; charset=utf-8', 'Unauthorized: sign in at /signin first');
    }
    const ctx = pageContext(session, theme, pathname, pathname + url.search);
    const headers: Record<string, string | string[]> = setCookies.length ? { 'set-cookie': setCookies } : {};

    if (method !== 'GET') {
      const csrf = checkCsrf(req, session.csrf, form);
      if (!csrf.ok) {
        log(`dashboard ${method} ${pathname} refused: ${csrf.message}`);
        return sendPage(
          res,
          403,
          <MessagePage ctx={ctx} title="Request refused">
            <p>Refused: {csrf.message}. Nothing was changed.</p>
          </MessagePage>,
          headers,
        );
      }
    }

    if (method === 'POST' && pathname === '/signout') {
      sessions.delete(session.id);
      return redirect(res, open ? '/' : '/signin', { 'set-cookie': clearedSessionCookie(secure) });
    }
    if (method === 'POST' && pathname === '/theme') {
      const t = form?.get('theme') ?? '';
      const chosen: Theme = (THEMES as readonly string[]).includes(t) ? (t as Theme) : 'auto';
      return redirect(res, safeNext(form?.get('return')), { 'set-cookie': [...setCookies, themeCookie(chosen, secure)] });
    }

    const { route, params, pathKnown, badEncoding } = findRoute(method, pathname);
    if (!route) {
      if (badEncoding) {
        return sendPage(
          res,
          400,
          <MessagePage ctx={ctx} title="Bad request">
            <p>The address is not valid percent-encoding: each % must start the UTF-8 bytes of a character, as two hex digits each.</p>
          </MessagePage>,
          headers,
        );
      }
      if (pathKnown) return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed', headers);
      return sendPage(
        res,
        404,
        <MessagePage ctx={ctx} title="Page not found">
          <p>There is no dashboard page at this address.</p>
        </MessagePage>,
        headers,
      );
    }
    const missing = ([] as DashboardPermission[]).concat(route.permission).filter((p) => !session.permissions.includes(p));
    if (missing.length) {
      return sendPage(
        res,
        403,
        <MessagePage ctx={ctx} title="Not allowed">
          <p>
            {permissionNote(ctx, `The grant of "${session.identity}" does not include the dashboard permission ${missing.map((p) => `"${p}"`).join(' and ')} this page needs.`)}
          </p>
        </MessagePage>,
        headers,
      );
    }
    const reply: Reply = await route.handle({ req, url, params, form, session, ctx, store: o.store, tenant: o.tenant });
    if (reply.kind === 'redirect') return redirect(res, reply.location, headers);
    if (reply.kind === 'raw') return send(res, reply.status, reply.contentType, reply.body, { ...headers, ...(reply.headers ?? {}) });
    if (reply.kind === 'stream') {
      res.writeHead(reply.status, { ...SECURITY_HEADERS, 'content-type': reply.contentType, 'cache-control': 'no-store', ...headers, ...(reply.headers ?? {}) });
      // a failure after the headers cannot become an error page: the response is cut short (pipeline
      // destroys it), so a client never takes a truncated export for a whole one
      return pipeline(Readable.from(reply.body), res).catch((e: unknown) => log(`dashboard ${pathname} stream failed: ${(e as Error).message}`));
    }
    return sendPage(res, reply.status, reply.page, headers);
  }

  return {
    claims: (pathname) => !excluded.has(pathname),
    handle,
  };
}
