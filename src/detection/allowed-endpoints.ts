import { globMatcher } from '../domain/glob.js';
import { splitEndpoint } from '../domain/endpoint.js';
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
    const { host, port } = splitEndpoint(raw);
    const portPart = raw.endsWith(':*') ? '*' : port;
    const hostPart = raw.endsWith(':*') ? raw.slice(0, -2) : host;
    if (!/^[A-Za-z0-9*?.\-_:\[\]]+$/.test(hostPart) || hostPart === '') {
      throw new Error(`${where}: invalid entry "${raw}" (expected host[:port], e.g. *.github.com:443)`);
    }
    const covered = risky.coveredBy(hostPart);
    if (covered) {
      throw new RiskyCoverageError(
        `${where}: entry "${raw}" covers the risky destination ${covered}; payload-staging / exfiltration hosts can never be allowed (narrow the entry so it excludes ${covered})`,
      );
    }
    return { raw, host: globMatcher(hostPart.replace(/^\[|\]$/g, '')), port: portPart ?? 443 };
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
