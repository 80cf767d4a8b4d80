import type { EndpointDictionary } from '../storage/analysis-port.js';
import type { RiskyDestinations } from './risky-destinations.js';
import { signatureSignals, type VpnSignature } from './vpn-signatures.js';

/**
 * What the analysis knows about each destination: the dictionary's plain facts plus two derived,
 * memoised ones (risky or not; which VPN signature signals it carries). Endpoints are append-only and
 * immutable and the risky list and signatures are fixed per instance, so a memoised fact never goes
 * stale; memoising matters because a mesh daemon's group has thousands of peers per call.
 */
export class EndpointFacts {
  private riskyFlags = new Uint8Array(0);
  private riskyUpTo = -1;
  private readonly signals = new Map<VpnSignature, (readonly string[] | undefined)[]>();

  constructor(
    readonly dict: EndpointDictionary,
    readonly risky: RiskyDestinations,
  ) {}

  /** Plain destinations (tests, small inputs): refs are the list's indexes. */
  static fromList(list: { host: string; port: number | null; isIp: boolean }[], risky: RiskyDestinations): EndpointFacts {
    const hosts = new Map<string, number>();
    const dict: EndpointDictionary = { endpoint: [], host: [], hostId: [], hostName: [], port: [], isIp: [], maxId: list.length - 1, hostCount: 0 };
    list.forEach((e, id) => {
      dict.endpoint[id] = `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port ?? 443}`;
      dict.host[id] = e.host;
      let h = hosts.get(e.host);
      if (h === undefined) {
        h = hosts.size;
        hosts.set(e.host, h);
        dict.hostName[h] = e.host;
      }
      dict.hostId[id] = h;
      dict.port[id] = e.port;
      dict.isIp[id] = e.isIp ? 1 : 0;
    });
    dict.hostCount = hosts.size;
    return new EndpointFacts(dict, risky);
  }

  endpoint(id: number): string {
    return this.dict.endpoint[id]!;
  }

  host(id: number): string {
    return this.dict.host[id]!;
  }

  isIp(id: number): boolean {
    return this.dict.isIp[id] === 1;
  }

  /** true when the destination's host falls under the risky list (RiskyDestinations.matchHost) */
  isRisky(id: number): boolean {
    if (id > this.riskyUpTo) this.extendRisky(id);
    return this.riskyFlags[id] === 1;
  }

  private extendRisky(id: number): void {
    const upTo = Math.max(id, this.dict.maxId);
    if (upTo >= this.riskyFlags.length) {
      const f = new Uint8Array(Math.max(upTo + 1, this.riskyFlags.length * 2));
      f.set(this.riskyFlags);
      this.riskyFlags = f;
    }
    for (let i = this.riskyUpTo + 1; i <= upTo; i++) {
      const host = this.dict.host[i];
      this.riskyFlags[i] = host !== undefined && this.risky.matchHost(host) ? 1 : 0;
    }
    this.riskyUpTo = upTo;
  }

  /** signatureSignals of one destination for one daemon */
  signalsFor(sig: VpnSignature, id: number): readonly string[] {
    let cache = this.signals.get(sig);
    if (!cache) this.signals.set(sig, (cache = []));
    let s = cache[id];
    if (s === undefined) {
      const got = signatureSignals(sig, this.dict.host[id]!, this.dict.port[id] ?? null, this.dict.isIp[id] === 1);
      s = got.length ? got : NO_SIGNALS;
      cache[id] = s;
    }
    return s;
  }
}

const NO_SIGNALS: readonly string[] = Object.freeze([]);

const tables = new WeakMap<EndpointDictionary, WeakMap<RiskyDestinations, EndpointFacts>>();

/** One EndpointFacts per (dictionary, risky list): the dictionary object lives as long as its store connection. */
export function endpointFacts(dict: EndpointDictionary, risky: RiskyDestinations): EndpointFacts {
  let byRisky = tables.get(dict);
  if (!byRisky) tables.set(dict, (byRisky = new WeakMap()));
  let t = byRisky.get(risky);
  if (!t) byRisky.set(risky, (t = new EndpointFacts(dict, risky)));
  return t;
}
