/**
 * Shared, allocation-light field readers for the record adapters.
 *
 * Every reader takes the raw value plus the dotted path of the field (a string literal at the call
 * site, so no allocation on the happy path) and throws a `RecordError` on bad input. Reason categories:
 * - "missing-field":   a required field is absent, null or an empty string
 * - "wrong-type":      the field has the wrong JSON type
 * - "invalid-value":   right type, unacceptable value (bad timestamp, ip, port, domain, enum value...)
 * - "missing-context": a CI job-context field is absent from the record AND from rc.defaults
 *
 * No zod here on purpose: the native adapter runs once per event on the ingest hot path.
 */
import { CHAIN_CUT, basenameOf, inMemoryExecutable } from '../../domain/process-name.js';
import { clip } from '../../domain/clip.js';
import { canonicalSha256 } from '../../domain/digest.js';
import { TENANT_PATTERN } from '../../config/paths.js';
import { canonicalIp, isDottedQuad } from '../../domain/ip.js';
import type { CallStatus, JobContext, ProcessInfo, Protocol } from '../../domain/types.js';
import { RecordError, type RecordContext } from './types.js';
import { foldedAsHost, normalizeDomain } from '../../domain/dns-name.js';
import { riskyDestinations } from '../../analysis/risky-destinations.js';

export type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function fail(reason: string, field: string | null, message: string): never {
  throw new RecordError(reason, field, field ? `${field}: ${message}` : message);
}

export function missing(field: string): never {
  return fail('missing-field', field, 'required field is missing');
}

export function wrongType(field: string | null, expected: string, value: unknown): never {
  return fail('wrong-type', field, `expected ${expected}, got ${typeName(value)}`);
}

export function invalid(field: string | null, message: string): never {
  return fail('invalid-value', field, message);
}

/** The record itself must be a JSON object. */
export function requireRecord(record: unknown): Obj {
  if (isObject(record)) return record;
  return fail('wrong-type', null, `record must be a JSON object, got ${typeName(record)}`);
}

/** True for undefined, null and "" (all treated as "absent"). */
export function isAbsent(value: unknown): value is undefined | null | '' {
  return value === undefined || value === null || value === '';
}

// ---------------------------------------------------------------------------------------------
// Scalars

export function readString(value: unknown, field: string): string {
  if (typeof value === 'string') {
    if (value === '') return missing(field);
    return value;
  }
  if (value === undefined || value === null) return missing(field);
  return wrongType(field, 'a string', value);
}

/** Optional string: undefined/null/"" → undefined. */
export function optString(value: unknown, field: string): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : noNul(value, field);
  if (value === undefined || value === null) return undefined;
  return wrongType(field, 'a string', value);
}

/**
 * `value`, refused when it holds U+0000. No name, path or id holds one (file systems and GitHub
 * refuse it), and PostgreSQL cannot store it in text: one such record stopped a PostgreSQL ingest
 * with an internal error where SQLite stored it. Refused as a bad record on both, the rest goes on.
 * Destination names are read apart (readHost): a risky name with a NUL beside it is still that call.
 */
export function noNul(value: string, field: string): string {
  const at = value.indexOf('\u0000');
  if (at < 0) return value;
  return invalid(field, `holds a NUL character (U+0000) at character ${at + 1}: no name, path or id holds one`);
}

/**
 * The longest job identity values stored, in UTF-8 bytes. Both stores key jobs by owner, repo,
 * workflow and job, and a PostgreSQL index entry holds at most about 2.7 kB: a longer key stopped a
 * PostgreSQL ingest with an internal error. GitHub's own names are far shorter (an owner 39
 * characters, a repository 100); a job name holds its matrix values, so it gets room.
 */
export const MAX_KEY_BYTES = { owner: 256, repo: 256, workflow: 1000, job: 1000, runId: 128, jobId: 128 } as const;

function fitsKey(value: string, field: string, maxBytes: number): void {
  // at most 3 UTF-8 bytes per UTF-16 unit: only a long value is measured
  if (value.length * 3 <= maxBytes) return;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) invalid(field, `is ${bytes} bytes long; a job's ${field} may be at most ${maxBytes} bytes (UTF-8)`);
}

/** Optional non-negative integer (number, or a string of digits). */
export function optNonNegInt(value: unknown, field: string): number | undefined {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
    return invalid(field, `expected a non-negative integer, got ${value}`);
  }
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') {
    if (/^\d{1,15}$/.test(value)) return Number(value);
    return invalid(field, `expected a non-negative integer, got "${clip(value)}"`);
  }
  return wrongType(field, 'an integer', value);
}

/** Port: integer 0-65535, or a string like "443" / "443(https)". */
export function readPort(value: unknown, field: string): number {
  if (typeof value === 'number') {
    if ((value | 0) === value && value >= 0 && value <= 65535) return value;
    return invalid(field, `port must be an integer 0-65535, got ${value}`);
  }
  if (typeof value === 'string') {
    if (value === '') return missing(field);
    const n = parsePortFast(value);
    if (n >= 0) return n;
    return invalid(field, `port must be an integer 0-65535 or like "443(https)", got "${clip(value)}"`);
  }
  if (value === undefined || value === null) return missing(field);
  return wrongType(field, 'a number or string', value);
}

/** "443" or "443(https)" (optionally with spaces) → 443; -1 when invalid. */
function parsePortFast(s: string): number {
  const len = s.length;
  let i = 0;
  while (i < len && s.charCodeAt(i) === 32) i++;
  let n = 0;
  const start = i;
  while (i < len) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
    i++;
  }
  const digits = i - start;
  if (digits === 0 || digits > 5 || n > 65535) return -1;
  while (i < len && s.charCodeAt(i) === 32) i++;
  if (i === len) return n;
  if (s.charCodeAt(i) !== 40 /* ( */) return -1;
  const close = s.indexOf(')', i + 1);
  if (close < 0) return -1;
  i = close + 1;
  while (i < len && s.charCodeAt(i) === 32) i++;
  return i === len ? n : -1;
}

export function optProtocol(value: unknown, field: string): Protocol | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') return wrongType(field, 'a string', value);
  if (value === 'tcp' || value === 'udp') return value;
  const v = value.toLowerCase();
  if (v === 'tcp' || v === 'udp') return v;
  return invalid(field, `protocol must be "tcp" or "udp", got "${clip(value)}"`);
}

/** native status: allowed | blocked (case-insensitive), default allowed. */
export function optStatus(value: unknown, field: string): CallStatus {
  if (value === undefined || value === null || value === '' || value === 'allowed') return 'allowed';
  if (value === 'blocked') return 'blocked';
  if (typeof value !== 'string') return wrongType(field, 'a string', value);
  const v = value.toLowerCase();
  if (v === 'allowed') return 'allowed';
  if (v === 'blocked') return 'blocked';
  return invalid(field, `status must be "allowed" or "blocked", got "${clip(value)}"`);
}

/** Identifier that may be a JSON number or string (run_id, job_id, detection id) → string. */
export function optIdString(value: unknown, field: string): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : noNul(value, field);
  if (typeof value === 'number') {
    // Past 2^53 a JSON number is no longer the id that was written: 9007199254740993 reads as
    // ...992, and two runs would be stored as one. A string keeps any id exactly.
    if (Number.isSafeInteger(value) && value >= 0) return String(value);
    return invalid(field, `expected a non-negative integer id of at most 2^53 - 1 (${Number.MAX_SAFE_INTEGER}), got ${value}; larger ids must be given as strings`);
  }
  if (value === undefined || value === null) return undefined;
  return wrongType(field, 'a string or number', value);
}

let lastTenant = '';

/** The pattern resolveTenant() in src/config/paths.ts enforces. */
export function readTenant(value: unknown, field: string, fallback: string): string {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string') return wrongType(field, 'a string', value);
  if (value === lastTenant) return lastTenant;
  if (!TENANT_PATTERN.test(value)) {
    return invalid(field, `invalid tenant "${clip(value)}": use letters, digits, ".", "_" or "-" (max 128 chars)`);
  }
  lastTenant = value;
  return value;
}

// ---------------------------------------------------------------------------------------------
// Timestamps

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** Milliseconds in 400 Gregorian years (146097 days); used to dodge Date.UTC's 0-99 → 19xx quirk. */
const MS_400Y = 146097 * 86_400_000;

function dig(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1000;
}

/**
 * Strict RFC 3339 date-time → epoch ms, NaN when invalid.
 * `YYYY-MM-DD(T|t| )HH:MM:SS[.frac](Z|z|±HH:MM|±HHMM)`; fractions beyond milliseconds are truncated.
 * A time zone is required (a zone-less time is ambiguous).
 */
export function parseRfc3339(s: string): number {
  return rfc3339(s, 0, s.length, true);
}

/**
 * True when s[from, to) is a time parseRfc3339 accepts; reads the text in place (no slice, no
 * Date.UTC): the repeat fast path checks every repeated line's time this way.
 */
export function isRfc3339At(s: string, from: number, to: number): boolean {
  return rfc3339(s, from, to, false) === 0;
}

/** parseRfc3339 over s[from, to); with compute false, 0 for a valid time (NaN otherwise). */
function rfc3339(s: string, from: number, to: number, compute: boolean): number {
  const len = to - from;
  if (len < 20 || len > 40) return NaN;
  // nothing at or after `to` is read as part of the time
  const at = (k: number): number => (k < to ? s.charCodeAt(k) : NaN);
  const dg = (k: number): number => (k < to ? dig(s, k) : -1000);
  const o = from;
  const y = dg(o) * 1000 + dg(o + 1) * 100 + dg(o + 2) * 10 + dg(o + 3);
  const mo = dg(o + 5) * 10 + dg(o + 6);
  const d = dg(o + 8) * 10 + dg(o + 9);
  const h = dg(o + 11) * 10 + dg(o + 12);
  const mi = dg(o + 14) * 10 + dg(o + 15);
  const sec = dg(o + 17) * 10 + dg(o + 18);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60) return NaN;
  if (at(o + 4) !== 45 || at(o + 7) !== 45 || at(o + 13) !== 58 || at(o + 16) !== 58) return NaN;
  const sep = at(o + 10);
  if (sep !== 84 /* T */ && sep !== 116 /* t */ && sep !== 32 /* space */) return NaN;
  const dim = mo === 2 && (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) ? 29 : DAYS_IN_MONTH[mo - 1]!;
  if (d > dim) return NaN;
  let i = o + 19;
  let ms = 0;
  let c = at(i);
  if (c === 46 /* . */ || c === 44 /* , */) {
    i++;
    let nd = 0;
    for (;;) {
      const v = dg(i);
      if (v < 0) break;
      if (nd < 3) ms = ms * 10 + v;
      nd++;
      i++;
    }
    if (nd === 0) return NaN;
    if (nd === 1) ms *= 100;
    else if (nd === 2) ms *= 10;
    c = at(i);
  }
  let offsetMin = 0;
  if (c === 90 /* Z */ || c === 122 /* z */) {
    i++;
  } else if (c === 43 /* + */ || c === 45 /* - */) {
    const oh = dg(i + 1) * 10 + dg(i + 2);
    let om: number;
    if (at(i + 3) === 58) {
      om = dg(i + 4) * 10 + dg(i + 5);
      i += 6;
    } else {
      om = dg(i + 3) * 10 + dg(i + 4);
      i += 5;
    }
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
    offsetMin = (c === 43 ? 1 : -1) * (oh * 60 + om);
  } else {
    return NaN;
  }
  if (i !== to) return NaN;
  // Only the first and the last years can leave the range once an offset is applied (year 0000
  // whatever the offset, year 0001 with one east of UTC, year 9999 with one west of it): every
  // other year is checked by its shape alone. The repeat fast path relies on this answer matching
  // the computed one (test/ingest/rfc3339-in-place.test.ts).
  if (!compute && y > 1 && y < 9999) return 0;
  let t: number;
  if (y >= 100) t = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  else t = Date.UTC(y + 400, mo - 1, d, h, mi, sec, ms) - MS_400Y;
  t -= offsetMin * 60_000;
  // 9999-12-31T23:59:59-01:00 is in year 10000: no date a reader can print (see epochToMs)
  if (t > MAX_TIMESTAMP_MS || t < MIN_TIMESTAMP_MS) return NaN;
  return compute ? t : 0;
}

/**
 * Epoch number → ms, guessing the unit from the magnitude:
 * < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds.
 */
export function epochToMs(n: number): number {
  if (!Number.isFinite(n) || n < 0) return NaN;
  const ms = n < 1e11 ? Math.round(n * 1000) : n < 1e14 ? Math.round(n) : n < 1e17 ? Math.round(n / 1000) : Math.round(n / 1e6);
  // Past the last instant an RFC 3339 timestamp can name, a time is no date at all: stored, it
  // would make every later reader of the tenant fail to print it.
  return ms <= MAX_TIMESTAMP_MS ? ms : NaN;
}

/** 9999-12-31T23:59:59.999Z: the last instant a four-digit RFC 3339 year can name. */
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** 0001-01-01T00:00:00Z (Go's zero time, which ingest handles apart): the first such instant. */
export const MIN_TIMESTAMP_MS = -62_135_596_800_000;

/** Strict: an RFC 3339 string only (native format). */
export function readRfc3339(value: unknown, field: string): number {
  if (typeof value === 'string') {
    if (value === '') return missing(field);
    const t = parseRfc3339(value);
    if (t === t) return t; // not NaN
    return invalid(field, `not an RFC 3339 timestamp with time zone: "${clip(value)}"`);
  }
  if (value === undefined || value === null) return missing(field);
  return wrongType(field, 'an RFC 3339 string', value);
}

/** Lenient: RFC 3339 string, or epoch number / digit string (s, ms, µs or ns by magnitude). */
export function readTimestamp(value: unknown, field: string): number {
  if (typeof value === 'string') {
    if (value === '') return missing(field);
    let t = parseRfc3339(value);
    if (t !== t && /^\d+(?:\.\d+)?$/.test(value)) t = epochToMs(Number(value));
    if (t === t) return t;
    return invalid(field, `not an RFC 3339 timestamp or epoch number: "${clip(value)}"`);
  }
  if (typeof value === 'number') {
    const t = epochToMs(value);
    if (t === t) return t;
    return invalid(field, `not a valid epoch timestamp: ${value}`);
  }
  if (value === undefined || value === null) return missing(field);
  return wrongType(field, 'an RFC 3339 string or epoch number', value);
}

// ---------------------------------------------------------------------------------------------
// IPs and domains

export { isDottedQuad };

/** Validated IP → its canonical form (src/domain/ip.ts owns the rules), or null. */
export function normalizeIp(s: string): string | null {
  return canonicalIp(s);
}

export function optIp(value: unknown, field: string): string | undefined {
  if (typeof value === 'string') {
    if (value === '') return undefined;
    const ip = normalizeIp(value);
    if (ip !== null) return ip;
    return invalid(field, `not a valid IP address: "${clip(value)}"`);
  }
  if (value === undefined || value === null) return undefined;
  return wrongType(field, 'a string', value);
}

/** Result slots for readHost (module-level to avoid allocating a tuple per record). */
export const hostOut: { domain: string | undefined; ip: string | undefined; domainUnusable: boolean } = { domain: undefined, ip: undefined, domainUnusable: false };

/**
 * Reads a domain and an ip field into `hostOut`; at least one must be present.
 * An IP literal found in the domain field is treated as the ip (a direct-IP call).
 * A domain that is no valid DNS name sets `hostOut.domainUnusable` (for the caller's note) and leaves
 * the risky name it holds as the domain (riskyInName), else only the ip: refusing the record dropped
 * the call, so a process could keep its call out of every detection by asking for a name with a space
 * or a 64-character label (a resolver passes any bytes). With neither, such a domain is refused.
 * `eitherField` names the pair in the "neither present" error, e.g. "domain|ip".
 */
export function readHost(
  domainValue: unknown,
  domainField: string,
  ipValue: unknown,
  ipField: string,
  eitherField: string,
  rc: RecordContext,
): void {
  let domain: string | undefined;
  let ip = optIp(ipValue, ipField);
  hostOut.domainUnusable = false;
  if (typeof domainValue === 'string') {
    if (domainValue !== '') {
      const last = domainValue.charCodeAt(domainValue.length - 1);
      if (last >= 48 && last <= 57 && isDottedQuad(domainValue)) {
        ip ??= domainValue;
      } else {
        const d = normalizeDomain(domainValue);
        if (d !== null) domain = d;
        else {
          const asIp = domainValue.indexOf(':') >= 0 ? normalizeIp(domainValue) : null;
          if (asIp === null) {
            domain = riskyInName(domainValue, rc) ?? undefined;
            if (domain === undefined && ip === undefined) invalid(domainField, `not a valid domain name: "${clip(domainValue)}"`);
            hostOut.domainUnusable = true;
          }
          ip ??= asIp ?? undefined;
        }
      }
    }
  } else if (domainValue !== undefined && domainValue !== null) {
    wrongType(domainField, 'a string', domainValue);
  }
  if (domain === undefined && ip === undefined) {
    fail('missing-field', eitherField, 'at least one of the domain and the ip must be present');
  }
  hostOut.domain = domain;
  hostOut.ip = ip;
}

// ---------------------------------------------------------------------------------------------
// Processes

export { MAX_PARENT_DEPTH } from '../../domain/process-name.js';

/** "process" + ".parent" × depth (only built on the error path). */
export function parentPath(root: string, depth: number): string {
  return root + '.parent'.repeat(depth);
}

export function makeProcess(
  name: string,
  path: string | undefined,
  sha256: string | undefined,
  pid: number | undefined,
  parent: ProcessInfo | null,
): ProcessInfo {
  // Fixed shape (all keys present) keeps these objects monomorphic on the hot path.
  noNul(name, 'process name');
  if (path !== undefined) noNul(path, 'process path');
  // A name of blanks names nothing: it is the agent's Unknown tool.
  const n = name.charCodeAt(0) <= 32 || name.charCodeAt(name.length - 1) <= 32 ? (name.trim() === '' ? UNKNOWN_TOOL : name) : name;
  return { name: n, path, sha256, pid, parent };
}

/** The Harden-Runner agent's name for a tool it could not attribute (firewall-only packets). */
export const UNKNOWN_TOOL = 'Unknown';

/**
 * A process's name: the basename of its executable when known, as Harden-Runner names a tool
 * (step-security/agent eventhandler.go: filepath.Base of the executable), else the name given.
 * ECS `process.name` can be the kernel's comm (Auditbeat's auditd module, go-libaudit coalesce.go):
 * cut to 15 bytes (`twingate-connec`) and set by the process itself, so a binary in /tmp could call
 * itself `curl`, and a rule on `curl` hid it.
 */
export function executableName(name: string | undefined, executable: string | undefined): string | undefined {
  // A program run from memory has no file name (`/memfd:x (deleted)`, `/proc/self/fd/3`): the name
  // given is all there is, and the path still says where it ran from (impostor.ts runsFromReason).
  if (executable === undefined || (name !== undefined && inMemoryExecutable(executable) !== null)) return name;
  // Linux marks the executable of a process whose file was replaced or removed (a daemon upgraded
  // under it) " (deleted)": it is still that file's name
  const base = basenameOf(executable.endsWith(DELETED) ? executable.slice(0, -DELETED.length) : executable);
  return base !== '' ? base : name;
}
const DELETED = ' (deleted)';

/**
 * An executable hash: 64 hex digits (a `sha256:` prefix, as on container image ids, is allowed),
 * returned in lower case. Anything else is no hash: the Harden-Runner agent puts Go's error text
 * there when it cannot read the binary ("open /usr/bin/pip: no such file or directory"), and
 * container tools carry the image name. Those are kept as unknown and counted as `hash-not-a-hash`.
 * "Unknown" and "" mean absent and are not counted.
 */
export function readSha256(value: unknown, field: string, rc: RecordContext): string | undefined {
  if (value === undefined || value === null || value === '' || value === 'Unknown' || value === 'unknown') return undefined;
  if (typeof value !== 'string') return wrongType(field, 'a string', value);
  // hot path: a lower-case hex digest is returned as is, without a regex or a copy
  if (value.length === 64 && isLowerHex(value)) return value;
  const digest = canonicalSha256(value);
  if (digest !== null) return digest;
  noteOf(rc, 'hash-not-a-hash');
  return undefined;
}

function isLowerHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Counts something read but not stored as given (shown in the ingest summary under "notes"). */
export function noteOf(rc: RecordContext, key: string): void {
  rc.notes[key] = (rc.notes[key] ?? 0) + 1;
}

/**
 * What stands for the parent links past MAX_PARENT_DEPTH: the chain keeps its nearest 31 links and
 * then this one (CHAIN_CUT), counted as `parent-chain-cut`. The record is kept: refusing it dropped
 * the call of whoever chose a deep chain, and judging it by 32 links hid what lay beyond.
 */
export function chainCut(rc: RecordContext): ProcessInfo {
  noteOf(rc, 'parent-chain-cut');
  return makeProcess(CHAIN_CUT, undefined, undefined, undefined, null);
}

/** The built-in risky list, compiled once: what a parser and an adapter judge by when given no extra one. */
export const BUILTIN_RISKY = riskyDestinations();

/** The risky list a record is read against: the ingest's (built in plus configured), else the built-in one. */
export function riskyListOf(rc: RecordContext): NonNullable<RecordContext['risky']> {
  return rc.risky ?? BUILTIN_RISKY;
}

/**
 * The risky name a name that is no valid DNS name holds, read leniently: folded as a URL parser folds
 * a host (dns-name.ts foldedAsHost: NFKC, lower case, IDNA's full stops, no invisible characters,
 * percent-escapes decoded), and each name on the risky list looked for anywhere in it with no letter, digit, `_` or `-` on
 * either side. "x!y.webhook.site" (a label a resolver passes on to webhook.site's servers),
 * "webhook.site/x" and "webhook.site\u0000" (a path or a byte a producer left in the field), a
 * fullwidth "ｗｅｂｈｏｏｋ．ｓｉｔｅ", and any of them after or before a megabyte of padding, all hold
 * webhook.site: such a name is anomalous already, and reading it as a risky one fails closed.
 * Address ranges on the list are not looked for (a name holds no address to judge). Linear in the
 * name's length for each name on the list: only single-character classes are replaced over it.
 */
export function riskyInName(raw: string, rc: RecordContext): string | null {
  const folded = foldedAsHost(raw);
  for (const name of riskyListOf(rc).hostNames) if (holdsName(folded, name)) return name;
  return null;
}

/** `name` in `s` with no name character (a-z, 0-9, `_`, `-`) right before or after it. */
function holdsName(s: string, name: string): boolean {
  for (let at = s.indexOf(name); at >= 0; at = s.indexOf(name, at + 1)) {
    if (!isNameChar(s.charCodeAt(at - 1)) && !isNameChar(s.charCodeAt(at + name.length))) return true;
  }
  return false;
}

function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45;
}

/** Where a lookup of a risky name is reported to go (a call to the name on UDP 53): the DNS port. */
export const DNS_PORT = 53;

/** Basename of an executable path, for when only the path is known. */
export const basename = basenameOf;

// ---------------------------------------------------------------------------------------------
// Job context

/** Context fields as the record carries them (raw), before fallback to rc.defaults. */
export interface RawContext {
  owner: unknown;
  repo: unknown;
  workflow: unknown;
  job: unknown;
  runId: unknown;
  runAttempt: unknown;
  jobId: unknown;
}

export interface ContextFieldNames {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  runId: string;
  runAttempt: string;
  jobId: string;
}

export const SNAKE_FIELDS: ContextFieldNames = {
  owner: 'owner',
  repo: 'repo',
  workflow: 'workflow',
  job: 'job',
  runId: 'run_id',
  runAttempt: 'run_attempt',
  jobId: 'job_id',
};

function ctxString(value: unknown, field: string, fallback: string | undefined): string {
  if (typeof value === 'string' && value !== '') return noNul(value, field);
  if (value === undefined || value === null || value === '') {
    if (fallback !== undefined && fallback !== '') return fallback;
    return fail('missing-context', field, 'CI context field is missing (set it in the record, a context line or a flag)');
  }
  return wrongType(field, 'a string', value);
}

/** The largest run attempt taken: nine digits, in a number or a string alike. */
const MAX_RUN_ATTEMPT = 999_999_999;

function ctxAttempt(value: unknown, field: string, fallback: number | undefined): number {
  if (typeof value === 'number') {
    // the same bound as the string form below: 1e30 is an integer, and no run attempt
    if (Number.isInteger(value) && value >= 1 && value <= MAX_RUN_ATTEMPT) return value;
    return invalid(field, `run attempt must be an integer from 1 to ${MAX_RUN_ATTEMPT}, got ${value}`);
  }
  if (value === undefined || value === null || value === '') return fallback ?? 1;
  if (typeof value === 'string') {
    if (/^[1-9]\d{0,8}$/.test(value)) return Number(value);
    return invalid(field, `run attempt must be an integer from 1 to ${MAX_RUN_ATTEMPT}, got "${clip(value)}"`);
  }
  return wrongType(field, 'an integer', value);
}

/**
 * Owner, repo and run id are path segments of every run link (`/github/{owner}/{repo}/actions/runs/{id}`,
 * src/domain/dashboard.ts), where `.` and `..` are dot segments a browser resolves, however they are
 * percent-encoded: the dashboard's link would climb out to another page, and a dashboard_url under a
 * path prefix to another application of the same host. GitHub refuses both as names.
 */
function dotSegment(value: string, field: string): void {
  if (value === '.' || value === '..') invalid(field, `"${value}" is no GitHub name (GitHub refuses . and ..), and in a run link it is a dot segment that leaves the run's page`);
}

/**
 * Builds JobContext objects, reusing the previous object when a record carries the same context
 * (consecutive events of one job are the norm). Returned contexts are shared: treat them as immutable.
 */
export class ContextBuilder {
  private last: JobContext | null = null;
  private lastRunIdRaw: unknown = undefined;
  private lastJobIdRaw: unknown = undefined;

  build(
    owner: unknown,
    repo: unknown,
    workflow: unknown,
    job: unknown,
    runId: unknown,
    runAttempt: unknown,
    jobId: unknown,
    defaults: Partial<JobContext>,
    f: ContextFieldNames = SNAKE_FIELDS,
  ): JobContext {
    let o: string;
    let r = ctxString(repo, f.repo, defaults.repo);
    if (isAbsent(owner) && defaults.owner === undefined && r.indexOf('/') > 0) {
      // repo given as "owner/repo" and no owner anywhere: split it
      const slash = r.indexOf('/');
      o = r.slice(0, slash);
      r = r.slice(slash + 1);
    } else {
      o = ctxString(owner, f.owner, defaults.owner);
      if (r.length > o.length && r.charCodeAt(o.length) === 47 && r.startsWith(o)) r = r.slice(o.length + 1);
    }
    const w = ctxString(workflow, f.workflow, defaults.workflow);
    const j = ctxString(job, f.job, defaults.job);
    const last = this.last;
    let rid: string;
    if (last !== null && runId === this.lastRunIdRaw && runId !== undefined && runId !== null) rid = last.runId;
    else {
      const v = optIdString(runId, f.runId) ?? defaults.runId;
      if (v === undefined || v === '') {
        return fail('missing-context', f.runId, 'CI context field is missing (set it in the record, a context line or a flag)');
      }
      rid = v;
    }
    const att = ctxAttempt(runAttempt, f.runAttempt, defaults.runAttempt);
    let jid: string | undefined;
    if (last !== null && jobId === this.lastJobIdRaw && jobId !== undefined && jobId !== null) jid = last.jobId;
    else jid = optIdString(jobId, f.jobId) ?? (defaults.jobId === '' ? undefined : defaults.jobId);
    if (
      last !== null &&
      last.owner === o &&
      last.repo === r &&
      last.workflow === w &&
      last.job === j &&
      last.runId === rid &&
      last.runAttempt === att &&
      last.jobId === jid
    ) {
      return last;
    }
    dotSegment(o, f.owner);
    dotSegment(r, f.repo);
    dotSegment(rid, f.runId);
    fitsKey(o, f.owner, MAX_KEY_BYTES.owner);
    fitsKey(r, f.repo, MAX_KEY_BYTES.repo);
    fitsKey(w, f.workflow, MAX_KEY_BYTES.workflow);
    fitsKey(j, f.job, MAX_KEY_BYTES.job);
    fitsKey(rid, f.runId, MAX_KEY_BYTES.runId);
    if (jid !== undefined) fitsKey(jid, f.jobId, MAX_KEY_BYTES.jobId);
    const ctx: JobContext = { owner: o, repo: r, workflow: w, job: j, runId: rid, runAttempt: att, jobId: jid };
    this.last = ctx;
    this.lastRunIdRaw = runId;
    this.lastJobIdRaw = jobId;
    return ctx;
  }
}

/**
 * The leading context line (accepted by the harden-runner, native and ecs adapters):
 *
 *   {"context": {"owner": "acme", "repo": "api", "workflow": ".github/workflows/ci.yml", "job": "build",
 *                "run_id": 123456789, "run_attempt": 1, "job_id": 987654321}}
 *
 * Every key is optional; camelCase (`runId`, `runAttempt`, `jobId`) is accepted too, and
 * `repository: "owner/repo"` may replace owner + repo. run_id / job_id may be numbers or strings.
 * The result is returned as `{kind: 'context'}`; the pipeline merges it over the flag defaults for the
 * records that follow (fields it lacks keep the flag values). A later context line replaces it.
 */
export function parseContextLine(value: unknown): Partial<JobContext> {
  if (!isObject(value)) return wrongType('context', 'an object', value);
  const out: Partial<JobContext> = {};
  const owner = optString(value.owner, 'context.owner');
  let repo = optString(value.repo, 'context.repo');
  const repository = optString(value.repository, 'context.repository');
  let o = owner;
  if (repository !== undefined) {
    const slash = repository.indexOf('/');
    if (slash <= 0 || slash === repository.length - 1) return invalid('context.repository', 'expected "owner/repo"');
    o ??= repository.slice(0, slash);
    repo ??= repository.slice(slash + 1);
  }
  if (repo !== undefined && o !== undefined && repo.startsWith(`${o}/`)) repo = repo.slice(o.length + 1);
  if (o !== undefined) out.owner = o;
  if (repo !== undefined) out.repo = repo;
  const workflow = optString(value.workflow ?? value.workflow_path, 'context.workflow');
  if (workflow !== undefined) out.workflow = workflow;
  const job = optString(value.job, 'context.job');
  if (job !== undefined) out.job = job;
  const runId = optIdString(value.run_id ?? value.runId, 'context.run_id');
  if (runId !== undefined) out.runId = runId;
  const ra = value.run_attempt ?? value.runAttempt;
  if (!isAbsent(ra)) out.runAttempt = ctxAttempt(ra, 'context.run_attempt', 1);
  const jobId = optIdString(value.job_id ?? value.jobId, 'context.job_id');
  if (jobId !== undefined) out.jobId = jobId;
  return out;
}

/** True when a record is a context line rather than an event. */
export function isContextLine(r: Obj): boolean {
  return r.context !== undefined && isObject(r.context);
}
