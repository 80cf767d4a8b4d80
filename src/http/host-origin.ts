/**
 * DNS-rebinding defence shared by every HTTP listener (`serve`, the HTTP `gateway`).
 *
 * A web page on evil.example can make its own name resolve to 127.0.0.1 and then talk to a local server
 * "same-origin". The browser still sends `Host: evil.example[:port]` and, for scripted requests,
 * `Origin: http://evil.example`, so both must name a host this server answers to.
 *
 * Rules (pure; plain data in, a result out):
 * - `Host` is required and must be `name[:port]` or `[ipv6][:port]`; the name is compared after
 *   lower-casing and the URL parser's canonical form (`[0:0::1]` is `[::1]`). The port is not compared:
 *   a rebinding page cannot choose the name, only the port.
 * - A trailing dot is a different name (`localhost.` is refused unless listed).
 * - `Origin`, when present, must be an http(s) URL whose host name is allowed. `Origin: null`
 *   (sandboxed frames, file: pages) is refused: it says nothing about who is asking.
 */

export type HostOriginResult =
  | { ok: true }
  | { ok: false; status: 403; reason: 'missing_host' | 'invalid_host' | 'foreign_host' | 'invalid_origin' | 'foreign_origin'; message: string };

/** The names a loopback server always answers to. */
export const LOOPBACK_HOST_NAMES: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s/\\@?#[\]:]+)(?::\d{1,5})?$/;
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

/** Canonical host name of a Host header value (`name[:port]`, `[v6][:port]`), or null if malformed. */
export function hostHeaderName(value: string): string | null {
  if (!HOST_HEADER.test(value)) return null;
  try {
    return new URL(`http://${value}`).hostname;
  } catch {
    return null;
  }
}

/** As hostHeaderName, but also takes a bare IPv6 address (`::1`), as --listen and --allowed-host may. */
export function canonicalHostName(value: string): string | null {
  return hostHeaderName(bracketBareIpv6(value));
}

/**
 * The allowed host names: the loopback names, the address the server listens on (unless it is a
 * wildcard such as 0.0.0.0, which no client uses as a name) and the operator's extra names.
 * Throws on an extra name that is not a host name, saying which one.
 */
export function allowedHostNames(listenHost: string, extra: readonly string[] = []): Set<string> {
  const out = new Set(LOOPBACK_HOST_NAMES);
  if (!WILDCARDS.has(listenHost)) {
    const c = canonicalHostName(listenHost);
    if (c) out.add(c);
  }
  for (const e of extra) {
    const c = canonicalHostName(e);
    if (!c || /(?:\]|^[^[]*):\d+$/.test(bracketBareIpv6(e))) throw new Error(`--allowed-host "${e}": give a host name or IP address without a port`);
    out.add(c);
  }
  return out;
}

/** `::1` (as --listen or --allowed-host may give it) -> `[::1]`; anything else unchanged. */
function bracketBareIpv6(value: string): string {
  return !value.startsWith('[') && value.split(':').length > 2 ? `[${value}]` : value;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function checkHostOrigin(headers: { host?: string | string[]; origin?: string | string[] }, allowed: ReadonlySet<string>): HostOriginResult {
  const host = one(headers.host);
  if (host === undefined || host === '') return deny('missing_host', 'Forbidden: the request has no Host header');
  const name = hostHeaderName(host);
  if (name === null) return deny('invalid_host', 'Forbidden: the Host header is not a host name');
  if (!allowed.has(name)) return deny('foreign_host', `Forbidden: Host "${name}" is not one this server answers to (DNS-rebinding protection; see --allowed-host)`);
  const origin = one(headers.origin);
  if (origin === undefined) return { ok: true };
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return deny('invalid_origin', 'Forbidden: the Origin header is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return deny('invalid_origin', 'Forbidden: the Origin header is not an http(s) origin');
  if (!allowed.has(url.hostname)) return deny('foreign_origin', `Forbidden: Origin "${url.hostname}" is not allowed (DNS-rebinding protection; see --allowed-host)`);
  return { ok: true };
}

/**
 * Whether `origin` is the very server a browser addressed with `host`: the same host name and port.
 * The DNS-rebinding check (checkHostOrigin) compares names only, so a page served from another port
 * of an allowed host (a dev server on localhost:3000) passes it; a browser form post it makes still
 * carries its own origin, which this tells apart from the dashboard's. The scheme is not compared:
 * behind a TLS-terminating proxy the server is reached over http while the browser's origin is https,
 * and one port serves one scheme. A Host without a port means the default port of the browser's
 * scheme, as Origin omits it too. Malformed values are never the same origin.
 */
export function originIsHost(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || host === undefined) return false;
  let o: URL;
  let h: URL;
  try {
    o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    if (hostHeaderName(host) === null) return false;
    h = new URL(`${o.protocol}//${host}`);
  } catch {
    return false;
  }
  // URL drops a port that is the scheme's default, from both alike
  return o.hostname === h.hostname && o.port === h.port;
}

function deny(reason: Exclude<HostOriginResult, { ok: true }>['reason'], message: string): HostOriginResult {
  return { ok: false, status: 403, reason, message };
}
