/**
 * The catalogue of realistic runner processes, their executables and hashes, and the IP addresses
 * the generator hands out for domains. Hashes are stable: sha256 of "name@version".
 */
import { createHash } from 'node:crypto';
import { hashString } from './prng.js';

export interface ProcessDef {
  name: string;
  path: string;
  version: string;
  sha256: string;
}

export function fakeSha256(name: string, version: string): string {
  return createHash('sha256').update(`${name}@${version}`).digest('hex');
}

function def(name: string, path: string, version: string): ProcessDef {
  return { name, path, version, sha256: fakeSha256(name, version) };
}

const NODE_TC = '/opt/hostedtoolcache/node/20.11.1/x64/bin';
const PY_TC = '/opt/hostedtoolcache/Python/3.12.7/x64/bin';

/** Every process the generator attributes traffic to (or uses as a parent). */
export const PROCESSES = {
  runnerWorker: def('Runner.Worker', '/home/runner/actions-runner/cached/bin/Runner.Worker', '2.321.0'),
  actionsNode: def('node', '/home/runner/actions-runner/cached/externals/node20/bin/node', '20.18.1-actions'),
  bash: def('bash', '/usr/bin/bash', '5.2.21'),
  sh: def('sh', '/usr/bin/sh', 'dash-0.5.12'),
  sudo: def('sudo', '/usr/bin/sudo', '1.9.15p5'),
  systemd: def('systemd', '/usr/lib/systemd/systemd', '255.4'),
  git: def('git', '/usr/bin/git', '2.47.1'),
  gitRemoteHttps: def('git-remote-https', '/usr/lib/git-core/git-remote-https', '2.47.1'),
  node: def('node', `${NODE_TC}/node`, '20.11.1'),
  npm: def('npm', `${NODE_TC}/npm`, '10.2.4'),
  npx: def('npx', `${NODE_TC}/npx`, '10.2.4'),
  python: def('python3.12', `${PY_TC}/python3.12`, '3.12.7'),
  pip: def('pip', `${PY_TC}/pip`, '24.3.1'),
  go: def('go', '/opt/hostedtoolcache/go/1.23.4/x64/bin/go', '1.23.4'),
  java: def('java', '/usr/lib/jvm/temurin-17-jdk-amd64/bin/java', '17.0.13+11'),
  mvn: def('mvn', '/usr/share/apache-maven-3.8.8/bin/mvn', '3.8.8'),
  dotnet: def('dotnet', '/usr/share/dotnet/dotnet', '8.0.404'),
  docker: def('docker', '/usr/bin/docker', '27.4.1'),
  dockerd: def('dockerd', '/usr/bin/dockerd', '27.4.1'),
  containerd: def('containerd', '/usr/bin/containerd', '1.7.24'),
  curl: def('curl', '/usr/bin/curl', '8.5.0'),
  gh: def('gh', '/usr/bin/gh', '2.63.2'),
  aws: def('aws', '/usr/local/aws-cli/v2/2.22.20/dist/aws', '2.22.20'),
  // VPN / mesh daemons (genuine builds)
  tailscaled: def('tailscaled', '/usr/sbin/tailscaled', '1.76.6'),
  twingated: def('twingated', '/usr/bin/twingated', '2024.338.1'),
  zerotier: def('zerotier-one', '/usr/sbin/zerotier-one', '1.14.2'),
  netbird: def('netbird', '/usr/bin/netbird', '0.34.1'),
  cloudflared: def('cloudflared', '/usr/local/bin/cloudflared', '2024.12.2'),
  warpSvc: def('warp-svc', '/bin/warp-svc', '2024.11.309'),
  openvpn: def('openvpn', '/usr/sbin/openvpn', '2.6.12'),
  // hostile
  impostorTailscaled: def('tailscaled', '/tmp/.cache/tailscaled', 'impostor-dropper-7f3a'),
  xmrig: def('xmrig', '/tmp/.X11-unix/xmrig', '6.22.2'),
} as const satisfies Record<string, ProcessDef>;

export type ProcessKey = keyof typeof PROCESSES;

/** Chains are leaf first: [caller, parent, grandparent, ...]. */
export type Chain = readonly ProcessKey[];

export const CHAINS = {
  runnerWorker: ['runnerWorker'],
  actionsNode: ['actionsNode', 'runnerWorker'],
  gitCheckout: ['gitRemoteHttps', 'git', 'actionsNode', 'runnerWorker'],
  gitShell: ['gitRemoteHttps', 'git', 'bash', 'runnerWorker'],
  npm: ['npm', 'bash', 'runnerWorker'],
  npmNode: ['node', 'npm', 'bash', 'runnerWorker'],
  npxNode: ['node', 'npx', 'bash', 'runnerWorker'],
  pip: ['pip', 'bash', 'runnerWorker'],
  python: ['python', 'bash', 'runnerWorker'],
  go: ['go', 'bash', 'runnerWorker'],
  mavenJava: ['java', 'mvn', 'bash', 'runnerWorker'],
  gradleJava: ['java', 'bash', 'runnerWorker'],
  dotnet: ['dotnet', 'bash', 'runnerWorker'],
  dockerCli: ['docker', 'bash', 'runnerWorker'],
  dockerd: ['dockerd', 'systemd'],
  containerd: ['containerd', 'systemd'],
  curl: ['curl', 'bash', 'runnerWorker'],
  gh: ['gh', 'bash', 'runnerWorker'],
  aws: ['aws', 'bash', 'runnerWorker'],
  tailscaled: ['tailscaled', 'sudo', 'bash', 'runnerWorker'],
  twingated: ['twingated', 'systemd'],
  zerotier: ['zerotier', 'systemd'],
  netbird: ['netbird', 'systemd'],
  cloudflared: ['cloudflared', 'bash', 'runnerWorker'],
  warpSvc: ['warpSvc', 'systemd'],
  openvpn: ['openvpn', 'sudo', 'actionsNode', 'runnerWorker'],
  impostor: ['impostorTailscaled', 'node', 'npm', 'bash', 'runnerWorker'],
  postinstall: ['node', 'sh', 'npm', 'bash', 'runnerWorker'],
  minerFromPostinstall: ['xmrig', 'sh', 'npm', 'bash', 'runnerWorker'],
} as const satisfies Record<string, Chain>;

export type ChainKey = keyof typeof CHAINS;

/** Public first octets used for made-up addresses (no private, CGNAT, multicast or reserved space). */
const PUBLIC_OCTETS = [
  3, 4, 8, 13, 18, 20, 23, 34, 35, 40, 44, 50, 52, 54, 63, 64, 65, 66, 67, 68, 69, 72, 74, 76, 80, 81, 82, 85, 88,
  89, 91, 93, 94, 95, 104, 107, 108, 128, 130, 135, 137, 138, 141, 143, 144, 146, 147, 149, 151, 152, 157, 159,
  161, 164, 167, 170, 172, 173, 176, 178, 185, 188, 193, 194, 195, 199, 204, 205, 206, 207, 208, 209, 212, 213,
  216, 217,
];

/** A public-looking IPv4 address derived from a 32-bit key. Never in a private/special range. */
export function publicIpFromKey(key: number): string {
  const a = PUBLIC_OCTETS[key % PUBLIC_OCTETS.length]!;
  let b = (key >>> 8) & 0xff;
  if (a === 172 && b >= 16 && b <= 31) b += 16; // skip 172.16/12
  const c = (key >>> 16) & 0xff;
  const d = 1 + ((key >>> 24) % 253);
  return `${a}.${b}.${c}.${d}`;
}

/** An address in 100.64.0.0/10 (CGNAT; Tailscale and NetBird overlay space). */
export function cgnatIpFromKey(key: number): string {
  const b = 64 + (key & 0x3f);
  const c = (key >>> 6) & 0xff;
  const d = 1 + ((key >>> 14) % 254);
  return `100.${b}.${c}.${d}`;
}

/** Known anycast/front-end prefixes for well-known services, so resolved IPs look right. */
const KNOWN_PREFIX: Record<string, readonly string[]> = {
  'github.com': ['140.82.112.3', '140.82.112.4', '140.82.113.3', '140.82.113.4', '140.82.114.4'],
  'api.github.com': ['140.82.112.5', '140.82.112.6', '140.82.113.5', '140.82.113.6', '140.82.114.5'],
  'codeload.github.com': ['140.82.112.9', '140.82.113.9', '140.82.114.9'],
  'uploads.github.com': ['140.82.112.14', '140.82.113.14'],
  'objects.githubusercontent.com': ['185.199.108.133', '185.199.109.133', '185.199.110.133', '185.199.111.133'],
  'gist.githubusercontent.com': ['185.199.108.133', '185.199.110.133'],
  'pkg-containers.githubusercontent.com': ['185.199.108.154', '185.199.109.154'],
  'ghcr.io': ['140.82.112.33', '140.82.113.33', '140.82.114.33'],
  'registry.npmjs.org': ['104.16.1.35', '104.16.2.35', '104.16.3.35', '104.16.24.34', '104.16.27.34'],
  'pypi.org': ['151.101.0.223', '151.101.64.223', '151.101.128.223', '151.101.192.223'],
  'files.pythonhosted.org': ['151.101.1.55', '151.101.65.55', '151.101.129.55', '151.101.193.55'],
  'registry-1.docker.io': ['54.227.20.253', '54.236.113.205', '3.216.34.172'],
  'auth.docker.io': ['54.236.113.205', '3.219.239.5'],
  'production.cloudflare.docker.com': ['104.16.99.29', '104.16.100.29', '104.16.101.29'],
  'proxy.golang.org': ['142.250.72.17', '142.250.80.49', '142.251.32.113'],
  'sum.golang.org': ['142.250.65.81', '142.251.40.145'],
  'storage.googleapis.com': ['142.250.81.219', '142.250.80.59', '142.251.35.187'],
  'repo.maven.apache.org': ['146.75.32.215', '199.232.192.215'],
  'api.nuget.org': ['152.199.4.184', '152.199.24.163'],
  'globalcdn.nuget.org': ['152.199.4.184'],
  'region1.v2.argotunnel.com': ['198.41.192.7', '198.41.192.27', '198.41.192.47', '198.41.192.67'],
  'region2.v2.argotunnel.com': ['198.41.200.13', '198.41.200.33', '198.41.200.53', '198.41.200.73'],
  'webhook.site': ['46.4.105.116'],
  'pastebin.com': ['104.20.67.143', '172.67.34.170'],
};

/** 1 to 4 stable IPs for a domain. */
const ipCache = new Map<string, readonly string[]>();

export function ipsForDomain(domain: string): readonly string[] {
  const known = KNOWN_PREFIX[domain] ?? ipCache.get(domain);
  if (known) return known;
  if (ipCache.size > 100_000) ipCache.clear(); // bounded: domains are few, but stay safe
  const h = hashString(domain);
  const n = 1 + (h % 4);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(publicIpFromKey(hashString(`${domain}#${i}`)));
  ipCache.set(domain, out);
  return out;
}
