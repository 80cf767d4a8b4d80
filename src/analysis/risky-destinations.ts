import { canonicalIp, embeddedIpv4, parseIpRange, type IpRange } from '../domain/ip.js';
import { splitEndpoint } from '../domain/endpoint.js';
import { normalizeDomain } from '../domain/dns-name.js';
import { globMatcher, hostGlobReachesUnder, isGlob } from '../domain/glob.js';

/**
 * Destinations that must never be silenced by a suppression rule: payload staging and exfiltration
 * endpoints seen in real CI supply-chain attacks (tj-actions/changed-files used
 * gist.githubusercontent.com, the Shai-Hulud worm used webhook.site), request catchers used by
 * OAST tooling, tunnels, paste sites and chat webhooks (Datadog GuardDog's exfiltration list).
 *
 * Every entry matches the host itself and all of its subdomains; a leading "*." is accepted and means
 * the same. Telemetry carries no URL path, so discord.com/api/webhooks is covered by listing
 * discord.com and discordapp.com as a whole. Config entries may also be IPs or CIDR ranges, matched
 * against direct-IP endpoints and against the address a named call went to (matchCall).
 */
export const BUILTIN_RISKY_DESTINATIONS: readonly string[] = [
  // GitHub-hosted payload staging
  'gist.github.com',
  'gist.githubusercontent.com',
  // request catchers / OAST
  'webhook.site',
  'webhook.cool',
  'oastify.com',
  'oast.fun',
  'oast.pro',
  'oast.live',
  'oast.site',
  'oast.online',
  'oast.me',
  'interact.sh',
  'burpcollaborator.net',
  'pipedream.net',
  'm.pipedream.net',
  'beeceptor.com',
  'requestbin.net',
  'requestcatcher.com',
  'canarytokens.com',
  // tunnels
  'ngrok.io',
  'ngrok.app',
  'ngrok-free.app',
  'ngrok-free.dev',
  'trycloudflare.com',
  'localhost.run',
  'serveo.net',
  'loca.lt',
  'bore.pub',
  // paste / file drops
  'pastebin.com',
  'hastebin.com',
  'paste.ee',
  'rentry.co',
  'termbin.com',
  'transfer.sh',
  'filetransfer.io',
  'file.io',
  'temp.sh',
  // chat webhooks used as exfiltration channels
  'api.telegram.org',
  'discord.com',
  'discordapp.com',
  // public-IP discovery, typical first step of a dropper (api.ipify.org is flagged by StepSecurity;
  // api4, api6 and api64 are the same service, so the whole domain)
  'ipify.org',
];

/**
 * The host an entry that is not a CIDR range names, in lower case: a `*.` prefix, a path
 * ("discord.com/api/webhooks": the path is invisible in telemetry) and a port go, as the list
 * matches hosts; an IPv6 address may be bracketed with a port ("[2001:db8::1]:443"), an IPv4 address
 * or a name written with one ("203.0.113.7:443"). Null when the entry has no such shape.
 */
function entryHost(e: string): string | null {
  const { host, port } = splitEndpoint(e.replace(/^\*\./, '').replace(/\/.*$/, ''));
  if (port !== null && port > 65535) return null;
  // what is left with a colon is an IPv6 address, or no host at all ("exfil.example.net:*")
  return host.includes(':') && canonicalIp(host) === null ? null : host;
}

/** Compiled risky list: hosts (suffix match) plus optional IPs / CIDR ranges from config. */
export class RiskyDestinations {
  private readonly hosts: Set<string>;
  private readonly cidrs: IpRange[] = [];
  private readonly cache = new Map<string, string | null>();
  readonly entries: readonly string[];

  constructor(extra: readonly string[] = []) {
    const all = [...BUILTIN_RISKY_DESTINATIONS, ...extra];
    this.entries = all;
    this.hosts = new Set();
    for (const raw of all) {
      const e = raw.trim().toLowerCase();
      if (!e) continue;
      // a prefix length after the slash makes it a range; anything else after it is a URL path
      if (/^[^/]+\/\d+$/.test(e)) {
        const range = parseIpRange(e);
        if (!range) throw new Error(`risky_destinations: "${raw}" is neither a host nor a valid CIDR range`);
        this.cidrs.push(range);
        continue;
      }
      const host = entryHost(e);
      // an address followed by anything but a prefix length ("203.0.113.0/24/x") may mean a range: not guessed
      if (host !== null && e.includes('/') && canonicalIp(host) !== null) throw new Error(`risky_destinations: "${raw}" is neither a host nor a valid CIDR range`);
      const single = host !== null && canonicalIp(host) !== null ? parseIpRange(host) : null;
      if (single) {
        this.cidrs.push(single);
        continue;
      }
      // Checked and spelt as every call's name is (domain/dns-name.ts): an entry kept in another
      // spelling ("exfil.example.net." with its root dot, "a..b.com") would be listed as protected
      // and match no call.
      const name = host === null ? null : normalizeDomain(host);
      if (name === null) throw new Error(`risky_destinations: "${raw}" is not a host name, IP or CIDR range`);
      this.hosts.add(name);
    }
  }

  /** The names the list holds (each covers itself and every name under it), not its address ranges. */
  get hostNames(): readonly string[] {
    return (this.names ??= [...this.hosts]);
  }
  private names?: readonly string[];

  /** The list entry a host (domain or IP literal) falls under, or null. */
  matchHost(rawHost: string): string | null {
    const cached = this.cache.get(rawHost);
    if (cached !== undefined) return cached;
    let out: string | null = null;
    const host = rawHost.toLowerCase().replace(/\.$/, '');
    if (canonicalIp(host) !== null) {
      // a NAT64, 6to4 or Teredo address reaches the IPv4 host it carries (embeddedIpv4); a range
      // written in NAT64 form covers the IPv4 hosts it translates to
      const v4 = embeddedIpv4(host);
      const nat64 = host.indexOf(':') < 0 ? `64:ff9b::${host}` : null;
      out = this.cidrs.find((c) => c.contains(host) || (v4 !== null && c.contains(v4)) || (nat64 !== null && c.contains(nat64)))?.source ?? null;
    } else {
      let h = host;
      for (;;) {
        if (this.hosts.has(h)) {
          out = h;
          break;
        }
        const dot = h.indexOf('.');
        if (dot < 0) break;
        h = h.slice(dot + 1);
      }
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(rawHost, out);
    return out;
  }

  /**
   * The list entry a call falls under: its host's, else its address's. A configured range covers a
   * named call too: a host under the attacker's control that resolves into the range is reached
   * there, whatever name it goes by.
   */
  matchCall(host: string, ip: string | null | undefined): string | null {
    const entry = this.matchHost(host);
    if (entry !== null || !ip || ip === host || this.cidrs.length === 0) return entry;
    return this.matchHost(ip);
  }

  /** True when the list holds IP ranges: only then can a call's address make it risky. */
  get hasRanges(): boolean {
    return this.cidrs.length > 0;
  }

  /** Risky entry for an "host:port" / "ip:port" endpoint, or null. */
  matchEndpoint(endpoint: string): string | null {
    return this.matchHost(splitEndpoint(endpoint).host);
  }

  /**
   * The list entry that some host matched by `pattern` (an exact host / IP, or a `*` / `?` glob such
   * as `*.githubusercontent.com`, `*.site` or `*`) falls under, or null. Used wherever a pattern
   * would make calls unflagged or suppressed (allowed endpoints, expected endpoints, rules), so a
   * pattern that would cover a risky destination is refused.
   *
   * A glob covers an entry E when it matches E, a subdomain of E, or a host built from the pattern
   * itself with each wildcard filled by E (so `abc*.webhook.site` and `gist.*` are caught). The check
   * errs towards refusing: a refused pattern can always be narrowed.
   */
  coveredBy(pattern: string): string | null {
    const p = pattern.trim().toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
    if (p === '') return null;
    if (!isGlob(p)) return this.matchHost(p);
    const m = globMatcher(p);
    // The reason names the entry the pattern is most plainly about: one it matches itself before one
    // it reaches below (`discord*` matches discord.com, and also reaches discord.gist.github.com).
    for (const e of this.hosts) if (m(e)) return e;
    for (const e of this.hosts) if (m(`x.${e}`) || hostGlobReachesUnder(p, e)) return e;
    for (const e of this.hosts) {
      for (const fill of ['', 'x', e, `.${e}`, `x.${e}`]) {
        const candidate = p.replace(/\*/g, fill).replace(/\?/g, 'x');
        if (m(candidate) && this.matchHost(candidate)) return this.matchHost(candidate);
      }
    }
    for (const c of this.cidrs) if (c.mayMatch(m, p)) return c.source;
    return null;
  }

  /** Host names of the list (for "does this pattern target a risky destination" checks). */
  hostEntries(): string[] {
    return [...this.hosts];
  }

  /** The list's IP ranges (single addresses as one-address ranges). */
  cidrRanges(): readonly IpRange[] {
    return this.cidrs;
  }
}

const defaultInstance = new RiskyDestinations();

export function riskyDestinations(extra?: readonly string[]): RiskyDestinations {
  return extra && extra.length ? new RiskyDestinations(extra) : defaultInstance;
}
