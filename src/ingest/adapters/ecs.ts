/**
 * ecs format: Elastic Common Schema network events, one document per NDJSON line. Shapes checked
 * against Auditbeat system/socket, Elastic Defend network events (endpoint-package) and the Sysmon
 * samples of the `windows` integration; see test/fixtures/README.md for the sources.
 *
 * Fields read (nested objects, dotted flat keys like `"process.name": "curl"`, or any mix of the two):
 *   @timestamp (RFC 3339 or epoch millis)          → timestamp
 *   basename(process.executable) | process.name    → process.name (the name given may be a comm)
 *   process.executable, process.hash.sha256, process.pid
 *   process.parent.{name, executable, hash.sha256, pid}
 *   process.entity_id, process.parent.entity_id, process.Ext.ancestry (Elastic Defend: ids, no names)
 *   destination.domain, destination.ip (fallback: destination.address, IP or domain); for a Sysmon
 *     event 3, destination.domain is a reverse lookup and names the call only when it is risky
 *   url.domain, server.domain, tls.client.server_name, the host of url.full / url.original, and
 *     destination.address beside destination.ip: name the call only when risky (the process chose them)
 *   destination.port (number or string)
 *   network.transport (tcp/udp; other transports leave protocol unset)
 *   network.direction: ingress / inbound are not calls; internal / external / unknown are, and counted;
 *     an array decides only when all its values say the same way (else uncertain: a call)
 *   dns.question.name + dns.resolved_ip            → names the IPs of later connections of the job
 *   event.type containing "denied", or event.outcome / event.action mentioning
 *     deny/denied/block/blocked/drop/reject                  → status blocked
 *   labels.tenant                                  → tenant (else rc.tenant)
 *   labels.{owner, repo, workflow, job, run_id, run_attempt, job_id}, or the GitHub-style
 *     labels.{github_repository ("owner/repo"), github_repository_owner, github_workflow, github_job,
 *     github_run_id, github_run_attempt, github_job_id}; missing ones fall back to rc.defaults.
 *
 * What is kept, skipped and counted (the counts appear under "notes" in the ingest summary):
 * - `network.direction` ingress / inbound (an Auditbeat inbound sshd socket) and Defend's
 *   `connection_accepted` are not calls: skipped, `skipped-not-egress`. A document without
 *   network.direction is taken as a call. One whose direction is `internal`, `external`, `unknown`
 *   or any other value is taken as a call too, counted as `direction-uncertain`: skipping it could
 *   drop a real call unseen. A document to a loopback address is skipped as not egress, whatever its
 *   direction or with none.
 * - A DNS document (dns.question.name + dns.resolved_ip, e.g. Sysmon event 22, Packetbeat, Defend
 *   lookups) yields `{kind: 'dns'}`: the parser names the IPs for later connections of the same job.
 *   When the same document also has a destination, it is both a call and DNS answers; a lookup of
 *   a risky name is always a call to that name (riskyLookup), also when the document's destination
 *   is the resolver the query went to.
 * - A document with no destination in the network category (auditd `config_change`, a DNS event
 *   with no answer) is skipped, `skipped-no-destination`; one of another category, `skipped-not-network`.
 *   One with no destination and no event.category is rejected as missing its destination.
 * - Process events (event.category process, not network) are remembered by process.entity_id, so a
 *   Defend network event's process.parent.entity_id / process.Ext.ancestry resolve to names, paths
 *   and hashes (`process-events`). An ancestor not seen before in the source is stored as one
 *   "Unknown" link: the chain is unknown, not empty.
 * - A denied event with no process (a firewall log) is kept with the Unknown tool, as Harden-Runner
 *   does for packets only its firewall saw; so is any call naming no process (`process-unknown`).
 * - A `{"context": {...}}` line is accepted as in the harden-runner format.
 * - A Sysmon event as Winlogbeat ships it before any ingest pipeline (raw `winlog.event_data`) is read
 *   through the fields the `windows` integration's pipeline would map (sysmon-raw.ts).
 */
import { normalizeDomain } from '../../domain/dns-name.js';
import { clip } from '../../domain/clip.js';
import { isLoopbackIp } from '../../domain/ip.js';
import type { CallStatus, JobContext, NetworkCallEvent, ProcessInfo, Protocol } from '../../domain/types.js';
import { askerKey, RecordError, type AdapterOutput, type RecordAdapter, type RecordContext, type ResolvedNames } from './types.js';
import { ProcessTable } from './ecs-processes.js';
import { sysmonEcsView } from './sysmon-raw.js';
import {
  ContextBuilder,
  basename,
  fail,
  hostOut,
  isObject,
  makeProcess,
  executableName,
  missing,
  noteOf,
  normalizeIp,
  optNonNegInt,
  optString,
  parseContextLine,
  readHost,
  readPort,
  readSha256,
  readTenant,
  readTimestamp,
  typeName,
  UNKNOWN_TOOL,
  DNS_PORT,
  riskyInName,
  riskyListOf,
  wrongType,
  type ContextFieldNames,
  type Obj,
} from './validate.js';

/** A dotted ECS field path with every contiguous dotted sub-key precomputed. */
class EcsPath {
  readonly name: string;
  private readonly n: number;
  /** keys[from][to] = segs.slice(from, to).join('.') */
  private readonly keys: string[][];

  constructor(name: string) {
    this.name = name;
    const segs = name.split('.');
    this.n = segs.length;
    this.keys = [];
    for (let from = 0; from < segs.length; from++) {
      const row: string[] = [];
      for (let to = 0; to <= segs.length; to++) row.push(to > from ? segs.slice(from, to).join('.') : '');
      this.keys.push(row);
    }
  }

  /**
   * The field's value, whichever way the document spells it. Two spellings with different values
   * (`{"destination": {"domain": "x.example"}, "destination.domain": "webhook.site"}`) are refused:
   * Elasticsearch indexes both as one field holding both values, and taking either one would drop
   * the other unseen, a risky destination among them.
   */
  get(o: Obj): unknown {
    const found: unknown[] = [];
    const none = this.walk(o, 0, found);
    if (found.length === 0) return none;
    const first = found[0];
    for (let i = 1; i < found.length; i++) {
      const v = found[i];
      if (v !== first && JSON.stringify(v) !== JSON.stringify(first)) {
        throw new RecordError('conflicting-field', this.name, `${this.name} is written two ways with different values (${show(first)} and ${show(v)}): taking one would drop the other unseen`);
      }
    }
    return first;
  }

  /** Pushes every non-null value a spelling holds into `found`; returns null when one holds null, else undefined. */
  private walk(o: Obj, from: number, found: unknown[]): null | undefined {
    const row = this.keys[from]!;
    // A null hides nothing: `{"destination": {"ip": null}, "destination.ip": "…"}` has the address.
    // It is the answer only when no spelling holds a value.
    let none: null | undefined;
    for (let to = from + 1; to <= this.n; to++) {
      const v = o[row[to]!];
      if (v === undefined) continue;
      if (v === null) {
        none = null;
        continue;
      }
      if (to === this.n) found.push(v);
      else if (isObject(v) && this.walk(v, to, found) === null) none = null;
    }
    return none;
  }
}

/** A value as a message quotes it: as JSON (a string in its quotes), clipped. */
function show(v: unknown): string {
  return clip(JSON.stringify(v) ?? String(v));
}

const P = (name: string) => new EcsPath(name);
export const F = {
  timestamp: P('@timestamp'),
  procName: P('process.name'),
  procExe: P('process.executable'),
  procSha: P('process.hash.sha256'),
  procPid: P('process.pid'),
  parentName: P('process.parent.name'),
  parentExe: P('process.parent.executable'),
  parentSha: P('process.parent.hash.sha256'),
  parentPid: P('process.parent.pid'),
  dstDomain: P('destination.domain'),
  dstIp: P('destination.ip'),
  dstAddress: P('destination.address'),
  dstPort: P('destination.port'),
  transport: P('network.transport'),
  direction: P('network.direction'),
  dnsName: P('dns.question.name'),
  dnsIps: P('dns.resolved_ip'),
  entityId: P('process.entity_id'),
  parentEntityId: P('process.parent.entity_id'),
  ancestry: P('process.Ext.ancestry'),
  outcome: P('event.outcome'),
  action: P('event.action'),
  provider: P('event.provider'),
  urlDomain: P('url.domain'),
  urlFull: P('url.full'),
  urlOriginal: P('url.original'),
  serverDomain: P('server.domain'),
  tlsServerName: P('tls.client.server_name'),
  code: P('event.code'),
  type: P('event.type'),
  category: P('event.category'),
  tenant: P('labels.tenant'),
  owner: P('labels.owner'),
  repo: P('labels.repo'),
  workflow: P('labels.workflow'),
  job: P('labels.job'),
  runId: P('labels.run_id'),
  runAttempt: P('labels.run_attempt'),
  jobId: P('labels.job_id'),
  ghRepository: P('labels.github_repository'),
  ghOwner: P('labels.github_repository_owner'),
  ghWorkflow: P('labels.github_workflow'),
  ghJob: P('labels.github_job'),
  ghRunId: P('labels.github_run_id'),
  ghRunAttempt: P('labels.github_run_attempt'),
  ghJobId: P('labels.github_job_id'),
};

const ECS_FIELDS: ContextFieldNames = {
  owner: 'labels.owner',
  repo: 'labels.repo',
  workflow: 'labels.workflow',
  job: 'labels.job',
  runId: 'labels.run_id',
  runAttempt: 'labels.run_attempt',
  jobId: 'labels.job_id',
};

const BLOCKED_RE = /den(?:y|ied)|block|drop|reject/i;

function mentionsBlocked(value: unknown): boolean {
  if (typeof value === 'string') return BLOCKED_RE.test(value);
  if (Array.isArray(value)) return value.some((v) => typeof v === 'string' && BLOCKED_RE.test(v));
  return false;
}

function ecsStatus(doc: Obj): CallStatus {
  const type = F.type.get(doc);
  if (type === 'denied' || (Array.isArray(type) && type.includes('denied'))) return 'blocked';
  if (mentionsBlocked(F.outcome.get(doc)) || mentionsBlocked(F.action.get(doc))) return 'blocked';
  return 'allowed';
}

function ecsProtocol(value: unknown): Protocol | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') return wrongType('network.transport', 'a string', value);
  const v = value.toLowerCase();
  return v === 'tcp' || v === 'udp' ? v : undefined;
}

/** `primary` in doc, else `fallback` (looked up only when needed). */
function first(doc: Obj, primary: EcsPath, fallback: EcsPath): unknown {
  const a = primary.get(doc);
  return a === undefined || a === null || a === '' ? fallback.get(doc) : a;
}

function hasValue(field: unknown, value: string): boolean {
  return field === value || (Array.isArray(field) && field.includes(value));
}

/** A Sysmon network connection (event 3), as the `windows` integration maps it. */
function isSysmonConnection(doc: Obj): boolean {
  const code = F.code.get(doc);
  return F.provider.get(doc) === 'Microsoft-Windows-Sysmon' && (code === '3' || code === 3);
}

/**
 * `v` as a canonical host name when it is a risky destination, else null. Any ECS field may hold an
 * array: each string in it is read, so a risky name is not missed for being listed (an array once
 * left the call filed under its bare address, which a rule may hide).
 */
function riskyName(v: unknown, rc: RecordContext): string | null {
  if (Array.isArray(v)) {
    for (const x of v) {
      const name = typeof x === 'string' ? riskyName(x, rc) : null;
      if (name !== null) return name;
    }
    return null;
  }
  if (typeof v !== 'string' || v === '') return null;
  const name = normalizeDomain(v);
  // A name that is no DNS name is read leniently (riskyInName): anomalous already, it fails closed.
  // An address is no name, and holds none: spared the fold (Defend writes every destination.ip
  // again as destination.address; folding each doubled the time to read a document).
  if (name === null) return normalizeIp(v) !== null ? null : riskyInName(v, rc);
  return riskyListOf(rc).matchHost(name) !== null ? name : null;
}

/**
 * A risky destination named by url.domain, server.domain, tls.client.server_name, the host of
 * url.full or url.original, or a destination.address beside destination.ip, if any: each is the
 * process's or the producer's word for where the call went, read only to flag it.
 */
function riskyChosenName(doc: Obj, rc: RecordContext, dstIp: unknown): string | null {
  for (const path of [F.tlsServerName, F.urlDomain, F.serverDomain]) {
    const name = riskyName(path.get(doc), rc);
    if (name !== null) return name;
  }
  const addressRaw = F.dstAddress.get(doc);
  // mostly destination.ip again (Elastic Defend; `dstIp` as the document gives it): an address names nothing
  const address = addressRaw === dstIp ? null : riskyName(addressRaw, rc);
  if (address !== null) return address;
  for (const path of [F.urlFull, F.urlOriginal]) {
    const name = riskyUrlHost(path.get(doc), rc);
    if (name !== null) return name;
  }
  return null;
}

/**
 * The risky destination a URL (or an array of them) goes to: its host as a URL parser reads it
 * (userinfo, path and query are not where it goes, so `https://cdn.example/?to=webhook.site` names
 * nothing), and a path alone names none. Anything else no parser reads as a URL with a host, such as
 * a proxy log's bare `webhook.site:443`, is read leniently like a name (riskyInName): anomalous
 * already, it fails closed.
 */
function riskyUrlHost(v: unknown, rc: RecordContext): string | null {
  if (Array.isArray(v)) {
    for (const x of v) {
      const name = riskyUrlHost(x, rc);
      if (name !== null) return name;
    }
    return null;
  }
  if (typeof v !== 'string' || v === '') return null;
  // a path alone (Packetbeat's url.original is the request target) names no host
  if (v.startsWith('/') && !v.startsWith('//')) return null;
  let host: string | null = null;
  try {
    const u = new URL(v.startsWith('//') ? `http:${v}` : v);
    // only a URL with a network host: `webhook.site:443` parses with the scheme "webhook.site:"
    if (u.host !== '' && (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:' || u.protocol === 'ftp:')) host = u.hostname;
  } catch {
    host = null;
  }
  // an address host is no name (normalizeDomain refuses it) and holds none of the list's names
  return host === null ? riskyInName(v, rc) : riskyName(host, rc);
}

/**
 * Which way network.direction says the connection went: `out` (egress, outbound), `in` (ingress,
 * inbound), `uncertain` for any other value, null when absent. `internal` and `external` describe
 * the connection from a network perimeter's side (both ends inside, or neither), and `unknown` says
 * nothing: an Auditbeat flow, or a runner with a public address, marks its own outgoing calls so.
 */
function directionOf(doc: Obj): 'out' | 'in' | 'uncertain' | null {
  const d = F.direction.get(doc);
  if (d === undefined || d === null || d === '') return null;
  // Any ECS field may hold an array. Only values that all say the same way decide it: one that says
  // both, or anything else, is uncertain, so the document is still taken as a call.
  if (Array.isArray(d)) {
    if (d.length === 0) return null;
    const ways = new Set(d.map((x) => (typeof x === 'string' ? directionWord(x) : wrongType('network.direction', 'a string or an array of strings', x))));
    return ways.size === 1 ? [...ways][0]! : 'uncertain';
  }
  if (typeof d !== 'string') return wrongType('network.direction', 'a string or an array of strings', d);
  return directionWord(d);
}

function directionWord(d: string): 'out' | 'in' | 'uncertain' {
  const v = d.toLowerCase();
  if (v === 'egress' || v === 'outbound') return 'out';
  if (v === 'ingress' || v === 'inbound') return 'in';
  return 'uncertain';
}

/** A process's name and executable (executableName: the executable's basename when known). */
function nameOf(nameRaw: unknown, exeRaw: unknown, prefix: string, rc?: RecordContext): { name: string | undefined; exe: string | undefined } {
  const exe = optString(exeRaw, `${prefix}.executable`);
  const given = optString(nameRaw, `${prefix}.name`);
  const name = executableName(given, exe);
  if (rc !== undefined && given !== undefined && name !== given) noteOf(rc, 'process-name-from-executable');
  return { name, exe };
}

export class EcsAdapter implements RecordAdapter {
  readonly format = 'ecs' as const;
  private readonly ctx = new ContextBuilder();
  /** process events seen earlier in this source, for Defend's parent references */
  private readonly processes = new ProcessTable();

  /** The tenant and job run leg a document belongs to. */
  private where(doc: Obj, rc: RecordContext): [string, JobContext] {
    const labelsTenant = F.tenant.get(doc);
    const tenant = labelsTenant === undefined ? rc.tenant : readTenant(labelsTenant, 'labels.tenant', rc.tenant);
    const ctx = this.ctx.build(
      first(doc, F.owner, F.ghOwner),
      first(doc, F.repo, F.ghRepository),
      first(doc, F.workflow, F.ghWorkflow),
      first(doc, F.job, F.ghJob),
      first(doc, F.runId, F.ghRunId),
      first(doc, F.runAttempt, F.ghRunAttempt),
      first(doc, F.jobId, F.ghJobId),
      rc.defaults,
      ECS_FIELDS,
    );
    return [tenant, ctx];
  }

  /** The answers of a lookup that is no call; null when it names no job run, or nothing usable. */
  private answersOf(doc: Obj, rc: RecordContext): ResolvedNames | null {
    let where: [string, JobContext];
    try {
      where = this.where(doc, rc);
    } catch (err) {
      // a document that is no call was never required to name its job: skipped as before
      if (err instanceof RecordError) return null;
      throw err;
    }
    return this.names(doc, ...where, rc);
  }

  /**
   * A lookup of a risky name is a contact with it: DNS-callback services (oastify, interact.sh, ...)
   * take data as the name itself, so no connection need follow. The lookup is reported as a call to
   * the name on UDP 53 by the process that asked (the Unknown tool when the document names none, as
   * Packetbeat's), never suppressed like any call to a risky destination, and evidence against a
   * daemon-named asker. Its answers, if any, still name later calls. Null for any other lookup.
   */
  private riskyLookup(doc: Obj, tenant: string, ctx: JobContext, names: ResolvedNames | null, rc: RecordContext): AdapterOutput | null {
    const domain = riskyName(F.dnsName.get(doc), rc);
    if (domain === null) return null;
    noteOf(rc, 'risky-lookup');
    const timestamp = readTimestamp(F.timestamp.get(doc), '@timestamp');
    const process = this.namesProcess(doc) ? this.process(doc, false, rc) : makeProcess(UNKNOWN_TOOL, undefined, undefined, undefined, null);
    const event: NetworkCallEvent = { tenant, ctx, timestamp, domain, port: DNS_PORT, protocol: 'udp', process, status: 'allowed' };
    return names === null ? { kind: 'call', event } : { kind: 'call', event, names };
  }

  /** True when the document names its process, itself or through a process event seen earlier. */
  private namesProcess(doc: Obj): boolean {
    if (nameOf(F.procName.get(doc), F.procExe.get(doc), 'process').name !== undefined) return true;
    const id = F.entityId.get(doc);
    return typeof id === 'string' && this.processes.get(id)?.name !== undefined;
  }

  private process(doc: Obj, blocked: boolean, rc: RecordContext): ProcessInfo {
    const { name: procName, exe } = nameOf(F.procName.get(doc), F.procExe.get(doc), 'process', rc);
    const ownSha = readSha256(F.procSha.get(doc), 'process.hash.sha256', rc);
    // Defend gives no hash on network events: look the process up only when something is missing.
    const entityId = procName !== undefined && ownSha !== undefined ? undefined : optString(F.entityId.get(doc), 'process.entity_id');
    const known = entityId === undefined ? undefined : this.processes.get(entityId);
    const name = procName ?? known?.name;
    if (name === undefined) {
      // A firewall log knows the packet, not the process: the agent's Unknown tool. So does an
      // Auditbeat flow of a process whose start it did not see (system/socket state.go writes only
      // process.pid then, or no process at all): rejecting it lost the call, webhook.site or not.
      if (!blocked) noteOf(rc, 'process-unknown');
      return makeProcess(UNKNOWN_TOOL, undefined, undefined, undefined, null);
    }
    const sha = ownSha ?? known?.sha256;
    const pid = optNonNegInt(F.procPid.get(doc), 'process.pid') ?? known?.pid;
    let parent: ProcessInfo | null = null;
    const p = nameOf(F.parentName.get(doc), F.parentExe.get(doc), 'process.parent');
    if (p.name !== undefined) {
      parent = makeProcess(
        p.name,
        p.exe,
        readSha256(F.parentSha.get(doc), 'process.parent.hash.sha256', rc),
        optNonNegInt(F.parentPid.get(doc), 'process.parent.pid'),
        null,
      );
    } else {
      const parentId = optString(F.parentEntityId.get(doc), 'process.parent.entity_id');
      const ancestry = F.ancestry.get(doc);
      if (ancestry !== undefined && ancestry !== null && !Array.isArray(ancestry)) {
        return wrongType('process.Ext.ancestry', 'an array of entity ids', ancestry);
      }
      const selfId = entityId ?? optString(F.entityId.get(doc), 'process.entity_id');
      const ids: string[] = [];
      if (Array.isArray(ancestry)) for (const a of ancestry) if (typeof a === 'string' && a !== '' && a !== selfId) ids.push(a);
      if (parentId !== undefined && parentId !== selfId && ids[0] !== parentId) ids.unshift(parentId);
      const self = known ?? (selfId === undefined ? undefined : this.processes.get(selfId));
      if (ids.length === 0 && self?.parentId !== undefined) ids.push(self.parentId);
      if (ids.length > 0) parent = this.processes.chain(ids, rc);
    }
    return makeProcess(name, exe ?? known?.executable, sha, pid, parent);
  }

  /** DNS answers in the document, or null (a name that is no DNS name, or no IP, names nothing). */
  private names(doc: Obj, tenant: string, ctx: JobContext, rc: RecordContext): ResolvedNames | null {
    const q = F.dnsName.get(doc);
    const raw = F.dnsIps.get(doc);
    if (typeof q !== 'string' || q === '' || raw === undefined || raw === null) return null;
    const domain = normalizeDomain(q) ?? riskyInName(q, rc);
    const ips: string[] = [];
    for (const v of Array.isArray(raw) ? raw : [raw]) {
      const ip = typeof v === 'string' ? normalizeIp(v) : null;
      if (ip !== null) ips.push(ip);
    }
    if (domain === null || ips.length === 0) {
      noteOf(rc, 'dns-unusable');
      return null;
    }
    // read as a call reads them (process()), but a bad value only leaves the asker unknown
    let asker: string | undefined;
    try {
      asker = askerKey(optNonNegInt(F.procPid.get(doc), 'process.pid'), nameOf(F.procName.get(doc), F.procExe.get(doc), 'process').name);
    } catch {
      asker = undefined;
    }
    return asker === undefined ? { tenant, ctx, domain, ips } : { tenant, ctx, domain, ips, asker };
  }

  parse(record: unknown, rc: RecordContext): AdapterOutput {
    if (!isObject(record)) return fail('wrong-type', null, `record must be a JSON object, got ${typeName(record)}`);
    // a Sysmon event as Winlogbeat ships it before any pipeline: read through the fields it would map
    const doc = sysmonEcsView(record) ?? record;
    if (doc.context !== undefined && doc['@timestamp'] === undefined) {
      return { kind: 'context', ctx: parseContextLine(doc.context) };
    }
    const category = F.category.get(doc);
    const network = hasValue(category, 'network');
    if (hasValue(category, 'process') && !network) {
      this.processes.remember(doc, F, rc);
      noteOf(rc, 'process-events');
      return { kind: 'skip' };
    }
    const isDns = F.dnsName.get(doc) !== undefined;
    const direction = directionOf(doc);
    // an array, as ECS allows for any keyword (network.direction and event.type are read the same way)
    if (direction === 'in' || hasValue(F.action.get(doc), 'connection_accepted')) return this.notACall(doc, isDns, rc);

    let domainRaw = F.dstDomain.get(doc);
    let ipRaw = F.dstIp.get(doc);
    const ipGiven = ipRaw;
    // Sysmon's DestinationHostname (mapped to destination.domain) is a reverse lookup of the address,
    // whose owner writes it: an attacker's server can call itself registry.npmjs.org. Such a call is
    // stored by its address, named only by what a DNS lookup gave (record-parser.ts), unless the
    // reverse name is a risky destination: then it flags the call.
    let reverseName: unknown;
    if (domainRaw !== undefined && domainRaw !== null && ipRaw !== undefined && ipRaw !== null && isSysmonConnection(doc)) {
      reverseName = domainRaw;
      domainRaw = undefined;
    }
    let destination = true;
    if ((domainRaw === undefined || domainRaw === null) && (ipRaw === undefined || ipRaw === null)) {
      const address = F.dstAddress.get(doc);
      if (typeof address === 'string' && address !== '') {
        if (normalizeIp(address) !== null) ipRaw = address;
        else domainRaw = address;
      } else {
        destination = false;
      }
    }
    // A direction that does not say "out" is taken as a call: skipping it could drop a real egress
    // call (webhook.site) unseen. Only a connection to this host itself surely is none, whatever the
    // direction says or whether it says anything: a lookup sent to the local resolver stub (Defend's
    // Linux lookup_result to 127.0.0.53 carries no network.direction), a job's local database. Unless
    // it names a risky destination: a request through a local proxy (Packetbeat's url.full) is the
    // calling process's contact with it, which the proxy's own connection no longer shows.
    if (typeof ipRaw === 'string' && isLoopbackIp(ipRaw) && riskyName(domainRaw, rc) === null && riskyChosenName(doc, rc, ipGiven) === null) {
      return this.notACall(doc, isDns, rc);
    }
    if (!destination && !isDns && category !== undefined) {
      noteOf(rc, network ? 'skipped-no-destination' : 'skipped-not-network');
      return { kind: 'skip' };
    }

    const [tenant, ctx] = this.where(doc, rc);
    const names = isDns ? this.names(doc, tenant, ctx, rc) : null;
    if (!destination && isDns) {
      const lookup = this.riskyLookup(doc, tenant, ctx, names, rc);
      if (lookup !== null) return lookup;
      if (names !== null) return { kind: 'dns', names };
      noteOf(rc, 'skipped-no-destination');
      return { kind: 'skip' };
    }
    const timestamp = readTimestamp(F.timestamp.get(doc), '@timestamp');
    readHost(domainRaw, 'destination.domain', ipRaw, 'destination.ip', 'destination.domain|destination.ip', rc);
    let domain = hostOut.domain;
    if (hostOut.domainUnusable) noteOf(rc, 'domain-unusable');
    const ip = hostOut.ip;
    if (reverseName !== undefined) {
      const named = riskyName(reverseName, rc);
      if (named !== null) domain = named;
      else noteOf(rc, 'reverse-dns-name-ignored');
    }
    // Names the calling process chose (the URL, the TLS server name) are its own word: as the call's
    // name they could file an attacker's address under a baselined one. They only ever flag.
    const chosen = riskyChosenName(doc, rc, ipGiven);
    if (chosen !== null && chosen !== domain) {
      domain = chosen;
      noteOf(rc, 'named-by-risky-request-name');
    }
    const port = readPort(F.dstPort.get(doc), 'destination.port');
    const protocol = ecsProtocol(F.transport.get(doc));
    const status = ecsStatus(doc);
    // A wire-level lookup (Packetbeat) knows the resolver and the answer, not the process: the
    // answer names later calls, and the lookup itself is no process's call to report, unless it
    // asked for a risky name (riskyLookup).
    if (names !== null && status !== 'blocked' && !this.namesProcess(doc)) return this.riskyLookup(doc, tenant, ctx, names, rc) ?? { kind: 'dns', names };
    // A query a process sent to its resolver: asking for a risky name is the contact that matters (the
    // name carries the data), so the document is that call, as a lookup without a destination is.
    // Stored as the call to the resolver, a rule or baseline over the resolver hid it.
    if (isDns && status !== 'blocked') {
      const lookup = this.riskyLookup(doc, tenant, ctx, names, rc);
      if (lookup !== null) return lookup;
    }
    const process = this.process(doc, status === 'blocked', rc);
    if (direction === 'uncertain') noteOf(rc, 'direction-uncertain');
    const event = { tenant, ctx, timestamp, domain, ip, port, protocol, process, status };
    return names === null ? { kind: 'call', event } : { kind: 'call', event, names };
  }

  /** A document that is no call; a lookup's answers among them still name later calls. */
  private notACall(doc: Obj, isDns: boolean, rc: RecordContext): AdapterOutput {
    const names = isDns ? this.answersOf(doc, rc) : null;
    if (isDns) {
      const [tenant, ctx] = this.where(doc, rc);
      const lookup = this.riskyLookup(doc, tenant, ctx, names, rc);
      if (lookup !== null) return lookup;
    }
    if (names !== null) return { kind: 'dns', names };
    noteOf(rc, 'skipped-not-egress');
    return { kind: 'skip' };
  }
}

export function createEcsAdapter(): EcsAdapter {
  return new EcsAdapter();
}
