import { domainToASCII } from 'node:url';

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
  const d = canonicalAscii(s);
  if (d !== null) return d;
  // Spelt as a URL parser reads a host: the client that made the call resolved this name.
  const mapped = hostAsUrlParsersRead(s);
  return mapped === null ? null : canonicalAscii(mapped);
}

function canonicalAscii(s: string): string | null {
  let d = s;
  if (d.charCodeAt(d.length - 1) === 46) d = d.slice(0, -1);
  if (HAS_UPPER.test(d)) d = d.toLowerCase();
  if (!DOMAIN_RE.test(d) || d.indexOf('..') >= 0 || !labelsFit(d) || NUMERIC_LAST_LABEL.test(d)) return null;
  return d;
}

/**
 * A name written as URL parsers (WHATWG, UTS #46) still read it, in the ASCII form they resolve:
 * `webhook。site` (an ideographic full stop), `web<U+00AD>hook.site` (a soft hyphen, which they drop),
 * `webhook%2esite` (a percent-escape) and `ＷＥＢＨＯＯＫ．site` are all webhook.site to curl, browsers
 * and Node, and `münchen.example` is `xn--mnchen-3ya.example`. Read as written they matched no risky
 * name, and a call to webhook.site was stored as a direct-IP call that an address rule could hide.
 * Only for a name with a character outside ASCII or a percent-escape, and none of the characters that
 * end a URL's host (a parser would read the host as the part before them); null when it maps to nothing.
 */
function hostAsUrlParsersRead(s: string): string | null {
  if (!MAY_MAP.test(s) || URL_DELIMITER.test(s)) return null;
  const ascii = domainToASCII(s);
  return ascii === '' ? null : ascii;
}
const MAY_MAP = /[^\x00-\x7f]|%/;
const URL_DELIMITER = /[/\\?#@:[\]\s]/;

/**
 * `s` folded the way a URL parser folds a host, for finding a name inside text that is no DNS name
 * (ingest's riskyInName): percent-escapes decoded (as UTF-8, so `%e3%80%82` is an ideographic full
 * stop), compatibility forms (NFKC: fullwidth letters), lower case, every full stop an IDNA parser
 * reads as a dot, and no default-ignorable code point (UTS #46 maps them to nothing).
 */
export function foldedAsHost(s: string): string {
  let f = s;
  if (f.indexOf('%') >= 0) f = f.replace(PERCENT_RUN, decodeRun);
  f = f.normalize('NFKC').toLowerCase();
  return f.replace(IDEOGRAPHIC_STOPS, '.').replace(IGNORABLE, '');
}
const PERCENT_RUN = /(?:%[0-9a-f]{2})+/gi;
/** A run of escapes as UTF-8; bytes that are none stay as written. */
function decodeRun(run: string): string {
  try {
    return decodeURIComponent(run);
  } catch {
    return run;
  }
}
/** U+3002 and its halfwidth form (NFKC leaves them), and U+FF0E should a caller skip NFKC. */
const IDEOGRAPHIC_STOPS = /[\u3002\uff61\uff0e]/g;
/** What UTS #46 maps to nothing: Unicode's default-ignorable code points (soft hyphen, zero-width marks, variation selectors, ...). */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

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
