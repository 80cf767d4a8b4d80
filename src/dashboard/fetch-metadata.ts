import type { IncomingHttpHeaders } from 'node:http';

/**
 * Fetch Metadata resource isolation for reads: a GET another site's page made, other than a
 * top-level navigation, is refused. A dashboard_url in a chat message or a ticket still opens its
 * page; an `<img>`, a `fetch` or a frame from another site does not reach a route. Posts are left
 * to the Origin and CSRF checks, which refuse every foreign one and say why (csrf.ts).
 *
 * An open dashboard (loopback, no grants) has no cookie a browser would withhold from another
 * site, so without this any web page the operator visits could start full-tenant CSV exports and
 * analyses at will (it cannot read them, but each costs seconds of CPU; found by review). With
 * grants, the SameSite=Strict session cookie already stays home. Requests without the headers
 * (older browsers, curl) pass here.
 */
export function foreignRead(method: string, h: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const site = h['sec-fetch-site'];
  if (site === undefined || site === 'same-origin' || site === 'none') return false;
  // same-site is foreign too: another port of 127.0.0.1 is another program
  return !(h['sec-fetch-mode'] === 'navigate' && h['sec-fetch-dest'] === 'document');
}
