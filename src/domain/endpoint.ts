import { canonicalIp, isIp } from './ip.js';
import { normalizeDomain } from './dns-name.js';

/**
 * `domain:port` when there is a domain, else `ip:port` (IPv6 in brackets). The IP is put in its
 * canonical form here too, so no spelling of an address can make a second key.
 */
export function endpointOf(domain: string | undefined, ip: string | undefined, port: number): string {
  if (domain) return `${domain.toLowerCase()}:${port}`;
  const c = ip === undefined ? ip : (canonicalIp(ip) ?? ip);
  if (c && c.includes(':')) return `[${c}]:${port}`;
  return `${c}:${port}`;
}

export function isValidIp(value: string): boolean {
  return isIp(value);
}

/** Splits "host:port" / "[v6]:port" / "host" into parts. Port is null when absent. */
export function splitEndpoint(endpoint: string): { host: string; port: number | null } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(endpoint);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : null };
  const idx = endpoint.lastIndexOf(':');
  if (idx > 0 && /^\d+$/.test(endpoint.slice(idx + 1)) && endpoint.indexOf(':') === idx) {
    return { host: endpoint.slice(0, idx), port: Number(endpoint.slice(idx + 1)) };
  }
  return { host: endpoint, port: null };
}

export function isIpLiteral(host: string): boolean {
  return isIp(host);
}

/** Harden-Runner ports look like "443" or "443(https)". */
export function parsePortString(value: unknown): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= 65535 ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d{1,5})\s*(?:\([^)]*\))?\s*$/.exec(value);
  if (!m) return null;
  const n = Number(m[1]);
  return n <= 65535 ? n : null;
}

/**
 * The canonical text of one exact endpoint given by a person (`baseline expect`): a DNS name in its
 * canonical form (lower case, no trailing dot) or a canonical IP, and a port 1-65535 written
 * plainly, as the store keys calls. Null for anything else: a pattern, a port out of range, a name
 * that is no DNS name. An endpoint kept as typed would never match a stored call, and would still
 * report success.
 */
export function canonicalEndpoint(text: string): string | null {
  const m = /^(?:\[([^\]]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  if (m[1] !== undefined) {
    const ip = canonicalIp(m[1]);
    return ip === null ? null : endpointOf(undefined, ip, port);
  }
  const host = m[2]!;
  const ip = canonicalIp(host);
  if (ip !== null) return endpointOf(undefined, ip, port);
  const name = normalizeDomain(host);
  return name === null ? null : endpointOf(name, undefined, port);
}
