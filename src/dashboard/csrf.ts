import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { originIsHost } from '../http/host-origin.js';

/**
 * CSRF defence for every non-GET dashboard request, two independent checks:
 * - Origin: a browser sends it on every POST; it must be present and be this server's own origin, port
 *   included (the HTTP layer's Host/Origin guard compares host names only, so a page on another port
 *   of the same host gets past it);
 * - the session's synchronizer token, in the `_csrf` form field or the `X-CSRF-Token` header (fetch).
 * SameSite=Strict on the session cookie is a third layer, not relied on.
 */

export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

export function sameToken(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token a request carries: the header (fetch) or the form field. */
export function requestToken(req: IncomingMessage, form: URLSearchParams | undefined): string | undefined {
  const h = req.headers[CSRF_HEADER];
  const header = Array.isArray(h) ? h[0] : h;
  return header ?? form?.get(CSRF_FIELD) ?? undefined;
}

export type CsrfVerdict = { ok: true } | { ok: false; message: string };

/**
 * The Origin half, also the whole check of the sign-in post (no session, so no token yet): a page on
 * another port of this host could otherwise sign a visitor in to an account of its choosing.
 */
export function checkOrigin(req: IncomingMessage): CsrfVerdict {
  const origin = req.headers.origin;
  if (origin === undefined) return { ok: false, message: 'the request has no Origin header' };
  if (!originIsHost(origin, req.headers.host)) {
    return { ok: false, message: `the request comes from ${JSON.stringify(origin)}, not from this dashboard (${JSON.stringify(req.headers.host ?? '')})` };
  }
  return { ok: true };
}

export function checkCsrf(req: IncomingMessage, expected: string, form: URLSearchParams | undefined): CsrfVerdict {
  const origin = checkOrigin(req);
  if (!origin.ok) return origin;
  if (!sameToken(expected, requestToken(req, form))) return { ok: false, message: 'the CSRF token is missing or wrong; reload the page and try again' };
  return { ok: true };
}
