/**
 * stepsecurity format: detections exported from the StepSecurity API, imported as they are.
 *
 * The pipeline feeds ONE detection per parse() call: each element of `{"data":{"detections":[...]}}`,
 * of a plain JSON array, or one NDJSON line. (`unwrapStepSecurity` helps when a whole document is in
 * memory.) Fields:
 *   id, owner, repo, run_id, run_attempt, job, job_id, workflow_path, timestamp,
 *   tool {name, sha256, parent: Tool | string | null}, endpoint ("host:port" / "ip:port"),
 *   direct_ip_address, expected_outbound_connections[], is_resolved, is_suppressed, suppress_rule_id,
 *   and the type in detection_id (or type / detection_type; default New-Outbound-Network-Call).
 * - status: resolved if is_resolved, else suppressed if is_suppressed, else a valid `status` string,
 *   else new.
 * - host / ip / port come from splitEndpoint(endpoint); directIp = direct_ip_address when non-empty.
 * - endpoint is required for the network detection types; others (secrets, imposter commits...) may
 *   lack it (stored as ""). A missing tool becomes a process named "Unknown".
 * - Missing context fields fall back to rc.defaults, as in the other formats.
 */
import { normalizeDomain } from '../../domain/dns-name.js';
import { clip } from '../../domain/clip.js';
import { endpointOf, splitEndpoint } from '../../domain/endpoint.js';
import {
  DETECTION_STATUSES,
  DETECTION_TYPES,
  NEW_OUTBOUND,
  type DetectionStatus,
  type ProcessInfo,
} from '../../domain/types.js';
import { readTool } from './harden-runner.js';
import type { AdapterOutput, RecordAdapter, RecordContext } from './types.js';
import {
  ContextBuilder,
  fail,
  invalid,
  isObject,
  makeProcess,
  missing,
  normalizeIp,
  optIdString,
  optIp,
  optProtocol,
  optString,
  readTenant,
  readTimestamp,
  typeName,
  wrongType,
  type ContextFieldNames,
  type Obj,
} from './validate.js';

const NETWORK_TYPES = new Set([
  'New-Outbound-Network-Call',
  'Domain-Blocked',
  'HTTPS-Outbound-Network-Call',
  'Suspicious-Network-Call',
]);

const SS_FIELDS: ContextFieldNames = {
  owner: 'owner',
  repo: 'repo',
  workflow: 'workflow_path',
  job: 'job',
  runId: 'run_id',
  runAttempt: 'run_attempt',
  jobId: 'job_id',
};

/** The detections inside a whole StepSecurity document (envelope or array), or null. */
export function unwrapStepSecurity(doc: unknown): unknown[] | null {
  if (Array.isArray(doc)) return doc;
  if (isObject(doc) && isObject(doc.data) && Array.isArray(doc.data.detections)) return doc.data.detections;
  if (isObject(doc) && Array.isArray(doc.detections)) return doc.detections;
  return null;
}

function optBool(value: unknown, field: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return wrongType(field, 'a boolean', value);
}

function readExpected(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return wrongType('expected_outbound_connections', 'an array', value);
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v === 'string') {
      if (v !== '') out.push(v);
    } else if (isObject(v) && typeof v.endpoint === 'string') {
      out.push(v.endpoint);
    } else if (isObject(v) && typeof v.host === 'string') {
      out.push(v.port !== undefined && v.port !== null ? `${v.host}:${String(v.port)}` : v.host);
    } else {
      return wrongType(`expected_outbound_connections.${i}`, 'a string', v);
    }
  }
  return out;
}

/**
 * The detection type in its one spelling, matched without case; an unknown one is refused. Stored as
 * sent, `New-Outbound-Network-call` or a made-up type was a type of its own: no filter, rule or
 * analysis names it, so a risky call imported under it was shown nowhere but in `detections list`.
 */
function readType(r: Obj): string {
  const raw = r.detection_id ?? r.type ?? r.detection_type;
  const field = r.detection_id !== undefined ? 'detection_id' : r.type !== undefined ? 'type' : 'detection_type';
  const given = optString(raw, field);
  if (given === undefined) return NEW_OUTBOUND;
  const known = DETECTION_TYPES.find((t) => t.toLowerCase() === given.trim().toLowerCase());
  return known ?? invalid(field, `unknown detection type "${clip(given)}": one of ${DETECTION_TYPES.join(', ')}`);
}

export class StepSecurityAdapter implements RecordAdapter {
  readonly format = 'stepsecurity' as const;
  private readonly ctx = new ContextBuilder();

  parse(record: unknown, rc: RecordContext): AdapterOutput {
    if (!isObject(record)) return fail('wrong-type', null, `record must be a JSON object, got ${typeName(record)}`);
    const r = record;
    if (r.id === undefined && r.endpoint === undefined && unwrapStepSecurity(r) !== null) {
      return invalid('data.detections', 'a whole envelope was passed; feed each detection separately');
    }
    const externalId = optIdString(r.id, 'id');
    if (externalId === undefined) return missing('id');
    const type = readType(r);
    const tenant = r.tenant === undefined ? rc.tenant : readTenant(r.tenant, 'tenant', rc.tenant);
    const ctx = this.ctx.build(
      r.owner,
      r.repo,
      r.workflow_path ?? r.workflow,
      r.job,
      r.run_id,
      r.run_attempt,
      r.job_id,
      rc.defaults,
      SS_FIELDS,
    );
    const timestamp = readTimestamp(r.timestamp, 'timestamp');

    let endpoint = optString(r.endpoint, 'endpoint');
    let host: string | undefined;
    let ip: string | undefined;
    let port: number | undefined;
    if (endpoint === undefined) {
      if (NETWORK_TYPES.has(type)) return missing('endpoint');
      endpoint = '';
    } else {
      endpoint = endpoint.trim();
      const parts = splitEndpoint(endpoint);
      if (parts.port !== null) {
        if (parts.port > 65535) return invalid('endpoint', `port out of range in "${clip(endpoint)}"`);
        port = parts.port;
      }
      const asIp = parts.host === '' ? null : normalizeIp(parts.host);
      if (asIp !== null) {
        ip = asIp;
        // the canonical address, so every spelling of it is one endpoint (and matches rules and filters)
        if (port !== undefined) endpoint = endpointOf(undefined, ip, port);
        else endpoint = ip.includes(':') ? `[${ip}]` : ip;
      } else if (parts.host !== '') {
        // A host that is no DNS name is refused, not kept raw: "webhook.site.." or a wildcard would
        // slip past the risky-destination check and the rule guards, which compare canonical names.
        const domain = normalizeDomain(parts.host.trim());
        if (domain === null) return invalid('endpoint', `"${clip(endpoint)}" names no valid host (a DNS name or an IP address)`);
        host = domain;
        endpoint = port !== undefined ? `${host}:${port}` : host;
      }
    }
    const directIp = optIp(r.direct_ip_address, 'direct_ip_address');
    if (ip === undefined && directIp !== undefined && host === undefined) ip = directIp;

    const protocol = r.protocol === undefined ? undefined : optProtocol(r.protocol, 'protocol');
    const process: ProcessInfo =
      r.tool === undefined || r.tool === null ? makeProcess('Unknown', undefined, undefined, undefined, null) : readTool(r.tool, 'tool', 0, rc);
    const expected = readExpected(r.expected_outbound_connections);

    let status: DetectionStatus = 'new';
    if (optBool(r.is_resolved, 'is_resolved')) status = 'resolved';
    else if (optBool(r.is_suppressed, 'is_suppressed')) status = 'suppressed';
    else if (r.is_resolved === undefined && r.is_suppressed === undefined && r.status !== undefined) {
      const s = optString(r.status, 'status');
      if (s !== undefined) {
        if (!(DETECTION_STATUSES as readonly string[]).includes(s)) {
          return invalid('status', `status must be new, suppressed or resolved, got "${clip(s)}"`);
        }
        status = s as DetectionStatus;
      }
    }
    const suppressRuleId = optIdString(r.suppress_rule_id, 'suppress_rule_id');

    return {
      kind: 'detection',
      detection: {
        tenant,
        externalId,
        type,
        ctx,
        timestamp,
        endpoint,
        host,
        ip,
        directIp,
        port,
        protocol,
        process,
        expected,
        status,
        suppressRuleId,
      },
    };
  }
}

export function createStepSecurityAdapter(): StepSecurityAdapter {
  return new StepSecurityAdapter();
}
