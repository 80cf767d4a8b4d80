import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * CSRF defence for every non-GET dashboard request, two independent checks:
 * - Origin: a browser sends it on every POST; it must be present and name this server (the Host/Origin
 *   guard of the HTTP layer already refused a foreign one; here a missing one is refused too);
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

export function checkCsrf(req: IncomingMessage, expected: string, form: URLSearchParams | undefined): CsrfVerdict {
  if (req.headers.origin === undefined) return { ok: false, message: 'the request has no Origin header' };
  if (!sameToken(expected, requestToken(req, form))) return { ok: false, message: 'the CSRF token is missing or wrong; reload the page and try again' };
  return { ok: true };
}
