import { canonicalIp, isIp } from './ip.js';

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
