/**
 * harden-runner format: the Harden-Runner agent's records, one per NDJSON line. Shapes from
 * step-security/agent apiclient.go (NetworkConnection, DNSRecord, Tool) and eventhandler.go.
 *
 *   NetworkConnection:
 *   {"ipAddress": "140.82.112.3", "port": "443(https)", "domainName": "github.com.",
 *    "timestamp": "2025-03-14T10:00:00.123456789Z", "status": "Allowed" | "Dropped",
 *    "tool": {"name": "curl", "sha256": "…", "parent": {"name": "bash", "sha256": "…", "parent": null}},
 *    "matched_policy": "…", "reason": "…"}
 *
 *   DNSRecord (no port, no tool):
 *   {"domainName": "github.com.", "ipAddress": "140.82.112.3", "timestamp": "…"}
 *
 * - The records carry no job context. It comes from rc.defaults: the CLI flags, merged by the
 *   pipeline with the last context line seen. The context line shape (any position, any number):
 *
 *     {"context": {"owner": "acme", "repo": "api", "workflow": ".github/workflows/ci.yml",
 *                  "job": "build", "run_id": 123456789, "run_attempt": 1, "job_id": 987654321}}
 *
 *   (keys optional; camelCase and `repository: "owner/repo"` also accepted; see parseContextLine).
 *   It yields `{kind: 'context'}`. Records may also carry the same snake_case context keys inline.
 * - A DNSRecord yields `{kind: 'dns'}`: the parser uses it to name the IP for later connections of
 *   the same job that have no domain, as the agent's DNS proxy does. A connection whose IP no DNS
 *   answer named stays a direct-IP call. A DNSRecord of a risky name is a call too (dnsRecord).
 * - `status` "Dropped" (or "Blocked") → blocked; absent → allowed. `matched_policy` and `reason`
 *   are kept on the call.
 * - `tool.name` "Unknown" (firewall-only packets) is kept as a process named "Unknown"; so is the
 *   zero Tool `{"name": "", "sha256": ""}` the agent sends when it knows no executable.
 *   A sha256 that is not 64 hex digits (Go's error text when hashing failed, a container image
 *   name) is no hash: kept as unknown and counted (see readSha256).
 * - Empty `domainName` → a direct-IP call. `port` is "443" or "443(https)" (numbers accepted too).
 * - `timestamp` may be RFC 3339 or an epoch number (s / ms / µs / ns, by magnitude). Go's zero time
 *   `0001-01-01T00:00:00Z` (and anything before 1970) is no time: the record takes the timestamp
 *   of the record before it in the same source (its position), counted as `zero-time-took-previous`;
 *   with no earlier record it is rejected (`zero-time`).
 * - The agent reports no protocol; an optional `protocol` field is honoured if present.
 */
import type { CallStatus, JobContext, ProcessInfo } from '../../domain/types.js';
import { clip } from '../../domain/clip.js';
import { CONTAINER_IMAGE_PATH_PREFIX } from '../../domain/process-name.js';
import type { AdapterOutput, RecordAdapter, RecordContext } from './types.js';
import {
  ContextBuilder,
  MAX_PARENT_DEPTH,
  chainCut,
  fail,
  hostOut,
  invalid,
  isObject,
  makeProcess,
  missing,
  optNonNegInt,
  optProtocol,
  optString,
  parentPath,
  noteOf,
  parseContextLine,
  readHost,
  readSha256,
  UNKNOWN_TOOL,
  DNS_PORT,
  riskyListOf,
  readPort,
  readTenant,
  readTimestamp,
  typeName,
  wrongType,
  type Obj,
} from './validate.js';

/**
 * Reads a Harden-Runner / StepSecurity `tool` object (recursive `parent`). A string parent is taken
 * as the parent's name. `root` is the field path of the tool ("tool"). The agent's zero Tool
 * (`name: ""`) is its Unknown tool.
 */
export function readTool(value: unknown, root: string, depth: number, rc: RecordContext): ProcessInfo {
  const here = parentPath(root, depth);
  if (!isObject(value)) {
    if (value === undefined || value === null) return missing(here);
    return wrongType(here, 'an object', value);
  }
  const name = value.name;
  if (typeof name !== 'string' && name !== undefined && name !== null) return wrongType(`${here}.name`, 'a string', name);
  const parentRaw = value.parent;
  let parent: ProcessInfo | null = null;
  if (typeof parentRaw === 'string') {
    if (parentRaw !== '') parent = makeProcess(parentRaw, undefined, undefined, undefined, null);
  } else if (parentRaw !== undefined && parentRaw !== null) {
    if (!isObject(parentRaw)) return wrongType(`${here}.parent`, 'an object, a string or null', parentRaw);
    // the last link kept stands for the rest when there is more (chainCut)
    const deeper = parentRaw.parent !== undefined && parentRaw.parent !== null && parentRaw.parent !== '';
    parent = depth + 1 >= MAX_PARENT_DEPTH && deeper ? chainCut(rc) : readTool(parentRaw, root, depth + 1, rc);
  }
  const path = value.path;
  const pid = value.pid;
  // A call from a container: the agent names its image twice, as the tool and as its checksum. An
  // image ID (`sha256:…`) is no file's hash, and `attacker/tailscaled:latest` is no tailscaled
  // binary; it is named as the image's repository is (`tailscaled`), so the daemon checks judge it.
  // The agent's own Unknown tool (`{"name": "Unknown", "sha256": "Unknown"}`) is no container.
  if (typeof name === 'string' && name !== '' && value.sha256 === name && name.toLowerCase() !== UNKNOWN_TOOL.toLowerCase() && !/^[0-9a-f]{64}$/i.test(name)) {
    noteOf(rc, 'container-image');
    const p = pid === undefined ? undefined : optNonNegInt(pid, `${here}.pid`);
    return makeProcess(imageName(name), `${CONTAINER_IMAGE_PATH_PREFIX}${name}`, undefined, p, parent);
  }
  return makeProcess(
    typeof name === 'string' && name !== '' ? name : UNKNOWN_TOOL,
    path === undefined ? undefined : optString(path, `${here}.path`),
    readSha256(value.sha256, `${here}.sha256`, rc),
    pid === undefined ? undefined : optNonNegInt(pid, `${here}.pid`),
    parent,
  );
}

/**
 * A container image reference as a process name: its repository's last part, without the registry,
 * the tag or the digest (`ghcr.io/acme/tailscaled:1.2@sha256:…` → `tailscaled`); an image ID
 * (`sha256:…`) as it is.
 */
export function imageName(image: string): string {
  if (/^sha256:[0-9a-f]{64}$/i.test(image)) return image;
  const noDigest = image.split('@')[0]!;
  const last = noDigest.slice(noDigest.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  const name = colon < 0 ? last : last.slice(0, colon);
  return name === '' ? image : name;
}

function hrStatus(value: unknown): CallStatus {
  if (value === undefined || value === null || value === '' || value === 'Allowed') return 'allowed';
  if (value === 'Dropped') return 'blocked';
  if (typeof value !== 'string') return wrongType('status', 'a string', value);
  const v = value.toLowerCase();
  if (v === 'allowed') return 'allowed';
  if (v === 'dropped' || v === 'blocked' || v === 'denied') return 'blocked';
  return invalid('status', `status must be "Allowed" or "Dropped", got "${clip(value)}"`);
}

/** Before 1970: Go's zero time `0001-01-01T00:00:00Z` or an unset epoch, i.e. no time at all. */
function isNoTime(t: number): boolean {
  return t <= 0;
}

export class HardenRunnerAdapter implements RecordAdapter {
  readonly format = 'harden-runner' as const;
  private readonly ctx = new ContextBuilder();
  /** timestamp of the last record with a real one, for records that carry Go's zero time */
  private lastTime: number | null = null;

  private time(value: unknown, rc: RecordContext): number {
    const t = readTimestamp(value, 'timestamp');
    if (!isNoTime(t)) {
      this.lastTime = t;
      return t;
    }
    if (this.lastTime === null) {
      return fail('zero-time', 'timestamp', `no time ("${typeof value === 'string' ? clip(value) : String(value)}", Go's zero time) and no earlier record to take the position of`);
    }
    noteOf(rc, 'zero-time-took-previous');
    return this.lastTime;
  }

  parse(record: unknown, rc: RecordContext): AdapterOutput {
    if (!isObject(record)) return fail('wrong-type', null, `record must be a JSON object, got ${typeName(record)}`);
    const r = record;
    if (r.context !== undefined && r.ipAddress === undefined && r.domainName === undefined) {
      return { kind: 'context', ctx: parseContextLine(r.context) };
    }
    // A FileEvent (apiclient.go: {filetype, timestamp, tool}) says a process wrote a file: no call.
    if (r.filetype !== undefined && r.domainName === undefined && r.ipAddress === undefined && r.port === undefined) {
      noteOf(rc, 'skipped-not-network');
      return { kind: 'skip' };
    }
    const tenant = r.tenant === undefined ? rc.tenant : readTenant(r.tenant, 'tenant', rc.tenant);
    const ctx = this.ctx.build(r.owner, r.repo, r.workflow, r.job, r.run_id, r.run_attempt, r.job_id, rc.defaults);
    if (r.port === undefined && r.tool === undefined && r.status === undefined) return this.dnsRecord(r, tenant, ctx, rc);
    const timestamp = this.time(r.timestamp, rc);
    readHost(r.domainName, 'domainName', r.ipAddress, 'ipAddress', 'domainName|ipAddress', rc);
    const domain = hostOut.domain;
    if (hostOut.domainUnusable) noteOf(rc, 'domain-unusable');
    const ip = hostOut.ip;
    const port = readPort(r.port, 'port');
    const protocol = r.protocol === undefined ? undefined : optProtocol(r.protocol, 'protocol');
    const process = readTool(r.tool, 'tool', 0, rc);
    const status = hrStatus(r.status);
    const matchedPolicy = optString(r.matched_policy, 'matched_policy');
    const reason = optString(r.reason, 'reason');
    return {
      kind: 'call',
      event: { tenant, ctx, timestamp, domain, ip, port, protocol, process, status, matchedPolicy, reason },
    };
  }

  /**
   * A DNSRecord: `domainName` resolved to `ipAddress`; both are required, except for a risky name. A
   * lookup of a risky name is a contact with it, answered or not (DNS-callback services take data as
   * the name itself): reported as a call to the name on UDP 53 by the Unknown tool (the record names
   * no process), never suppressed, as the ECS adapter reports one (ecs.ts riskyLookup).
   */
  private dnsRecord(r: Obj, tenant: string, ctx: JobContext, rc: RecordContext): AdapterOutput {
    const t = readTimestamp(r.timestamp, 'timestamp');
    if (!isNoTime(t)) this.lastTime = t;
    readHost(r.domainName, 'domainName', r.ipAddress, 'ipAddress', 'domainName|ipAddress', rc);
    const ip = hostOut.ip;
    const domain = hostOut.domain;
    if (hostOut.domainUnusable && domain === undefined) {
      // a name that is no DNS name and falls under no risky entry names no address: the address's
      // later connections are direct-IP calls, as after a lookup the agent missed
      noteOf(rc, 'dns-unusable');
      return { kind: 'skip' };
    }
    if (hostOut.domainUnusable) noteOf(rc, 'domain-unusable');
    if (domain === undefined) return missing('domainName');
    // an unanswered lookup names no address, but of a risky name it is the contact itself (a DNS
    // callback carries its data in the name, answered or not)
    const risky = riskyListOf(rc).matchHost(domain) !== null;
    const names = ip === undefined ? undefined : { tenant, ctx, domain, ips: [ip] };
    if (!risky) return names ? { kind: 'dns', names } : missing('ipAddress');
    noteOf(rc, 'risky-lookup');
    const process = makeProcess(UNKNOWN_TOOL, undefined, undefined, undefined, null);
    const event = { tenant, ctx, timestamp: this.time(r.timestamp, rc), domain, port: DNS_PORT, protocol: 'udp' as const, process, status: 'allowed' as const };
    return names ? { kind: 'call', event, names } : { kind: 'call', event };
  }
}

export function createHardenRunnerAdapter(): HardenRunnerAdapter {
  return new HardenRunnerAdapter();
}
