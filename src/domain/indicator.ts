import { canonicalIp, parseIpRange, type IpRange } from './ip.js';
import { globMatcher, isGlob } from './glob.js';

/**
 * Indicators of compromise as a person or an agent types them ("webhook.site", "45.61.136.14",
 * "100.64.0.0/10", "*.oast.fun", "ngrok"): the one place that decides what each one matches, so
 * every store answers an IOC lookup the same way.
 */

/** A malformed indicator or paging cursor of an inventory query; the message says what to pass. */
export class InventoryError extends Error {
  override name = 'InventoryError';
}

/** How an indicator is matched against stored endpoints. */
export type IndicatorKind = 'ip' | 'cidr' | 'domain' | 'endpoint' | 'glob' | 'substring';

/** An endpoint as the stores keep it: `host:port`, its canonical host, and whether that host is an IP. */
export interface IndicatorEndpoint {
  endpoint: string;
  host: string;
  isIp: boolean;
}

export interface Indicator {
  kind: IndicatorKind;
  /** the indicator normalised (trimmed, lower case, canonical IP) */
  norm: string;
  test: (e: IndicatorEndpoint) => boolean;
  /**
   * IP and CIDR indicators: whether a call's address (canonical) matches. A call to a domain went to
   * an address too, and an IOC check by address must find it there, not only in direct-IP endpoints.
   */
  ip?: (address: string) => boolean;
}

function parseCidr(value: string): IpRange {
  const range = parseIpRange(value);
  if (!range) {
    throw new InventoryError(`malformed CIDR "${value}": use an address and prefix length such as 100.64.0.0/10 or 2001:db8::/32`);
  }
  return range;
}

/** Classifies an indicator and returns its predicate over stored endpoints. */
export function classifyIndicator(raw: string): Indicator {
  const v = raw.trim().toLowerCase();
  if (v === '') throw new InventoryError('empty indicator: pass a domain, IP, CIDR, host:port or a substring');
  if (v.length > 253 + 8) throw new InventoryError('indicator too long: pass at most 261 characters');
  // no stored endpoint holds one, and PostgreSQL refuses it in a query (an internal error, found by review)
  if (v.includes('\u0000')) throw new InventoryError('the indicator holds a NUL character (U+0000), which no endpoint holds');
  if (v.includes('/')) {
    const range = parseCidr(v);
    return { kind: 'cidr', norm: v, test: (e) => e.isIp && range.contains(e.host), ip: (a) => range.contains(a) };
  }
  const canon = canonicalIp(v);
  if (canon !== null) {
    // stored hosts are canonical (src/domain/ip.ts), so one comparison covers every spelling
    return { kind: 'ip', norm: canon, test: (e) => e.isIp && e.host === canon, ip: (a) => a === canon };
  }
  if (isGlob(v)) {
    const m = globMatcher(v);
    const hm = globMatcher(v.replace(/:\d+$/, ''));
    return { kind: 'glob', norm: v, test: (e) => m(e.endpoint) || hm(e.host) };
  }
  if (/^[a-z0-9.-]+:\d{1,5}$/.test(v) || /^\[[0-9a-f:.]+\]:\d{1,5}$/.test(v)) {
    return { kind: 'endpoint', norm: v, test: (e) => e.endpoint === v };
  }
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(v)) {
    // A domain covers itself and its subdomains, on any port.
    return { kind: 'domain', norm: v, test: (e) => !e.isIp && (e.host === v || e.host.endsWith(`.${v}`)) };
  }
  return { kind: 'substring', norm: v, test: (e) => e.endpoint.includes(v) };
}
