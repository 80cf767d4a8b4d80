/**
 * ecs format: Elastic Common Schema network events, one document per NDJSON line.
 *
 * Fields read (nested objects, dotted flat keys like `"process.name": "curl"`, or any mix of the two):
 *   @timestamp (RFC 3339 or epoch millis)          → timestamp
 *   process.name | basename(process.executable)    → process.name
 *   process.executable, process.hash.sha256, process.pid
 *   process.parent.{name, executable, hash.sha256, pid}
 *   destination.domain, destination.ip (fallback: destination.address, IP or domain)
 *   destination.port (number or string)
 *   network.transport (tcp/udp; other transports leave protocol unset)
 *   event.type containing "denied", or event.outcome / event.action mentioning
 *     deny/denied/block/blocked/drop/reject                  → status blocked
 *   labels.tenant                                  → tenant (else rc.tenant)
 *   labels.{owner, repo, workflow, job, run_id, run_attempt, job_id}, or the GitHub-style
 *     labels.{github_repository ("owner/repo"), github_repository_owner, github_workflow, github_job,
 *     github_run_id, github_run_attempt, github_job_id}; missing ones fall back to rc.defaults.
 * A document with no destination whose event.category excludes "network" (e.g. a process event in
 * a mixed export) is skipped. A `{"context": {...}}` line is accepted as in the harden-runner format.
 */
import type { CallStatus, ProcessInfo, Protocol } from '../../domain/types.js';
import type { AdapterOutput, RecordAdapter, RecordContext } from './types.js';
import {
  ContextBuilder,
  basename,
  fail,
  hostOut,
  isObject,
  makeProcess,
  missing,
  normalizeIp,
  optNonNegInt,
  optString,
  parseContextLine,
  readHost,
  readPort,
  readTenant,
  readTimestamp,
  typeName,
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

  get(o: Obj): unknown {
    return this.walk(o, 0);
  }

  private walk(o: Obj, from: number): unknown {
    const row = this.keys[from]!;
    for (let to = from + 1; to <= this.n; to++) {
      const v = o[row[to]!];
      if (v === undefined) continue;
      if (to === this.n) return v;
      if (isObject(v)) {
        const r = this.walk(v, to);
        if (r !== undefined) return r;
      }
    }
    return undefined;
  }
}

const P = (name: string) => new EcsPath(name);
const F = {
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
  outcome: P('event.outcome'),
  action: P('event.action'),
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

function ecsProcess(doc: Obj): ProcessInfo {
  const exe = optString(F.procExe.get(doc), 'process.executable');
  let name = optString(F.procName.get(doc), 'process.name');
  if (name === undefined && exe !== undefined) name = basename(exe) || undefined;
  if (name === undefined) return missing('process.name');
  const sha = optString(F.procSha.get(doc), 'process.hash.sha256');
  const pid = optNonNegInt(F.procPid.get(doc), 'process.pid');
  let parent: ProcessInfo | null = null;
  const pExe = optString(F.parentExe.get(doc), 'process.parent.executable');
  let pName = optString(F.parentName.get(doc), 'process.parent.name');
  if (pName === undefined && pExe !== undefined) pName = basename(pExe) || undefined;
  if (pName !== undefined) {
    parent = makeProcess(
      pName,
      pExe,
      optString(F.parentSha.get(doc), 'process.parent.hash.sha256'),
      optNonNegInt(F.parentPid.get(doc), 'process.parent.pid'),
      null,
    );
  }
  return makeProcess(name, exe, sha, pid, parent);
}

export class EcsAdapter implements RecordAdapter {
  readonly format = 'ecs' as const;
  private readonly ctx = new ContextBuilder();

  parse(record: unknown, rc: RecordContext): AdapterOutput {
    if (!isObject(record)) return fail('wrong-type', null, `record must be a JSON object, got ${typeName(record)}`);
    const doc = record;
    if (doc.context !== undefined && doc['@timestamp'] === undefined) {
      return { kind: 'context', ctx: parseContextLine(doc.context) };
    }

    let domainRaw = F.dstDomain.get(doc);
    let ipRaw = F.dstIp.get(doc);
    if ((domainRaw === undefined || domainRaw === null) && (ipRaw === undefined || ipRaw === null)) {
      const address = F.dstAddress.get(doc);
      if (typeof address === 'string' && address !== '') {
        if (normalizeIp(address) !== null) ipRaw = address;
        else domainRaw = address;
      } else {
        const category = F.category.get(doc);
        const isNetwork =
          category === undefined ||
          category === 'network' ||
          (Array.isArray(category) && category.includes('network'));
        if (!isNetwork) return { kind: 'skip' };
      }
    }

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
    const timestamp = readTimestamp(F.timestamp.get(doc), '@timestamp');
    readHost(domainRaw, 'destination.domain', ipRaw, 'destination.ip', 'destination.domain|destination.ip');
    const domain = hostOut.domain;
    const ip = hostOut.ip;
    const port = readPort(F.dstPort.get(doc), 'destination.port');
    const protocol = ecsProtocol(F.transport.get(doc));
    const process = ecsProcess(doc);
    const status = ecsStatus(doc);
    return {
      kind: 'call',
      event: { tenant, ctx, timestamp, domain, ip, port, protocol, process, status },
    };
  }
}

export function createEcsAdapter(): EcsAdapter {
  return new EcsAdapter();
}
