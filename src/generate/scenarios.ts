/**
 * The scenario inventory of the generated sample tenant: what appears, where, and from which run on.
 * Exported as constants so tests and the demo can assert on them.
 */
import { CHAINS, PROCESSES, type ChainKey } from './catalog.js';

/** Every scenario the generator can emit. `normal` is the learned baseline traffic. */
export const SCENARIO_NAMES = [
  'normal',
  'cache-shard-drift',
  'tailscale',
  'twingate',
  'zerotier',
  'netbird',
  'cloudflared',
  'warp',
  'openvpn',
  'new-registries',
  'new-domains',
  'impostor',
  'npm-postinstall',
  'blocked',
  'unknown-process',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];
/** Scenarios that only appear once a job's learning runs are over. */
export type AnomalyName = Exclude<ScenarioName, 'normal'>;
export const ANOMALY_NAMES = SCENARIO_NAMES.filter((n): n is AnomalyName => n !== 'normal');

/** Process names of VPN / mesh daemons used by the VPN scenarios (genuine binaries). */
export const VPN_SCENARIOS = ['tailscale', 'twingate', 'zerotier', 'netbird', 'cloudflared', 'warp', 'openvpn'] as const;

function chainNames(key: ChainKey): string[] {
  return CHAINS[key].slice(1).map((p) => PROCESSES[p].name);
}

export const SCENARIO = {
  /** The first four orgs are always these (larger tenants add more). */
  orgs: ['acme-corp', 'globex', 'initech', 'umbrella-labs'] as const,
  workflows: ['.github/workflows/ci.yml', '.github/workflows/release.yml', '.github/workflows/nightly.yml'] as const,
  jobs: ['lint', 'build', 'test', 'e2e', 'deploy'] as const,
  /** Timestamps end here (exclusive) and span `days` before it. */
  endDate: '2026-11-20T00:00:00.000Z',
  days: 30,
  defaults: { runs: 20, seed: 1, learningRuns: 5, jobs: 54, eventsPerJobRun: 40 },
  /** run_id values start above this and increase with time. */
  runIdBase: 9_000_000_000,
  jobIdBase: 31_000_000_000,

  tailscale: {
    process: 'tailscaled',
    path: PROCESSES.tailscaled.path,
    sha256: PROCESSES.tailscaled.sha256,
    parentChain: chainNames('tailscaled'), // sudo < bash < Runner.Worker
    domains: ['controlplane.tailscale.com', 'log.tailscale.com'],
    derpDomainPattern: /^derp\d+\.tailscale\.com$/,
    derpCount: 28,
    peerCidr: '100.64.0.0/10',
    peerPort: 41641,
    stunPort: 3478,
  },
  twingate: {
    process: 'twingated',
    path: PROCESSES.twingated.path,
    sha256: PROCESSES.twingated.sha256,
    parentChain: chainNames('twingated'),
    domains: ['controller.twingate.com'], // plus <org>.twingate.com
    domainSuffix: '.twingate.com',
    relayPortRange: [30000, 31000] as const,
  },
  zerotier: {
    process: 'zerotier-one',
    path: PROCESSES.zerotier.path,
    sha256: PROCESSES.zerotier.sha256,
    parentChain: chainNames('zerotier'),
    port: 9993,
    roots: ['103.195.103.66', '84.17.53.155', '104.194.8.134', '185.152.67.145'],
  },
  netbird: {
    process: 'netbird',
    path: PROCESSES.netbird.path,
    sha256: PROCESSES.netbird.sha256,
    parentChain: chainNames('netbird'),
    domains: ['api.netbird.io', 'signal.netbird.io'],
    relays: ['streamline-de-fra1-0.relay.netbird.io', 'streamline-us-nyc1-0.relay.netbird.io', 'streamline-sg-sin1-0.relay.netbird.io'],
    stun: 'stun.netbird.io',
    peerPort: 51820,
  },
  cloudflared: {
    process: 'cloudflared',
    path: PROCESSES.cloudflared.path,
    sha256: PROCESSES.cloudflared.sha256,
    parentChain: chainNames('cloudflared'),
    domains: ['region1.v2.argotunnel.com', 'region2.v2.argotunnel.com', 'update.argotunnel.com'],
    port: 7844,
    ipPrefixes: ['198.41.192.', '198.41.200.'],
  },
  warp: {
    process: 'warp-svc',
    path: PROCESSES.warpSvc.path,
    sha256: PROCESSES.warpSvc.sha256,
    parentChain: chainNames('warpSvc'),
    domains: ['zero-trust-client.cloudflareclient.com'],
    port: 2408,
    ipPrefix: '162.159.193.',
    dohIps: ['162.159.36.1', '162.159.46.1'],
  },
  openvpn: {
    process: 'openvpn',
    path: PROCESSES.openvpn.path,
    sha256: PROCESSES.openvpn.sha256,
    parentChain: chainNames('openvpn'),
    port: 1194,
  },
  newRegistries: {
    processes: ['dockerd', 'containerd'],
    domains: [
      'quay.io',
      'cdn01.quay.io',
      'public.ecr.aws',
      'd5l0dvt14r5h8.cloudfront.net',
      'prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com',
      'mcr.microsoft.com',
      'eastus.data.mcr.microsoft.com',
    ],
    ecrSuffix: '.dkr.ecr.us-east-1.amazonaws.com',
  },
  newDomains: {
    processes: ['curl', 'node'],
    domains: [
      'api.openai.com',
      'hooks.slack.com',
      'o450912.ingest.sentry.io',
      'sentry.io',
      'api.segment.io',
      'cdn.jsdelivr.net',
      'unpkg.com',
      'd3h7v0m2k8qz1x.cloudfront.net',
    ],
  },
  /** The renamed impostor: same basename as Tailscale's daemon, different hash, path and parent. */
  impostor: {
    process: 'tailscaled',
    path: PROCESSES.impostorTailscaled.path,
    sha256: PROCESSES.impostorTailscaled.sha256,
    parentChain: chainNames('impostor'), // node < npm < bash < Runner.Worker
    domains: ['gist.githubusercontent.com'],
    ips: ['45.61.136.14', '45.155.205.233'],
    port: 443,
    /** How many repos carry it: 1 for tiny tenants, else 2. */
    maxRepos: 2,
  },
  npmPostinstall: {
    process: 'node',
    path: PROCESSES.node.path,
    sha256: PROCESSES.node.sha256,
    parentChain: chainNames('postinstall'), // sh < npm < bash < Runner.Worker
    domain: 'webhook.site',
    port: 443,
  },
  blocked: {
    domains: ['pastebin.com', 'pool.supportxmr.com'],
    processes: ['curl', 'xmrig'],
    minerPort: 3333,
    xmrigSha256: PROCESSES.xmrig.sha256,
  },
  unknownProcess: { name: 'Unknown', sha256: 'Unknown' },
  cacheShardDrift: {
    process: 'Runner.Worker',
    domainPattern: /^productionresultssa\d+\.blob\.core\.windows\.net$/,
  },
} as const;

/** How widely each anomaly spreads over jobs, and how often it fires per run once started. */
export interface AnomalyRule {
  /** Share of jobs that carry it (jobs not in `preferJobs` get a third of that). */
  share: number;
  /** Probability per run once started (the first run after start always fires). */
  perRun: number;
  preferJobs?: readonly string[];
}

export const ANOMALY_RULES: Record<Exclude<AnomalyName, 'impostor' | 'npm-postinstall'>, AnomalyRule> = {
  'cache-shard-drift': { share: 0.15, perRun: 0.2 },
  tailscale: { share: 0.14, perRun: 0.9, preferJobs: ['deploy', 'e2e', 'test'] },
  twingate: { share: 0.07, perRun: 0.85, preferJobs: ['deploy', 'e2e'] },
  zerotier: { share: 0.05, perRun: 0.8, preferJobs: ['e2e', 'test'] },
  netbird: { share: 0.05, perRun: 0.8, preferJobs: ['deploy', 'test'] },
  cloudflared: { share: 0.06, perRun: 0.8, preferJobs: ['e2e', 'deploy'] },
  warp: { share: 0.05, perRun: 0.8, preferJobs: ['test', 'e2e'] },
  openvpn: { share: 0.05, perRun: 0.85, preferJobs: ['deploy'] },
  'new-registries': { share: 0.12, perRun: 0.6, preferJobs: ['build', 'deploy', 'e2e'] },
  'new-domains': { share: 0.16, perRun: 0.5 },
  blocked: { share: 0.06, perRun: 0.3 },
  'unknown-process': { share: 0.1, perRun: 0.15 },
};

/** Per-run probability for the repo-level scenarios. */
export const IMPOSTOR_PER_RUN = 0.6;
export const POSTINSTALL_PER_RUN = 1.0;
