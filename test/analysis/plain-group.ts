import type { ParentLink } from '../../src/domain/types.js';
import { EndpointFacts } from '../../src/analysis/endpoint-facts.js';
import { IdCounter } from '../../src/analysis/counts.js';
import { judgeGroup, type JudgedBinary, type VariantEvidence } from '../../src/analysis/verdict.js';
import { ImpostorSet } from '../../src/rules/guards.js';
import type { RiskyDestinations } from '../../src/analysis/risky-destinations.js';

/** Plain calls of one process group, turned into what the pure analysis functions take. No store. */
export interface PlainCall {
  sha256: string | null;
  path: string | null;
  parents?: ParentLink[];
  host: string;
  port: number | null;
  isIp?: boolean;
  /** detections of this call, default 1 */
  n?: number;
}

export interface PlainGroup {
  facts: EndpointFacts;
  variants: VariantEvidence[];
}

export function plainGroup(calls: PlainCall[], risky: RiskyDestinations): PlainGroup {
  const eps: { host: string; port: number | null; isIp: boolean }[] = [];
  const epIds = new Map<string, number>();
  const variants = new Map<string, { v: VariantEvidence; counts: Map<number, number> }>();
  for (const c of calls) {
    const isIp = c.isIp ?? /^[0-9.]+$|:/.test(c.host);
    const ek = `${c.host}\u0000${c.port}\u0000${isIp}`;
    let ep = epIds.get(ek);
    if (ep === undefined) {
      ep = eps.length;
      eps.push({ host: c.host, port: c.port, isIp });
      epIds.set(ek, ep);
    }
    const parents = c.parents ?? [{ name: 'sudo' }, { name: 'bash' }, { name: 'Runner.Worker' }];
    const vk = JSON.stringify([c.sha256, c.path, parents]);
    let entry = variants.get(vk);
    if (!entry) {
      entry = { v: { variant: variants.size, sha256: c.sha256, path: c.path, parents, n: 0, eps: { ids: new Int32Array(0), n: new Float64Array(0) } }, counts: new Map() };
      variants.set(vk, entry);
    }
    const n = c.n ?? 1;
    entry.v.n += n;
    entry.counts.set(ep, (entry.counts.get(ep) ?? 0) + n);
  }
  const out: VariantEvidence[] = [];
  for (const { v, counts } of variants.values()) {
    v.eps = { ids: Int32Array.from(counts.keys()), n: Float64Array.from(counts.values()) };
    out.push(v);
  }
  return { facts: EndpointFacts.fromList(eps, risky), variants: out };
}

export function judge(name: string, calls: PlainCall[], risky: RiskyDestinations, impostors = new ImpostorSet()): JudgedBinary[] {
  const g = plainGroup(calls, risky);
  return judgeGroup(name, g.variants, g.facts, impostors, new IdCounter(16));
}
