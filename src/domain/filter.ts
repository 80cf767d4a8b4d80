import { DETECTION_STATUSES, DETECTION_TYPES, NEW_OUTBOUND, type DetectionStatus, type DetectionType } from './types.js';
import { normalizeProcessName } from './process-name.js';
import { isValidIp } from './endpoint.js';
import { canonicalIp } from './ip.js';
import { parseInstant, TimeParseError } from './time.js';
import { canonicalSha256, notADigest } from './digest.js';

/**
 * The one detection filter parser. Every face (CLI `detections list` and `analyze`, the MCP list and
 * analysis tools, the library analysis) hands it the raw values it received and gets back either a
 * validated, normalised filter or a FilterError naming the argument (as that face spells it) and why.
 *
 * Semantics (docs/mcp.md "Filters" and README "Filters" describe them for users):
 * - type: one or more detection type ids, case-insensitive, each checked against DETECTION_TYPES.
 * - status: new | suppressed | resolved | all; the default is the caller's (it differs per face).
 * - owner, repo: exact names, compared case-insensitively (GitHub names are case-insensitive).
 *   repo is `name` or `owner/name`; `owner/name` together with a different owner is an error.
 * - workflow, job, run id: exact, case-sensitive (workflow files and job names are).
 * - process: normalised like the stored name (basename, `.exe` stripped, lower case), so
 *   `/usr/sbin/tailscaled`, `TAILSCALED.exe` and `tailscaled` select the same detections.
 * - sha256: the process binary's whole digest (domain/digest.ts), case-insensitive (lower-cased
 *   here); a shortened one or a pattern is refused.
 * - endpoint: `host:port`, `[v6]:port`, or a bare host / IP. A bare host matches that host on ANY port
 *   (a filter used to investigate should never hide calls on an unexpected port); host is lower-cased.
 *   Wildcards, URLs and paths are refused rather than silently matching nothing.
 * - since (inclusive) / until (exclusive): parsed by domain/time.ts; since must be before until.
 */

export class FilterError extends Error {
  constructor(
    /** the argument as the caller spelt it, e.g. "--owner" or "owner" */
    readonly argument: string,
    readonly reason: string,
    /** lets faces map type errors to their own "unknown type" handling */
    readonly kind: 'invalid' | 'unknown_type' | 'invalid_time' = 'invalid',
  ) {
    super(`${argument}: ${reason}`);
    this.name = 'FilterError';
  }
}

/** The fields a filter can carry; faces map their own argument names onto these. */
export type FilterField = 'types' | 'status' | 'owner' | 'repo' | 'workflow' | 'job' | 'runId' | 'process' | 'sha256' | 'endpoint' | 'since' | 'until';

/** Raw input exactly as received. Unknown shapes (numbers for names, arrays for scalars) are errors. */
export type RawFilter = Partial<Record<FilterField, unknown>>;

/** A validated, normalised filter. Storage and analysis trust it as-is. */
export interface DetectionFilter {
  /** canonical type ids (DETECTION_TYPES spelling); absent = every type */
  types?: string[];
  /** absent = every status */
  statuses?: DetectionStatus[];
  /** compared case-insensitively */
  owner?: string;
  /** compared case-insensitively */
  repo?: string;
  workflow?: string;
  job?: string;
  runId?: string;
  /** normalised process name (normalizeProcessName) */
  process?: string;
  /** lower-cased digest of the process binary */
  sha256?: string;
  /** lower-cased host or IP (no brackets) */
  host?: string;
  /** only with host; absent = any port */
  port?: number;
  /** epoch ms, inclusive */
  since?: number;
  /** epoch ms, exclusive */
  until?: number;
}

export interface ParseFilterOptions {
  /** how the face spells each field in messages; defaults to the field name */
  names?: Partial<Record<FilterField, string>>;
  /** status used when none is given: 'all' (no status filter) or one status */
  defaultStatus?: DetectionStatus | 'all';
  /** types used when none is given (e.g. analysis defaults to New-Outbound-Network-Call) */
  defaultTypes?: DetectionType[];
  /** the clock for relative ages ("24h") */
  now: number;
}

const STATUS_VALUES = [...DETECTION_STATUSES, 'all'] as const;
const HOST_RE = /^[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?$/;

export function parseDetectionFilter(raw: RawFilter, opts: ParseFilterOptions): DetectionFilter {
  const name = (f: FilterField) => opts.names?.[f] ?? f;
  const fail = (f: FilterField, why: string, kind?: FilterError['kind']) => new FilterError(name(f), why, kind);
  const out: DetectionFilter = {};

  const types = parseDetectionTypes(raw.types, name('types'));
  if (types) out.types = types;
  else if (opts.defaultTypes) out.types = [...opts.defaultTypes];

  const status = raw.status === undefined || raw.status === null || raw.status === '' ? (opts.defaultStatus ?? 'all') : raw.status;
  if (typeof status !== 'string' || !(STATUS_VALUES as readonly string[]).includes(status.toLowerCase())) {
    throw fail('status', `expected one of ${STATUS_VALUES.join(', ')}, got ${show(status)}`);
  }
  if (status.toLowerCase() !== 'all') out.statuses = [status.toLowerCase() as DetectionStatus];

  let owner = githubName(raw.owner, name('owner'));
  let repo = githubName(raw.repo, name('repo'));
  if (repo !== undefined && repo.includes('/')) {
    const split = splitOwnerRepo(repo);
    if (!split) throw fail('repo', `expected "name" or "owner/name", got ${show(raw.repo)}`);
    const [o, r] = split;
    if (owner !== undefined && owner.toLowerCase() !== o.toLowerCase()) {
      throw fail('repo', `"${repo}" belongs to owner "${o}", which conflicts with ${name('owner')} "${owner}"; give one owner`);
    }
    owner = owner ?? o;
    repo = r;
  }
  if (owner !== undefined && owner.includes('/')) throw fail('owner', `expected an owner name without "/", got ${show(raw.owner)}`);
  if (owner !== undefined) out.owner = owner;
  if (repo !== undefined) out.repo = repo;

  const workflow = text(raw.workflow, name('workflow'));
  if (workflow !== undefined) out.workflow = workflow;
  const job = text(raw.job, name('job'));
  if (job !== undefined) out.job = job;
  const runId = text(typeof raw.runId === 'number' ? String(raw.runId) : raw.runId, name('runId'));
  if (runId !== undefined) out.runId = runId;

  const proc = text(raw.process, name('process'));
  if (proc !== undefined) {
    const norm = normalizeProcessName(proc);
    if (/[*?]/.test(norm)) throw fail('process', `wildcards are not supported in filters; give the process name, e.g. "tailscaled"`);
    out.process = norm;
  }

  const sha256 = text(raw.sha256, name('sha256'));
  if (sha256 !== undefined) {
    const digest = canonicalSha256(sha256);
    if (digest === null) throw fail('sha256', `${notADigest(sha256)}, such as the process_sha256 of a detection; got ${show(raw.sha256)}`);
    out.sha256 = digest;
  }

  const endpoint = text(raw.endpoint, name('endpoint'));
  if (endpoint !== undefined) Object.assign(out, parseEndpoint(endpoint, name('endpoint')));

  const since = instant(raw.since, name('since'), opts.now);
  const until = instant(raw.until, name('until'), opts.now);
  if (since !== undefined) out.since = since;
  if (until !== undefined) out.until = until;
  if (since !== undefined && until !== undefined && since >= until) {
    throw fail('since', `must be earlier than ${name('until')} (${new Date(since).toISOString()} is not before ${new Date(until).toISOString()})`, 'invalid_time');
  }
  return out;
}

/** Canonical detection type for a user-supplied name (case-insensitive), or a FilterError listing the valid ones. */
export function parseDetectionType(value: unknown, argument: string): DetectionType {
  if (typeof value !== 'string' || value.trim() === '') throw new FilterError(argument, `expected a detection type: one of ${DETECTION_TYPES.join(', ')}`, 'unknown_type');
  const t = DETECTION_TYPES.find((x) => x.toLowerCase() === value.trim().toLowerCase());
  if (!t) throw new FilterError(argument, `unknown detection type "${value}": use one of ${DETECTION_TYPES.join(', ')}`, 'unknown_type');
  return t;
}

/** The detection type of a rule: New-Outbound-Network-Call when none is given (absent or empty), else one type in any case. */
export function ruleDetectionType(value: string | undefined, argument: string): DetectionType {
  return value === undefined || value === '' ? NEW_OUTBOUND : parseDetectionType(value, argument);
}

/**
 * The detection types a filter argument names: one, a list, or "A,B" (analyze reports detection_id
 * as a comma list), each in any case; undefined when none is given.
 */
export function parseDetectionTypes(value: unknown, argument: string): DetectionType[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) return undefined;
  const names = list.flatMap((v) => (typeof v === 'string' ? v.split(',') : [v]));
  return [...new Set(names.map((v) => parseDetectionType(v, argument)))];
}

/**
 * A repo written `owner/name` split in two, or undefined when it is not exactly that: a bare name,
 * or a malformed one such as `a/b/c` or `/name`. The one reading of the form, for the filters and
 * for the policy (mcp/tool-aliases.ts), so both name the same owner.
 */
export function splitOwnerRepo(repo: string): [owner: string, name: string] | undefined {
  const parts = repo.split('/');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return undefined;
  return parts as [string, string];
}

/**
 * An owner or repo: GitHub names are ASCII, and both stores compare them ignoring ASCII case only,
 * as the policy does. Anything else is refused: PostgreSQL's lower() folds "İ" to "i" where
 * JavaScript folds it to "i̇", so "İnitech" read initech's data past a deny of `initech`.
 */
function githubName(value: unknown, argument: string): string | undefined {
  const v = text(value, argument);
  if (v !== undefined && !/^[\x20-\x7e]+$/.test(v)) throw new FilterError(argument, `expected a GitHub name (ASCII letters, digits, "-", "_", "."), got ${show(value)}`);
  return v;
}

/** A trimmed non-empty string, or undefined when absent. */
function text(value: unknown, argument: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new FilterError(argument, `expected a string, got ${show(value)}`);
  const v = value.trim();
  if (v === '') throw new FilterError(argument, 'is empty; give a value or leave the argument out');
  // no stored value holds one (ingest refuses it), and PostgreSQL refuses it in a query
  if (v.includes('\u0000')) throw new FilterError(argument, `holds a NUL character (U+0000) at character ${v.indexOf('\u0000') + 1}, which no stored value holds`);
  return v;
}

function instant(value: unknown, argument: string, now: number): number | undefined {
  if (value !== undefined && value !== null && typeof value !== 'string' && typeof value !== 'number') {
    throw new FilterError(argument, `expected a time string or epoch milliseconds, got ${show(value)}`, 'invalid_time');
  }
  try {
    return parseInstant(value as string | number | undefined, now);
  } catch (e) {
    if (e instanceof TimeParseError) throw new FilterError(argument, e.message, 'invalid_time');
    throw e;
  }
}

/**
 * An endpoint filter as the list tools read it, written back as text: `host` (any port), `host:port`
 * or `[ipv6]:port`, the host in lower case without a trailing dot, an IP in its canonical form, the
 * port a plain number. How the built-in policy mode reads the argument (mcp/tool-aliases.ts), so
 * `WEBHOOK.SITE.:0443` meets a condition written `webhook.site:443`.
 */
export function endpointFilterText(value: string, argument: string): string {
  const { host, port } = parseEndpoint(value.trim(), argument);
  const h = canonicalIp(host) ?? host;
  if (port === undefined) return h;
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

function parseEndpoint(value: string, argument: string): { host: string; port?: number } {
  const bad = (why: string) => new FilterError(argument, `${why}; expected host:port, [ipv6]:port, or a bare host or IP (any port), e.g. "webhook.site:443"`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.includes('/')) throw bad(`"${value}" looks like a URL or path`);
  if (/[*?\s]/.test(value)) throw bad(`"${value}" contains wildcards or spaces, which filters do not support`);
  let host = value;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (!(isValidIp(host) && host.includes(':'))) throw bad(`"${value}" has brackets around something that is not an IPv6 address`);
  } else if (value.indexOf(':') !== value.lastIndexOf(':')) {
    if (!isValidIp(value)) throw bad(`"${value}" is not a valid IPv6 address (write [ipv6]:port to give a port)`);
  } else if (value.includes(':')) {
    const i = value.indexOf(':');
    host = value.slice(0, i);
    portText = value.slice(i + 1);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`"${value}" has port "${portText}", which is not a number from 0 to 65535`);
    port = Number(portText);
  }
  host = host.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (!(isValidIp(host) || HOST_RE.test(host)) || host.includes('..')) throw bad(`"${value}" is not a valid host`);
  return port === undefined ? { host } : { host, port };
}

function show(v: unknown): string {
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v) ?? String(v);
}
