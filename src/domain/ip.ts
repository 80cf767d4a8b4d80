/**
 * The one owner of IP canonicalisation. Every key built from an IP (endpoint, observation,
 * detection, baseline) uses the form returned here, so spellings of one address never look like
 * two destinations:
 * - IPv4: four decimal parts without leading zeros. Shorthands that ipaddr.js would also accept
 *   ("127.1", "0x7f.0.0.1", "3232235777") are refused: too ambiguous for telemetry.
 * - IPv6: RFC 5952 text (lower case, longest zero run compressed), so `2001:DB8:0:0::1`,
 *   `2001:db8::1` and `2001:0db8:0000:0000:0000:0000:0000:0001` are one address. A zone id is kept.
 * - IPv4-mapped IPv6 (`::ffff:140.82.112.9`) is the IPv4 address it maps.
 */
import ipaddr from 'ipaddr.js';

/** Canonical dotted-quad IPv4 (no leading zeros), checked without allocating (ingest hot path). */
export function isDottedQuad(s: string): boolean {
  const len = s.length;
  if (len < 7 || len > 15) return false;
  let parts = 0;
  let i = 0;
  while (i <= len) {
    let n = 0;
    let nd = 0;
    const start = i;
    while (i < len) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      n = n * 10 + c;
      nd++;
      i++;
    }
    if (nd === 0 || nd > 3 || n > 255 || (nd > 1 && s.charCodeAt(start) === 48)) return false;
    parts++;
    if (i === len) break;
    if (s.charCodeAt(i) !== 46 || parts === 4) return false;
    i++;
  }
  return parts === 4;
}

/** The canonical text of an IP address, or null when `s` is not one (see the module comment). */
export function canonicalIp(s: string): string | null {
  if (isDottedQuad(s)) return s;
  if (s.indexOf(':') < 0 || !ipaddr.IPv6.isValid(s)) return null;
  const a = ipaddr.IPv6.parse(s);
  if (a.isIPv4MappedAddress()) return a.toIPv4Address().toString();
  return a.toRFC5952String();
}

/**
 * The IPv4 address an IPv6 address carries to reach it through a translator or tunnel, or null. A
 * call to such an address reaches that IPv4 host, so a list of IPv4 ranges to watch must see it
 * (risky-destinations.ts). Read, in its last 32 bits unless said otherwise, from:
 * - NAT64's well-known prefix `64:ff9b::/96` (RFC 6052);
 * - NAT64's local-use prefix `64:ff9b:1::/48` (RFC 8215), taken as a /96 inside it, the form
 *   translators use: an operator's shorter prefix puts the address elsewhere, and then this may
 *   name an unrelated IPv4 address, which only makes a range match more (fail closed);
 * - SIIT's IPv4-translated `::ffff:0:0/96` (RFC 2765) and the deprecated IPv4-compatible `::/96`
 *   (`::a.b.c.d`, first octet not 0, so `::1` is none);
 * - 6to4's `2002::/16` (RFC 3056), in the 32 bits after the prefix;
 * - Teredo's `2001::/32` (RFC 4380): the client's public address, its last 32 bits inverted;
 * - ISATAP's interface identifier `0:5efe` or `200:5efe` under any prefix (RFC 5214).
 */
export function embeddedIpv4(ip: string): string | null {
  const c = canonicalIp(ip);
  if (c === null || c.indexOf(':') < 0) return null;
  const w = ipaddr.IPv6.parse(c).parts;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return v4(w[6]!, w[7]!);
  if (w[0] === 0x64 && w[1] === 0xff9b && w[2] === 1 && zero(3, 6)) return v4(w[6]!, w[7]!);
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return v4(w[6]!, w[7]!);
  if (zero(0, 6) && w[6]! >= 0x100) return v4(w[6]!, w[7]!);
  if (w[0] === 0x2002) return v4(w[1]!, w[2]!);
  if (w[0] === 0x2001 && w[1] === 0) return v4(~w[6]! & 0xffff, ~w[7]! & 0xffff);
  // ISATAP (RFC 5214): under any /64, the interface identifier 0000:5efe (or 0200:5efe) and the IPv4 address
  if ((w[4] === 0 || w[4] === 0x200) && w[5] === 0x5efe) return v4(w[6]!, w[7]!);
  return null;
}

/** True when `s` is an IP address in any form canonicalIp accepts. */
export function isIp(s: string): boolean {
  return canonicalIp(s) !== null;
}

/** An address range parsed once: a CIDR (`100.64.0.0/10`) or a single address (its full-length prefix). */
export interface IpRange {
  /** as written */
  readonly source: string;
  /** the prefix length: 32 or 128 for a single address */
  readonly prefixLength: number;
  /** the canonical text of the range's first address (host bits cleared) */
  readonly first: string;
  /** true when `ip`, in any spelling canonicalIp accepts, lies in the range */
  contains(ip: string): boolean;
  /** true when the two ranges share an address */
  overlaps(other: IpRange): boolean;
  /**
   * Whether some address of the range, in canonical text, satisfies `matches` (a glob over address
   * text, `pattern` as written): exact for a range of up to 65,536 addresses, which it enumerates.
   * A larger range answers true (it may) unless the pattern cannot spell an address of its family.
   */
  mayMatch(matches: (ip: string) => boolean, pattern: string): boolean;
}

/** The most addresses mayMatch enumerates: an IPv4 /16. */
const ENUMERABLE_BITS = 16;

/** Parses a CIDR range or a single address, or returns null when `source` is neither. */
export function parseIpRange(source: string): IpRange | null {
  let net: ipaddr.IPv4 | ipaddr.IPv6;
  let bits: number;
  const slash = source.indexOf('/');
  if (slash >= 0) {
    const base = canonicalIp(source.slice(0, slash));
    const prefix = source.slice(slash + 1);
    if (base === null || !/^\d{1,3}$/.test(prefix)) return null;
    net = ipaddr.parse(base);
    bits = Number(prefix);
    if (bits > (net.kind() === 'ipv4' ? 32 : 128)) return null;
  } else {
    const base = canonicalIp(source);
    if (base === null) return null;
    net = ipaddr.parse(base);
    bits = net.kind() === 'ipv4' ? 32 : 128;
  }
  const kind = net.kind();
  const width = kind === 'ipv4' ? 32 : 128;
  const contains = (ip: string): boolean => {
    const c = canonicalIp(ip);
    if (c === null) return false;
    const a = ipaddr.parse(c);
    return a.kind() === kind && a.match(net, bits);
  };
  const first = (kind === 'ipv4' ? ipaddr.IPv4 : ipaddr.IPv6).networkAddressFromCIDR(`${net.toString()}/${bits}`);
  const firstText = addressText(first);
  return {
    source,
    prefixLength: bits,
    first: firstText,
    contains,
    overlaps(other: IpRange): boolean {
      // two prefixes share an address exactly when the wider one holds the narrower one's first address
      return other.prefixLength <= bits ? other.contains(firstText) : contains(other.first);
    },
    mayMatch(matches: (ip: string) => boolean, pattern: string): boolean {
      if (!couldSpell(pattern, kind)) return false;
      if (width - bits > ENUMERABLE_BITS) return true;
      const bytes = first.toByteArray();
      for (let n = 0; n < 2 ** (width - bits); n++) {
        // the last two bytes carry the offset (ENUMERABLE_BITS = 16 keeps it within them)
        const b = bytes.slice();
        const low = (b[b.length - 2]! << 8) + b[b.length - 1]! + n;
        b[b.length - 2] = (low >> 8) & 0xff;
        b[b.length - 1] = low & 0xff;
        if (matches(addressText(ipaddr.fromByteArray(b)))) return true;
      }
      return false;
    },
  };
}

/**
 * The IPv6 ranges that carry the addresses of an IPv4 range by a transition prefix, as embeddedIpv4
 * reads them back: NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), IPv4-compatible (::/96),
 * SIIT (::ffff:0:0/96) and 6to4 (2002::/16). Empty for an IPv6 range. Teredo and ISATAP are left
 * out: their IPv4 address sits beside bits a range cannot fix (a server address, any /64), so no
 * prefix holds it.
 */
export function ipv4Images(range: IpRange): IpRange[] {
  if (range.first.includes(':')) return [];
  const p = range.prefixLength;
  const [a, b, c, d] = range.first.split('.').map(Number) as [number, number, number, number];
  const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  // in hex: written dotted, `::203.0.113.0` would read as the IPv4 address itself
  const low = `${hex(a, b)}:${hex(c, d)}`;
  return [`64:ff9b::${low}/${96 + p}`, `64:ff9b:1::${low}/${96 + p}`, `::${low}/${96 + p}`, `::ffff:0:${low}/${96 + p}`, `2002:${low}::/${16 + p}`]
    .map((s) => parseIpRange(s))
    .filter((r): r is IpRange => r !== null);
}

/** Whether mayMatch answers a range exactly (it enumerates at most 65,536 addresses) rather than "it may". */
export function isEnumerable(range: IpRange): boolean {
  return (range.first.includes(':') ? 128 : 32) - range.prefixLength <= ENUMERABLE_BITS;
}

function addressText(a: ipaddr.IPv4 | ipaddr.IPv6): string {
  return a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString();
}

/**
 * Whether a glob could match the canonical text of some address of a family: IPv4 text is digits and
 * dots, IPv6 text (RFC 5952, never dotted: mapped addresses are IPv4) hex digits and colons. A
 * bracket class counts as any one character.
 */
function couldSpell(pattern: string, kind: 'ipv4' | 'ipv6'): boolean {
  const p = pattern.toLowerCase().replace(/\[[^\]]*\]/g, '?');
  return kind === 'ipv4' ? /^[0-9.*?]*$/.test(p) : /^[0-9a-f:*?]*$/.test(p);
}

/** True for loopback addresses (127.0.0.0/8, ::1, and IPv4-mapped loopback). */
export function isLoopbackIp(s: string): boolean {
  const c = canonicalIp(s);
  if (c === null) return false;
  // canonical IPv4 (an IPv4-mapped address included) is plain dotted decimal: loopback is 127/8, told
  // without parsing (the ECS reader asks this of every document's address)
  if (isDottedQuad(c)) return c.startsWith('127.');
  return ipaddr.parse(c).range() === 'loopback';
}

/**
 * The block of addresses one client commands, as the canonical text of it: an IPv4 address itself
 * (IPv4-mapped IPv6 included); an IPv6 address's /64, the smallest prefix a network hands one host or
 * link (RFC 7421), so one machine cannot pass for 2^64 clients. Anything else is returned as given.
 */
export function clientBlock(s: string): string {
  const c = canonicalIp(s);
  if (c === null || isDottedQuad(c)) return c ?? s;
  const a = ipaddr.IPv6.parse(c.replace(/%.*$/, ''));
  const parts = a.parts.slice(0, 4).concat([0, 0, 0, 0]);
  return `${new ipaddr.IPv6(parts).toRFC5952String()}/64`;
}
