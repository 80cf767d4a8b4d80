import type { NetworkCallEvent, ProcessInfo } from '../../src/domain/types.js';
import { call, proc, tailscaled, TS0 } from './helpers.js';

/** A random tenant of 3000 calls over ~12 days: three owners, VPN daemons, impostors, risky hosts. */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTenant(seed: number, T = 'rand'): NetworkCallEvent[] {
  const r = prng(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const procs: ProcessInfo[] = [
    tailscaled(true), tailscaled(false), proc('curl'), proc('curl', 'e'.repeat(64)), proc('node'), proc('dockerd'),
    proc('twingated'), proc('containerd'), proc('python3'), proc('wget'), proc('rare-tool'),
  ];
  const domains = ['a.example.com', 'b.example.com', 'controlplane.tailscale.com', 'derp3.tailscale.com', 'webhook.site', 'gist.githubusercontent.com', 'x.twingate.com', 'quay.io', 'registry.npmjs.org'];
  const evs: NetworkCallEvent[] = [];
  const runsByJob = new Map<string, number>();
  let run = 1000;
  // events in time order across ~12 days, so runs of a job are contiguous
  let ts = TS0 + 5 * 3_600_000 + 123;
  for (let i = 0; i < 3000; i++) {
    ts += Math.floor(r() * 6 * 60_000);
    const owner = pick(['acme', 'globex', 'initech']);
    const repo = pick(['web', 'api', 'lib', 'infra']);
    const job = pick(['build', 'test']);
    const jk = `${owner}/${repo}/${job}`;
    let rid = runsByJob.get(jk) ?? run++;
    if (r() < 0.15) rid = run++;
    runsByJob.set(jk, rid);
    const p = pick(procs);
    const dest = r() < 0.3 ? { ip: r() < 0.5 ? `100.64.${Math.floor(r() * 4)}.${Math.floor(r() * 9)}` : `198.51.100.${Math.floor(r() * 20)}`, port: pick([443, 41641, 3478]) } : { domain: pick(domains), port: pick([443, 443, 8443]) };
    evs.push(call(T, repo, rid, ts, p, dest, owner, job));
  }
  return evs;
}

