import { posix } from 'node:path';
import { parseIpRange, type IpRange } from '../domain/ip.js';
import { globMatcher } from '../domain/glob.js';
import { CHAIN_CUT, normalizeProcessName } from '../domain/process-name.js';
import { drawnLike } from '../domain/lookalike.js';

/**
 * Known VPN / mesh daemons and the network signature of each (DOMAIN.md, "VPN / mesh daemons").
 * A name match alone proves nothing: the agent records the executable's basename only, so the
 * evidence is the binary's destinations and parent chain (see docs/analysis.md).
 */
export interface VpnSignature {
  daemon: string;
  /** normalised process names (basename, lower case, .exe stripped) */
  names: string[];
  /** host globs of the daemon's control plane / relays */
  domains: string[];
  /** ports used by the daemon's own protocols (peer, STUN, tunnel) */
  ports: number[];
  portRanges: [number, number][];
  /** address ranges of peers / anycast front ends */
  cidrs: string[];
  /**
   * Ports a range is reached on besides `ports` and `portRanges` (WARP's DNS-over-HTTPS addresses
   * on 443 and 853). An address in a range vouches for the daemon only on one of its ports: a range
   * such as 100.64.0.0/10 also holds other services (Alibaba Cloud's metadata endpoint is
   * 100.100.100.200:80), and a renamed binary calling one there is no peer of a mesh.
   */
  rangePorts?: Record<string, number[]>;
}

export const VPN_SIGNATURES: readonly VpnSignature[] = [
  {
    daemon: 'tailscale',
    names: ['tailscaled', 'tailscale', 'tailscale-ipn', 'ipnextension'],
    domains: ['tailscale.com', '*.tailscale.com', 'tailscale.io', '*.tailscale.io'],
    ports: [41641, 3478],
    portRanges: [],
    cidrs: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'],
  },
  {
    daemon: 'twingate',
    names: ['twingated', 'twingate', 'twingate-connector', 'twingate-client', 'twingate.service'],
    domains: ['twingate.com', '*.twingate.com'],
    ports: [],
    portRanges: [[30000, 31000]],
    cidrs: [],
  },
  {
    daemon: 'zerotier',
    names: ['zerotier-one', 'zerotier', 'zerotier-one_x64'],
    domains: ['zerotier.com', '*.zerotier.com'],
    ports: [9993],
    portRanges: [],
    cidrs: [],
  },
  {
    daemon: 'netbird',
    names: ['netbird'],
    domains: ['netbird.io', '*.netbird.io'],
    ports: [3478, 51820],
    portRanges: [],
    cidrs: ['100.64.0.0/10'],
  },
  {
    daemon: 'cloudflared',
    names: ['cloudflared'],
    domains: ['*.argotunnel.com', 'argotunnel.com', 'api.cloudflare.com', '*.cftunnel.com'],
    ports: [7844],
    portRanges: [],
    cidrs: ['198.41.192.0/24', '198.41.200.0/24'],
  },
  {
    daemon: 'cloudflare-warp',
    names: ['warp-svc'],
    domains: ['*.cloudflareclient.com', 'cloudflareclient.com', 'cloudflare-dns.com', '*.cloudflare-gateway.com'],
    ports: [2408, 500, 1701, 4500],
    portRanges: [],
    cidrs: ['162.159.193.0/24', '162.159.36.1/32', '162.159.46.1/32'],
    rangePorts: { '162.159.36.1/32': [443, 853], '162.159.46.1/32': [443, 853] },
  },
  {
    daemon: 'openvpn',
    names: ['openvpn'],
    domains: [],
    ports: [1194],
    portRanges: [],
    cidrs: [],
  },
  {
    daemon: 'wireguard',
    names: ['wireguard', 'wireguard-go', 'wg-quick'],
    domains: [],
    ports: [51820],
    portRanges: [],
    cidrs: [],
  },
];

/**
 * A daemon that reaches only servers its user chooses (OpenVPN, WireGuard): it has no domains or
 * address ranges of its own, so its port is its whole signature. A renamed binary that calls its own
 * server on that port looks just like it; what tells them apart is whose server it is, which only
 * the user knows (suggestion.ts narrows such a daemon's rule to the servers seen).
 */
export function portOnly(sig: VpnSignature): boolean {
  return sig.domains.length === 0 && sig.cidrs.length === 0;
}

/** Every normalised VPN daemon name (the list plus the Windows/macOS forms). */
export const VPN_PROCESS_NAMES: readonly string[] = VPN_SIGNATURES.flatMap((s) => s.names);

/** The names of the daemons whose port is their whole signature (portOnly). */
export const PORT_ONLY_PROCESS_NAMES: readonly string[] = VPN_SIGNATURES.filter(portOnly).flatMap((s) => s.names);

/**
 * The names among `stored` (a store's distinct process names) that claim a daemon (daemonClaim): its
 * own names, every look-alike of one, and every name that extends or contains one. The stores select
 * daemon-named processes by these, so a binary named "tɑilscaled", "tailscaled-helper" or
 * "my-tailscaled" is judged with the daemon's.
 */
export function daemonClaimingNames(stored: Iterable<string>): string[] {
  const out = new Set<string>(VPN_PROCESS_NAMES);
  // judged afresh, past the bounded caches: a store's names are many, and would evict ingest's
  for (const n of stored) {
    const name = normalizeProcessName(n);
    if (byName.has(name) || containedDaemonName(name) !== null || drawnLike(name, VPN_PROCESS_NAMES) !== null) out.add(n);
  }
  return [...out];
}

const byName = new Map<string, VpnSignature>();
for (const s of VPN_SIGNATURES) for (const n of s.names) byName.set(n, s);
/** Longest first: "zerotier-one-x" extends zerotier-one, not zerotier. */
const NAMES_LONGEST_FIRST = [...VPN_PROCESS_NAMES].sort((a, b) => b.length - a.length);

/**
 * The daemon's name a (normalised) process name extends, or null: the name begins with a daemon's
 * name and goes on ("tailscaled-helper", "tailscaled.old", "tailscaled2", "cloudflared-linux-amd64",
 * and the kernel's 15-byte cut "twingate-connec"). A rule's glob over the daemon's name
 * (`process=tailscaled*`) covers such a name too, so a payload renamed so would pass under a rule
 * written for the daemon unless it is judged. A daemon's own name is no extension of another
 * ("tailscaled" is tailscale's daemon, not an extension of "tailscale").
 */
export function extendedDaemonName(name: string): string | null {
  if (byName.has(name)) return null;
  return NAMES_LONGEST_FIRST.find((n) => name.length > n.length && name.startsWith(n)) ?? null;
}

/**
 * The daemon's name a (normalised) process name holds anywhere without being it, or null: the name it
 * extends (extendedDaemonName) first, else the longest daemon's name inside it ("my-tailscaled",
 * "x-tailscaled", "run_tailscaled", "xtailscaledx", "networkmanager-openvpn"). A rule's glob with a
 * leading star (`process=*tailscaled*`) covers such a name as `tailscaled*` covers an extension, so a
 * payload renamed so would pass under it unless it is judged. Short daemon names sit inside
 * legitimate programs' names (NetworkManager's `nm-openvpn-service`, `nm-wireguard-service`): such a
 * name is judged only by binary evidence (impostor.ts extensionContradiction), never by where it
 * calls.
 */
export function containedDaemonName(name: string): string | null {
  if (byName.has(name)) return null;
  return extendedDaemonName(name) ?? NAMES_LONGEST_FIRST.find((n) => name.length > n.length && name.includes(n)) ?? null;
}

/**
 * What a process name claims of a VPN / mesh daemon: the daemon's signature, and the daemon's name it
 * extends or contains (containedDaemonName) when it is not the daemon's own name nor drawn like it.
 */
export interface DaemonClaim {
  sig: VpnSignature;
  /**
   * "tailscaled" for "tailscaled-helper" and for "my-tailscaled": the daemon's name this longer name
   * holds; null for a daemon's own name or a look-alike of one
   */
  within: string | null;
}

/**
 * Names already looked up (bounded). Ingest asks once per new call, with the few process names a
 * tenant has: normalising the name each time was a measurable part of the ingest's main thread.
 */
const looked = new Map<string, DaemonClaim | null>();
const LOOKED_MAX = 4_096;

/**
 * The daemon's name a (normalised) process name is drawn like without being it: "tɑilscaled" (Latin
 * alpha), "taılscaled" (dotless i), "tai1scaled", "tаilscaled" (Cyrillic а); null for a daemon's own
 * name and for every name drawn like none (lookalike.ts).
 */
export function daemonLookalike(name: string): string | null {
  if (byName.has(name)) return null;
  let like = lookalikes.get(name);
  if (like === undefined) {
    like = drawnLike(name, VPN_PROCESS_NAMES);
    if (lookalikes.size >= LOOKED_MAX) lookalikes.clear();
    lookalikes.set(name, like);
  }
  return like;
}
const lookalikes = new Map<string, string | null>();

/**
 * The signature of the daemon a process name claims: its own, or the one it is drawn like. A look-alike
 * name is judged as the daemon it shows itself as, and every call of it contradicts that daemon
 * (callContradiction, judgeBinary): a renamed binary that a person reads as tailscaled is a suspected
 * impostor of it, never a process of its own that a rule over its name could silence.
 */
export function vpnSignatureFor(processName: string): VpnSignature | null {
  const claim = daemonClaim(processName);
  return claim !== null && claim.within === null ? claim.sig : null;
}

/**
 * The daemon a process name claims (DaemonClaim): by its own name, a look-alike of it
 * (vpnSignatureFor), or a name that extends or contains it (containedDaemonName). Null for every other
 * name: no call of such a binary is judged against a daemon.
 */
export function daemonClaim(processName: string): DaemonClaim | null {
  let c = looked.get(processName);
  if (c === undefined) {
    const name = normalizeProcessName(processName);
    const own = byName.get(name) ?? byName.get(daemonLookalike(name) ?? '');
    const within = own === undefined ? containedDaemonName(name) : null;
    c = own !== undefined ? { sig: own, within: null } : within !== null ? { sig: byName.get(within)!, within } : null;
    if (looked.size >= LOOKED_MAX) looked.clear();
    looked.set(processName, c);
  }
  return c;
}

interface CompiledSignature {
  sig: VpnSignature;
  domains: { glob: string; m: (v: string) => boolean }[];
  cidrs: { range: IpRange; ports: readonly number[] }[];
}

const compiled = new Map<string, CompiledSignature>();
function compile(sig: VpnSignature): CompiledSignature {
  let c = compiled.get(sig.daemon);
  if (!c) {
    c = {
      sig,
      domains: sig.domains.map((g) => ({ glob: g, m: globMatcher(g) })),
      cidrs: sig.cidrs.map((s) => ({ range: parseIpRange(s)!, ports: sig.rangePorts?.[s] ?? [] })),
    };
    compiled.set(sig.daemon, c);
  }
  return c;
}

/**
 * What a destination says about a daemon claim: the signals it supports (none: an empty list).
 *
 * A domain is judged by name alone when the daemon has a control plane of its own (its signature
 * names domains): its port then vouches for nothing. Otherwise a binary named tailscaled that calls
 * `exfil.example.net:3478` had a supporting signal and no contradiction, was judged genuine, and got
 * a suggested rule pinned to its hash. Only daemons that reach a server of the user's choosing by
 * name (OpenVPN, WireGuard: no domains of their own) are vouched for by their port, as
 * `vpn.corp.example:1194` must be.
 */
export function signatureSignals(sig: VpnSignature, host: string, port: number | null, isIp: boolean): string[] {
  const c = compile(sig);
  const out: string[] = [];
  if (!isIp) {
    const d = c.domains.find((x) => x.m(host));
    if (d) out.push(`${sig.daemon} domain ${d.glob}`);
    else if (c.domains.length) return out;
  }
  const onPort = port !== null && sig.ports.includes(port);
  const inPortRange = port === null ? undefined : sig.portRanges.find(([a, b]) => port >= a && port <= b);
  if (isIp && c.cidrs.length) {
    const r = c.cidrs.find((x) => x.range.contains(host));
    // in a range, on a port of the daemon's or of the range's: a call whose port is unknown (an
    // imported detection may lack it) is not shown to be on one
    if (r && (onPort || inPortRange !== undefined || (port !== null && r.ports.includes(port)))) out.push(`${sig.daemon} address range ${r.range.source}`);
  }
  if (onPort) out.push(`${sig.daemon} port ${port}`);
  if (inPortRange) out.push(`${sig.daemon} port range ${inPortRange[0]}-${inPortRange[1]}`);
  return out;
}

/**
 * True for a signal (signatureSignals) that names one of the daemon's own servers, by domain or by
 * address range, and not its port alone.
 */
export function namesOwnServer(sig: VpnSignature, signal: string): boolean {
  return signal.startsWith(`${sig.daemon} domain `) || signal.startsWith(`${sig.daemon} address range `);
}

/**
 * Package managers, build tools and interpreters by normalised name. The agent records the executable a
 * symlink resolves to, so versioned names are what CI hosts really show: Ubuntu's ruby is ruby3.0, its
 * pip may be pip3.12, perl is perl5.34.0. Build tools run plugins from the registry as a package
 * manager runs install scripts: a Maven, Gradle, NuGet or Go module can start a binary as easily.
 */
const PACKAGE_MANAGER =
  /^(npm|npx|yarn|yarnpkg|pnpm|pnpx|corepack|bun|bunx|pip[0-9.]*|pipx|pipenv|poetry|pdm|uv|uvx|conda|mamba|micromamba|easy_install[0-9.-]*|gem[0-9.]*|bundle|bundler|composer|cargo|mvn|mvnw|gradle|gradlew|sbt|ant|nuget|dotnet|msbuild|go)$/;
// Not PowerShell nor cmd: they are the shells of `run:` steps on Windows runners, as bash is on Linux.
// Windows Script Host, mshta and AppleScript are interpreters no step starts a daemon through.
const INTERPRETER =
  /^(node|node[0-9]+|nodejs|deno|python[0-9.]*w?|pypy[0-9.]*|ruby[0-9.]*|jruby|perl[0-9.]*|php[0-9.]*|php-fpm[0-9.]*|php-cgi|lua[0-9.]*|luajit|java|wscript|cscript|mshta|osascript|rscript|julia|tclsh[0-9.]*|wish[0-9.]*)$/;

/** Where the runner keeps the node it runs JavaScript actions with: `<runner>/externals/node20/bin/node`. */
const RUNNER_NODE = /\/externals\/node\d+\/bin\/node(\.exe)?$/;

/**
 * The temporary directory a binary runs from, or null. No installer puts a VPN daemon where anyone
 * can write and nothing outlives a reboot (the Tailscale action copies tailscaled to /usr/local/bin,
 * packages install to /usr/bin or /usr/sbin, Windows to Program Files); a dropped payload runs from
 * there. The path is the binary's own, as the monitor read it: `/tmp/.x/tailscaled`, or
 * `C:\\Users\\runneradmin\\AppData\\Local\\Temp\\tailscaled.exe`.
 */
export function temporaryDirectory(path: string | null | undefined): string | null {
  if (!path) return null;
  const p = comparablePath(path);
  const m = TEMP_DIR.exec(p) ?? WINDOWS_USER_TEMP.exec(p) ?? RUNNER_TEMP.exec(p) ?? CONTAINER_TEMP.exec(p);
  return m ? m[0] : null;
}

/**
 * The folder a binary runs from when it is one the job or any user writes and no installer uses,
 * other than a temporary one (temporaryDirectory), with what it is; or null:
 * - an action's folder (`<work>/_actions/owner/repo/ref/`): where a compromised JavaScript action's
 *   own files are, its payload included (the tj-actions/changed-files route);
 * - a package's folder (`node_modules/`): where a postinstall script's download lands;
 * - the world-writable lock and crash folders (`/run/lock/`, `/var/lock/`, `/var/crash/`);
 * - a user's cache (`~/.cache/`, macOS's `~/Library/Caches/`).
 * The workspace itself is not among them: a job may build or download a daemon there and run it.
 */
export function jobWritableDirectory(path: string | null | undefined): { dir: string; what: string } | null {
  if (!path) return null;
  const p = comparablePath(path);
  for (const [re, what] of JOB_WRITABLE) {
    const m = re.exec(p);
    if (m) return { dir: m[0], what };
  }
  return null;
}
/**
 * The Actions runner's work folder, as a regex source matching from the path's start: `<home>/work/`
 * on hosted Linux and macOS runners, `D:\\a\\` on hosted Windows ones, `<runner>/_work/` on
 * self-hosted ones, `/__w/` in a job's container. Its `_temp` and `_actions` folders are checked below.
 */
const RUNNER_WORK = String.raw`^(?:[a-z]:\/a\/|(?:[^/]*\/)*?(?:work|_work|__w)\/)`;
const JOB_WRITABLE: readonly (readonly [RegExp, string])[] = [
  [new RegExp(`${RUNNER_WORK}_actions\\/`), "the runner's folder of actions"],
  [/^(?:[^/]*\/)*?node_modules\//, "a package's folder"],
  [/^\/run\/lock\/|^\/var\/lock\/|^\/var\/crash\//, 'a folder any user writes'],
  [/^\/home\/[^/]+\/\.cache\/|^\/root\/\.cache\/|^\/users\/[^/]+\/library\/caches\/|^[a-z]:\/users\/[^/]+\/\.cache\//, "a user's cache"],
];

/**
 * A path as these checks compare it: forward slashes, lower case, normalised, Windows' other names
 * for one file reduced to its drive path.
 */
function comparablePath(path: string): string {
  let p = path.replace(/\\/g, '/').toLowerCase();
  // Windows names one file many ways: the \\?\ and \??\ prefixes, a UNC share of a drive
  // (\\host\C$\), a device path (\Device\HarddiskVolume3\); each is a drive root here
  p = p.replace(/^\/\/[?.]\/(?:unc\/[^/]+\/([a-z])\$\/)?/, (_m, d: string | undefined) => (d ? `${d}:/` : ''));
  p = p.replace(/^\/\?\?\//, '');
  p = p.replace(/^\/\/[^/]+\/([a-z])\$\//, '$1:/');
  p = p.replace(/^\/device\/harddiskvolume\d+\//, 'c:/');
  return posix.normalize(p);
}
const TEMP_DIR =
  /^(?:\/private)?\/tmp\/|^(?:\/private)?\/var\/tmp\/|^\/dev\/shm\/|^\/run\/shm\/|^\/run\/user\/\d+\/|^(?:\/private)?\/var\/folders\/|^[a-z]:\/(?:windows\/)?(?:system)?temp\//;
/** Any account's temporary folder, at any depth (a service account's is under C:\Windows\ServiceProfiles), 8.3 names too. */
const WINDOWS_USER_TEMP = /^[a-z]:\/(?:[^/]+\/)*?(?:appdata|appdat~\d+)\/local\/temp\//;
/**
 * The Actions runner's own temporary folder (RUNNER_TEMP), emptied after every job: step scripts and
 * downloads land there, so a payload can run from it as from /tmp. Hosted Linux and macOS runners
 * have it at `<home>/work/_temp`, Windows ones at `D:\\a\\_temp`, self-hosted runners at
 * `<runner>/_work/_temp`, and a job in a container sees it at `/__w/_temp`.
 */
const RUNNER_TEMP = new RegExp(`${RUNNER_WORK}_temp\\/`);
/** A container's own temporary folders as its host names them (Docker's and containerd's overlay mounts). */
const CONTAINER_TEMP = /^(?:[^/]*\/)*?merged\/(?:tmp|var\/tmp|dev\/shm)\//;


/**
 * A parent chain through a package manager (npm, pip, yarn, ...) or a language interpreter is not how
 * CI actions start VPN daemons: it is how a postinstall script or a dropped payload runs. The runner's
 * own bundled node, which runs JavaScript actions such as OpenVPN connect actions, is not counted:
 * a `node` at the runner's layout (`.../externals/node20/bin/node`) started by Runner.Worker, or the
 * last link known. The path is the process's own claim, so the exemption is as narrow as the layout:
 * any other interpreter, a node elsewhere, or one started by anything but the worker counts.
 */
export function suspiciousParent(chain: { name: string; path?: string | null }[]): string | null {
  for (const [i, link] of chain.entries()) {
    const n = normalizeProcessName(link.name);
    // links beyond the cut were never seen: what they hide cannot be ruled out (process-name.ts)
    if (n === CHAIN_CUT) return CHAIN_CUT;
    if (PACKAGE_MANAGER.test(n)) return n;
    if (INTERPRETER.test(n)) {
      if (n === 'node' && RUNNER_NODE.test((link.path ?? '').replace(/\\/g, '/').toLowerCase())) {
        const next = chain[i + 1];
        if (next === undefined || normalizeProcessName(next.name) === 'runner.worker') continue;
      }
      return n;
    }
  }
  return null;
}
