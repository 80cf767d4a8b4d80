import picomatch from 'picomatch';
import { globMatcher, globPathMatcher, isGlob } from '../domain/glob.js';
import { splitEndpoint } from '../domain/endpoint.js';
import type { DetectionSubject } from '../domain/subject.js';
import { DETECTION_TYPES } from '../domain/types.js';
import { CONDITION_KEYS, type ConditionKey, type RuleConditions } from './types.js';
import { canonicalIp, parseIpRange } from '../domain/ip.js';
import { canonicalSha256, notADigest } from '../domain/digest.js';

/**
 * The one matcher. A rule's conditions compile into per-dimension predicates over plain values.
 * The same compiled rule is used
 *  - at ingest, on a DetectionSubject (`matchSubject`), and
 *  - in preview / create, evaluated once per dictionary row (jobs, processes, endpoints, ips) to get
 *    id sets that SQL then counts or updates.
 * `matchSubject` is literally the conjunction of the dimension predicates, so both paths agree.
 */

export type RuleErrorCode =
  | 'unknown_condition'
  | 'invalid_condition'
  | 'invalid_detection_type'
  | 'too_broad'
  | 'refused_risky'
  | 'refused_impostor'
  | 'not_found'
  | 'duplicate'
  | 'invalid_input';

/** The codes of a rule the service understood and refused (a guard, or a duplicate), not a malformed one. */
export function isRuleRefusal(e: RuleError): boolean {
  return e.code === 'too_broad' || e.code === 'refused_risky' || e.code === 'refused_impostor' || e.code === 'duplicate';
}

export class RuleError extends Error {
  constructor(
    readonly code: RuleErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

type Pred = (v: string) => boolean;

export interface CompiledRule {
  /** detection type the rule applies to */
  type: string;
  conditions: RuleConditions;
  /** scope predicates; null = wildcard */
  owner: Pred | null;
  repo: Pred | null;
  workflow: Pred | null;
  job: Pred | null;
  /** glob over "host:port" (or over the host alone when the pattern has no port) */
  endpoint: Pred | null;
  host: Pred | null;
  /** exact / glob / CIDR over the connection IP; null ip never matches a non-wildcard pattern */
  ip: Pred | null;
  /** glob over the normalised process name */
  process: Pred | null;
  sha256: Pred | null;
  /** a condition on a fact network detections do not carry (file, secret_type, ...): matches nothing */
  impossible: string | null;
  hasScope: boolean;
  hasEndpoint: boolean;
  hasProcess: boolean;
  hasIp: boolean;
}

const HOSTLIKE = /^[A-Za-z0-9._*?\-\[\]%]+$/;
const PORTLIKE = /^(\*|\d{1,5}|[\d*?]+)$/;

function invalid(key: string, value: string, why: string): never {
  throw new RuleError('invalid_condition', `condition ${key}="${value}": ${why}`);
}

function checkGlob(key: string, value: string): void {
  const open = (value.match(/\[/g) ?? []).length;
  const close = (value.match(/\]/g) ?? []).length;
  if (open !== close) invalid(key, value, 'bad glob: unbalanced "[" / "]"');
  if (!isGlob(value)) return;
  if (/\*\*\*/.test(value)) invalid(key, value, 'bad glob: "***" is not a pattern; use "*"');
  try {
    picomatch.makeRe(value, { nocase: true });
  } catch (err) {
    invalid(key, value, `bad glob: ${(err as Error).message}`);
  }
}

/** Case-insensitive exact-or-glob predicate for scope values (workflow paths may contain "/"). */
function scopePred(key: string, value: string): Pred | null {
  if (value === '*') return null;
  checkGlob(key, value);
  if (!isGlob(value)) {
    const v = value.toLowerCase();
    return (x) => x.toLowerCase() === v;
  }
  return value.includes('/') || key === 'workflow' ? globPathMatcher(value) : globMatcher(value);
}

function hostPred(key: string, value: string): Pred {
  if (!HOSTLIKE.test(value)) invalid(key, value, 'expected a host name or a glob such as *.example.com');
  checkGlob(key, value);
  return globMatcher(value);
}

/** The host part of an endpoint condition ("*.site:4*" -> "*.site", "[::1]:443" -> "::1"). */
export function endpointHostPattern(v: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(v);
  if (v6) return v6[1]!;
  const i = v.lastIndexOf(':');
  return i >= 0 ? v.slice(0, i) : v;
}

function endpointPred(value: string): Pred {
  const key = 'endpoint';
  const v6 = /^\[([^\]]+)\](?::(.+))?$/.exec(value);
  let hostPart: string;
  let portPart: string | null;
  if (v6) {
    hostPart = v6[1]!;
    portPart = v6[2] ?? null;
  } else {
    const i = value.lastIndexOf(':');
    if (i >= 0 && value.indexOf(':') !== i) invalid(key, value, 'IPv6 endpoints must be written as [addr]:port');
    hostPart = i >= 0 ? value.slice(0, i) : value;
    portPart = i >= 0 ? value.slice(i + 1) : null;
  }
  if (hostPart === '') invalid(key, value, 'missing host before ":"');
  if (!v6 && !HOSTLIKE.test(hostPart)) invalid(key, value, 'expected host:port, e.g. *.twingate.com:443');
  if (portPart !== null && !PORTLIKE.test(portPart)) invalid(key, value, `port "${portPart}" is not a number or glob`);
  if (portPart !== null && /^\d+$/.test(portPart) && Number(portPart) > 65535) invalid(key, value, `port ${portPart} is out of range`);
  checkGlob(key, value);
  // A bracketed host is an IPv6 address, compared in canonical form as stored endpoints are
  // (`[2001:DB8::1]` is 2001:db8::1, `[::ffff:8.8.8.8]` is 8.8.8.8): written otherwise it never matched,
  // and a rule that silently matches nothing misleads whoever relies on it.
  const hm = v6 ? bracketHostPred(value, hostPart) : globMatcher(hostPart);
  if (portPart === null) {
    // No port in the pattern: compare the host only (any port).
    return (ep) => hm(splitEndpoint(ep).host);
  }
  if (v6) {
    const pm = globMatcher(portPart);
    return (ep) => {
      const s = splitEndpoint(ep);
      return hm(s.host) && s.port !== null && pm(String(s.port));
    };
  }
  return globMatcher(value);
}

function bracketHostPred(value: string, hostPart: string): Pred {
  if (!isGlob(hostPart)) {
    const canon = canonicalIp(hostPart);
    if (canon === null) invalid('endpoint', value, `"[${hostPart}]" is not an IP address (brackets hold IPv6 addresses, as in [2001:db8::1]:443)`);
    return (h) => h === canon || canonicalIp(h) === canon;
  }
  if (!/^[0-9a-fA-F.:*?]+$/.test(hostPart)) invalid('endpoint', value, `"[${hostPart}]" is not an IPv6 address or address glob`);
  return globMatcher(hostPart);
}

function ipPred(value: string): Pred {
  const key = 'ip_address';
  if (value.includes('/')) {
    const range = parseIpRange(value);
    if (!range) invalid(key, value, 'malformed CIDR range (expected e.g. 100.64.0.0/10, prefix 0-32 for IPv4, 0-128 for IPv6)');
    return (ip) => range.contains(ip);
  }
  const norm = canonicalIp(value);
  if (norm !== null) return (ip) => canonicalIp(ip) === norm;
  if (!/^[0-9a-fA-F.:*?]+$/.test(value) || !isGlob(value)) {
    invalid(key, value, 'expected an IP address, a CIDR range (100.64.0.0/10) or a glob (192.168.*.1)');
  }
  checkGlob(key, value);
  return globMatcher(value);
}

function processPred(value: string): Pred {
  let v = value.trim();
  if (/\.exe$/i.test(v)) {
    // Names are compared with ".exe" stripped (normalizeProcessName: tailscaled.exe is tailscaled), so
    // a name may carry it, but a pattern may not: "*.exe" would become "*" and match every process.
    if (/[*?[\]]/.test(v)) invalid('process', value, 'process names are compared without ".exe" (tailscaled.exe is tailscaled), so a pattern cannot pick out .exe binaries; give it without ".exe"');
    v = v.slice(0, -4);
  }
  if (/[\\/]/.test(v)) invalid('process', value, 'expected a process name (basename), not a path');
  checkGlob('process', v);
  return globMatcher(v);
}

/**
 * process_sha256 is one digest or an "any of" set written `a|b|c`: a daemon that upgraded has one
 * genuine binary per version, and one rule must cover them all while naming each exactly.
 */
function shaPred(value: string): Pred {
  const set = new Set<string>();
  for (const part of value.split('|')) {
    const digest = canonicalSha256(part);
    if (digest === null) invalid('process_sha256', value, `${notADigest(part)}; several are separated by "|" (any of them)`);
    set.add(digest);
  }
  return (x) => set.has(x.toLowerCase());
}

/**
 * A condition value as the matcher reads it, for the built-in policy mode (mcp/tool-aliases.ts), so
 * that a policy condition on `args.conditions.<key>` judges the rule the tools will write: blanks
 * trimmed, a value that names nothing is `*` (namesNothing: `**`, `?*`, `*.*`), a process name without
 * `.exe`, an exact IP in its canonical form. The matcher compares every key ignoring case, so the
 * policy compares the reading ignoring case too. A value the matcher refuses is returned as it is.
 */
export function conditionReading(key: string, value: string): string {
  const v = value.trim();
  if (namesNothing(key, v)) return '*';
  if (key === 'process' && /\.exe$/i.test(v) && !isGlob(v)) return v.slice(0, -4);
  if (key === 'ip_address' && !v.includes('/')) return canonicalIp(v) ?? v;
  return v;
}

/** Two condition sets hold the same keys and values, whatever order their keys were given in. */
export function sameConditions(a: RuleConditions, b: RuleConditions): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k as ConditionKey] === b[k as ConditionKey]);
}

/**
 * Two condition sets that match the same detections by their spelling alone: the same keys, whatever
 * their order, and values equal as the matcher reads them: without case, a process name without
 * `.exe`, an exact IP in its canonical form, a process_sha256 set without case or member order. A
 * key whose value is `*` is no condition, as an absent key is (a suggested rule spells its scope
 * out); any other value is one, even a pattern that names nothing (`???` matches three characters,
 * and a `file` condition makes a rule match nothing). Values that differ otherwise (globs against
 * exact values) are not compared by meaning: this errs towards "different".
 */
export function sameMatch(a: RuleConditions, b: RuleConditions): boolean {
  const read = (k: string, raw: string) => {
    const v = raw.trim();
    if (k === 'process_sha256') return v.split('|').map((p) => canonicalSha256(p) ?? p.toLowerCase()).sort().join('|');
    if (k === 'process' && /\.exe$/i.test(v) && !isGlob(v)) return v.slice(0, -4).toLowerCase();
    if (k === 'ip_address' && !v.includes('/')) return canonicalIp(v) ?? v.toLowerCase();
    return v.toLowerCase();
  };
  const effective = (c: RuleConditions) =>
    Object.entries(c)
      .map(([k, v]) => [k, read(k, v!)] as const)
      .filter(([, v]) => v !== '*')
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  const ea = effective(a);
  const eb = effective(b);
  return ea.length === eb.length && ea.every(([k, v], i) => k === eb[i]![0] && v === eb[i]![1]);
}

/**
 * The condition keys whose values may hold an ASCII space: GitHub job and workflow names do, and so do
 * process names (macOS runners run `Google Chrome Helper`).
 */
const SPACED_KEYS: ReadonlySet<string> = new Set(['job', 'workflow', 'process']);

/** Validates and normalises raw conditions (trims values, rejects unknown keys / empty values). */
export function validateConditions(raw: unknown): RuleConditions {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new RuleError('invalid_input', 'conditions must be an object of key: value strings');
  }
  const out: RuleConditions = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!(CONDITION_KEYS as readonly string[]).includes(k)) {
      throw new RuleError(
        'unknown_condition',
        `unknown condition key "${k}": use one of ${CONDITION_KEYS.join(', ')}`,
      );
    }
    if (typeof v !== 'string') throw new RuleError('invalid_condition', `condition ${k}: value must be a string`);
    const value = v.trim();
    if (value === '') throw new RuleError('invalid_condition', `condition ${k}: value is empty; use "*" for any value or drop the key`);
    if (value.length > 512) throw new RuleError('invalid_condition', `condition ${k}: value is longer than 512 characters`);
    // A job or workflow name holds spaces (a matrix leg is `test (3.11)`), so these two keys take an
    // ASCII space inside the value; no key takes any other blank, which could pass for a space.
    const refused = SPACED_KEYS.has(k) ? /[\u0000-\u001f\u007f]|(?! )\s/ : /[\u0000-\u001f\u007f\s]/;
    const bad = refused.exec(value);
    if (bad) {
      const what = SPACED_KEYS.has(k) ? 'control characters and blanks other than a space are' : 'whitespace and control characters are';
      // named by code point: a no-break space or a tab prints as a space
      const at = `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at character ${bad.index + 1}`;
      throw new RuleError('invalid_condition', `condition ${k}="${value}": ${what} not allowed (${at})`);
    }
    out[k as ConditionKey] = value;
  }
  return out;
}

export function validateDetectionType(type: unknown): string {
  // case-insensitive, as every filter reads a type: "domain-blocked" is Domain-Blocked
  const canonical = typeof type === 'string' ? DETECTION_TYPES.find((t) => t.toLowerCase() === type.trim().toLowerCase()) : undefined;
  if (canonical === undefined) {
    throw new RuleError(
      'invalid_detection_type',
      `unknown detection type "${String(type)}": use one of ${DETECTION_TYPES.join(', ')}`,
    );
  }
  return canonical;
}

/**
 * A stored rule compiled, or null when it no longer compiles (a rule written before a check that now
 * refuses its value, such as `endpoint=[abc]:443`) or names nothing (written before the too-broad
 * guard knew `owner=?*` for a catch-all): such a rule matches nothing rather than everything, and must
 * not stop ingest or another rule's change from moving detections.
 */
export function compileStoredRule(type: string, conditions: RuleConditions): CompiledRule | null {
  try {
    return hasEffectiveCondition(conditions) ? compileRule(type, conditions) : null;
  } catch (err) {
    if (err instanceof RuleError) return null;
    throw err;
  }
}

/** Compiles validated conditions. Throws RuleError naming the key on any malformed value. */
export function compileRule(type: string, rawConditions: RuleConditions | Record<string, unknown>): CompiledRule {
  const conditions = validateConditions(rawConditions);
  const c = conditions;
  const w = (v: string | undefined) => v === undefined || v === '*';
  const owner = c.owner === undefined ? null : scopePred('owner', c.owner);
  const repo = c.repo === undefined ? null : scopePred('repo', c.repo);
  const workflow = c.workflow === undefined ? null : scopePred('workflow', c.workflow);
  const job = c.job === undefined ? null : scopePred('job', c.job);
  const endpoint = w(c.endpoint) ? null : endpointPred(c.endpoint!);
  const host = w(c.host) ? null : hostPred('host', c.host!);
  const ip = w(c.ip_address) ? null : ipPred(c.ip_address!);
  const process = w(c.process) ? null : processPred(c.process!);
  const sha256 = w(c.process_sha256) ? null : shaPred(c.process_sha256!);
  let impossible: string | null = null;
  for (const k of ['file', 'file_path', 'secret_type', 'action'] as const) {
    const v = c[k];
    if (v === undefined) continue;
    if (k === 'file_path') checkGlob(k, v);
    if (v !== '*' && impossible === null) impossible = k;
  }
  return {
    type,
    conditions,
    owner,
    repo,
    workflow,
    job,
    endpoint,
    host,
    ip,
    process,
    sha256,
    impossible,
    hasScope: Boolean(owner || repo || workflow || job),
    hasEndpoint: Boolean(endpoint || host),
    hasProcess: Boolean(process || sha256),
    hasIp: Boolean(ip),
  };
}

// ---- dimension predicates (used over dictionary rows and by matchSubject) ----

export function matchJob(r: CompiledRule, owner: string, repo: string, workflow: string, job: string): boolean {
  return (!r.owner || r.owner(owner)) && (!r.repo || r.repo(repo)) && (!r.workflow || r.workflow(workflow)) && (!r.job || r.job(job));
}

/** `endpoint` is the stored "host:port" string; the host is derived from it, never passed separately. */
export function matchEndpoint(r: CompiledRule, endpoint: string): boolean {
  if (r.endpoint && !r.endpoint(endpoint)) return false;
  if (r.host && !r.host(splitEndpoint(endpoint).host)) return false;
  return true;
}

export function matchIp(r: CompiledRule, ip: string | null): boolean {
  if (!r.ip) return true;
  return ip !== null && ip !== '' && r.ip(ip);
}

export function matchProcess(r: CompiledRule, normName: string, sha256: string | null): boolean {
  if (r.process && !r.process(normName)) return false;
  if (r.sha256 && (sha256 === null || !r.sha256(sha256))) return false;
  return true;
}

export function matchSubject(r: CompiledRule, s: DetectionSubject): boolean {
  return (
    r.impossible === null &&
    s.type === r.type &&
    matchJob(r, s.owner, s.repo, s.workflow, s.job) &&
    matchEndpoint(r, s.endpoint) &&
    matchIp(r, s.ip) &&
    matchProcess(r, s.process, s.processSha256)
  );
}

/**
 * Whether a condition value names nothing: `*`, any other pattern without a letter or a digit (`?*`
 * and `*?` match every value, `*.*` every dotted host, `???` every value of that length), or an
 * ip_address range of prefix 0 (every address of a family). Such a condition says nothing about which
 * owner, process or destination a rule is about, so the guards and the policy read it as `*`: judged
 * as written, `owner=?*` passed the "no condition" guard and a policy deny of owner `*` while
 * suppressing every owner's detections. An exact value is always a name, whatever its characters.
 */
export function namesNothing(key: string, value: string): boolean {
  const v = value.trim();
  if (v === '*') return true;
  if (key === 'ip_address' && /\/0+$/.test(v)) return true;
  return isGlob(v) && !/[\p{L}\p{N}]/u.test(v);
}

/** True when the rule has at least one condition that names something (namesNothing). */
export function hasEffectiveCondition(c: RuleConditions): boolean {
  return Object.entries(c).some(([k, v]) => v !== undefined && !namesNothing(k, v));
}
