import { globMatcher } from '../domain/glob.js';
import { canonicalIp } from '../domain/ip.js';
import { riskyDestinations, type RiskyDestinations } from '../analysis/risky-destinations.js';

/**
 * Harden-Runner's allowed-endpoints syntax: space/comma/newline separated `host[:port]`,
 * port 443 when omitted, `*` wildcards in the host (`*.github.com:443`).
 */
export interface AllowedEndpoint {
  raw: string;
  host: (h: string) => boolean;
  port: number | '*';
}

/** An allowed-endpoints entry that would let a risky destination in: a safety refusal, not a typo. */
/** `[v6]` or a host / glob without a colon, then an optional `:port` or `:*`. */
const ENTRY = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9*?._-]+))(?::(\*|\d{1,5}))?$/;

export class RiskyCoverageError extends Error {
  override readonly name = 'RiskyCoverageError';
}

/**
 * Parses an allowed-endpoints list. An entry that names or would cover a risky destination
 * (webhook.site:443, *.githubusercontent.com, *.site, *) is refused: allowing it would stop calls to
 * payload-staging / exfiltration hosts from raising detections.
 */
export function parseAllowedEndpoints(
  spec: string | string[] | undefined,
  where = 'allowed endpoints',
  risky: RiskyDestinations = riskyDestinations(),
): AllowedEndpoint[] {
  if (!spec) return [];
  const items = (Array.isArray(spec) ? spec : [spec]).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
  return items.map((raw) => {
    const m = ENTRY.exec(raw);
    const port = m?.[3] === undefined ? 443 : m[3] === '*' ? '*' : Number(m[3]);
    const v6 = m?.[1] === undefined ? null : canonicalIp(m[1]);
    // An entry that cannot match a call (a port out of range, a stray colon or bracket) is refused, not
    // kept as a pattern that silently allows nothing.
    if (!m || (m[1] !== undefined && v6 === null) || (port !== '*' && (port < 1 || port > 65535))) {
      throw new Error(`${where}: invalid entry "${raw}" (expected host[:port] with a port 1-65535 or *, e.g. *.github.com:443 or [2001:db8::1]:443)`);
    }
    // a literal address in its canonical form, as calls are keyed
    const hostPart = v6 ?? canonicalIp(m[2]!) ?? m[2]!;
    const covered = risky.coveredBy(hostPart);
    if (covered) {
      throw new RiskyCoverageError(
        `${where}: entry "${raw}" covers the risky destination ${covered}; payload-staging / exfiltration hosts can never be allowed (narrow the entry so it excludes ${covered})`,
      );
    }
    return { raw, host: globMatcher(hostPart), port };
  });
}

export class AllowedEndpoints {
  private readonly cache = new Map<string, boolean>();
  constructor(readonly entries: AllowedEndpoint[]) {}

  matches(host: string, port: number): boolean {
    if (this.entries.length === 0) return false;
    const key = `${host}:${port}`;
    let hit = this.cache.get(key);
    if (hit === undefined) {
      hit = this.entries.some((e) => (e.port === '*' || e.port === port) && e.host(host));
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(key, hit);
    }
    return hit;
  }
}
