/**
 * The one owner of DNS-name validation and canonical form: every adapter reading a destination
 * name, and every command taking one (baseline expect), goes through normalizeDomain, so a name is
 * checked and spelt one way everywhere.
 */

const DOMAIN_RE = /^[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?$/;
const HAS_UPPER = /[A-Z]/;

/**
 * A last label that makes the name an IPv4 address to URL parsers and inet_aton: digits only (no
 * top-level domain is numeric, RFC 3696 section 2), or hexadecimal after 0x (the WHATWG URL
 * standard's "ends in a number": "45.61.136.0xe" and "0x2d.0x3d.0x88.0x0e" are 45.61.136.14).
 */
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$/;

/**
 * Domain → lower case, trailing dot stripped, checked for DNS-ish characters and label lengths.
 * Returns null when invalid. (An IP literal in a domain field is handled by the adapters' readHost.)
 * A name whose last label is numeric is no DNS name but an address written another way
 * ("203.0.113.007", which URL parsers read as 203.0.113.7; "203.0.113.0x7" likewise): kept as a
 * name, it would escape every check on IP ranges.
 */
export function normalizeDomain(s: string): string | null {
  let d = s;
  if (d.charCodeAt(d.length - 1) === 46) d = d.slice(0, -1);
  if (HAS_UPPER.test(d)) d = d.toLowerCase();
  if (!DOMAIN_RE.test(d) || d.indexOf('..') >= 0 || !labelsFit(d) || NUMERIC_LAST_LABEL.test(d)) return null;
  return d;
}

/** RFC 1035: every label of a DNS name is at most 63 octets (the whole name at most 253). */
function labelsFit(d: string): boolean {
  let start = 0;
  for (;;) {
    const dot = d.indexOf('.', start);
    const end = dot < 0 ? d.length : dot;
    if (end - start > 63) return false;
    if (dot < 0) return true;
    start = dot + 1;
  }
}
