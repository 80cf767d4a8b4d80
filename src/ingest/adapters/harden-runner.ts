/**
 * harden-runner format: the Harden-Runner agent's NetworkConnection records, one per NDJSON line.
 *
 *   {"ipAddress": "140.82.112.3", "port": "443(https)", "domainName": "github.com.",
 *    "timestamp": "2025-03-14T10:00:00.123456789Z", "status": "Allowed" | "Dropped",
 *    "tool": {"name": "curl", "sha256": "…", "parent": {"name": "bash", "sha256": "…", "parent": null}},
 *    "matched_policy": "…", "reason": "…"}
 *
 * - The records carry no job context. It comes from rc.defaults: the CLI flags, merged by the
 *   pipeline with the last context line seen. The context line shape (any position, any number):
 *
 *     {"context": {"owner": "acme", "repo": "api", "workflow": ".github/workflows/ci.yml",
 *                  "job": "build", "run_id": 123456789, "run_attempt": 1, "job_id": 987654321}}
 *
 *   (keys optional; camelCase and `repository: "owner/repo"` also accepted; see parseContextLine).
 *   It yields `{kind: 'context'}`. Records may also carry the same snake_case context keys inline.
 * - `status` "Dropped" (or "Blocked") → blocked; absent → allowed.
 * - `tool.name` "Unknown" (firewall-only packets) is kept as a process named "Unknown";
 *   a sha256 of "Unknown" is treated as absent. Container tools `{name: image, sha256: image}` pass as is.
 * - Empty `domainName` → a direct-IP call. `port` is "443" or "443(https)" (numbers accepted too).
 * - `timestamp` may be RFC 3339 or an epoch number (s / ms / µs / ns, by magnitude).
 * - The agent reports no protocol; an optional `protocol` field is honoured if present.
 */
import type { CallStatus, ProcessInfo } from '../../domain/types.js';
import type { AdapterOutput, RecordAdapter, RecordContext } from './types.js';
import {
  ContextBuilder,
  MAX_PARENT_DEPTH,
  clip,
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
  parseContextLine,
  readHost,
  readPort,
  readTenant,
  readTimestamp,
  typeName,
  wrongType,
} from './validate.js';

/** sha256 of a Harden-Runner tool: "Unknown" / "" → absent. */
function toolSha(value: unknown, field: string): string | undefined {
  if (value === 'Unknown' || value === 'unknown') return undefined;
  return optString(value, field);
}

/**
 * Reads a Harden-Runner / StepSecurity `tool` object (recursive `parent`). A string parent is taken
 * as the parent's name. `root` is the field path of the tool ("tool").
 */
export function readTool(value: unknown, root: string, depth: number): ProcessInfo {
  const here = parentPath(root, depth);
  if (!isObject(value)) {
    if (value === undefined || value === null) return missing(here);
    return wrongType(here, 'an object', value);
  }
  const name = value.name;
  if (typeof name !== 'string' || name === '') {
    if (name === undefined || name === null || name === '') return missing(`${here}.name`);
    return wrongType(`${here}.name`, 'a string', name);
  }
  const parentRaw = value.parent;
  let parent: ProcessInfo | null = null;
  if (typeof parentRaw === 'string') {
    if (parentRaw !== '') parent = makeProcess(parentRaw, undefined, undefined, undefined, null);
  } else if (parentRaw !== undefined && parentRaw !== null) {
    if (depth >= MAX_PARENT_DEPTH) return invalid(`${here}.parent`, `parent chain deeper than ${MAX_PARENT_DEPTH}`);
    if (!isObject(parentRaw)) return wrongType(`${here}.parent`, 'an object, a string or null', parentRaw);
    parent = readTool(parentRaw, root, depth + 1);
  }
  const path = value.path;
  const pid = value.pid;
  return makeProcess(
    name,
    path === undefined ? undefined : optString(path, `${here}.path`),
    toolSha(value.sha256, `${here}.sha256`),
    pid === undefined ? undefined : optNonNegInt(pid, `${here}.pid`),
    parent,
  );
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

export class HardenRunnerAdapter implements RecordAdapter {
  readonly format = 'harden-runner' as const;
  private readonly ctx = new ContextBuilder();

  parse(record: unknown, rc: RecordContext): AdapterOutput {
    if (!isObject(record)) return fail('wrong-type', null, `record must be a JSON object, got ${typeName(record)}`);
    const r = record;
    if (r.context !== undefined && r.ipAddress === undefined && r.domainName === undefined) {
      return { kind: 'context', ctx: parseContextLine(r.context) };
    }
    const tenant = r.tenant === undefined ? rc.tenant : readTenant(r.tenant, 'tenant', rc.tenant);
    const ctx = this.ctx.build(r.owner, r.repo, r.workflow, r.job, r.run_id, r.run_attempt, r.job_id, rc.defaults);
    const timestamp = readTimestamp(r.timestamp, 'timestamp');
    readHost(r.domainName, 'domainName', r.ipAddress, 'ipAddress', 'domainName|ipAddress');
    const domain = hostOut.domain;
    const ip = hostOut.ip;
    const port = readPort(r.port, 'port');
    const protocol = r.protocol === undefined ? undefined : optProtocol(r.protocol, 'protocol');
    const process = readTool(r.tool, 'tool', 0);
    const status = hrStatus(r.status);
    return {
      kind: 'call',
      event: { tenant, ctx, timestamp, domain, ip, port, protocol, process, status },
    };
  }
}

export function createHardenRunnerAdapter(): HardenRunnerAdapter {
  return new HardenRunnerAdapter();
}
