import type { ImportedDetection, JobContext, NetworkCallEvent } from '../../domain/types.js';

export type IngestFormat = 'native' | 'harden-runner' | 'ecs' | 'stepsecurity';
export const INGEST_FORMATS: readonly IngestFormat[] = ['native', 'harden-runner', 'ecs', 'stepsecurity'];

/** Where a record came from, and the job context supplied by flags or a leading context line. */
export interface RecordContext {
  /** file path, or "<stdin>" */
  source: string;
  /** 1-based line number (NDJSON) or record index (JSON array), for error messages */
  line: number;
  /** tenant from --tenant / env, used when a record carries none */
  tenant: string;
  /** job context from CLI flags (--owner --repo --workflow --job --run-id) or a context line */
  defaults: Partial<JobContext>;
  /**
   * Counts of things read but not stored as a call, or stored with a caveat (DNS records, inbound
   * sockets skipped, hashes that are not hashes...). The parser moves them into the ingest summary.
   */
  notes: Record<string, number>;
  /**
   * The risky list to flag names by (built in plus the extra one, record-parser.ts); the built-in
   * list when absent.
   */
  risky?: { matchHost(host: string): string | null; readonly hostNames: readonly string[] };
}

/**
 * Why a record was rejected. `reason` is a short stable category used in the ingest summary
 * ("malformed-json", "missing-field", "wrong-type", "invalid-value", "missing-context", "unknown-format");
 * `field` is the dotted path of the offending field, when there is one.
 */
export class RecordError extends Error {
  constructor(
    readonly reason: string,
    readonly field: string | null,
    message: string,
  ) {
    super(message);
    this.name = 'RecordError';
  }
}

export type AdapterOutput =
  /** `names`: DNS answers carried by the same document (an ECS event may hold both) */
  | { kind: 'call'; event: NetworkCallEvent; names?: ResolvedNames }
  | { kind: 'detection'; detection: ImportedDetection }
  /** a leading context line: sets job context for the records after it */
  | { kind: 'context'; ctx: Partial<JobContext> }
  /**
   * A DNS answer (Harden-Runner DNSRecord, ECS dns.question.name + dns.resolved_ip): names the IPs
   * that later connections of the same job go to. Not a call.
   */
  | { kind: 'dns'; names: ResolvedNames }
  | { kind: 'skip' };

/** IPs (canonical) that `domain` resolved to, within one job run of one source. */
export interface ResolvedNames {
  tenant: string;
  ctx: JobContext;
  domain: string;
  ips: string[];
  /** the process that looked the name up (askerKey), when the record says which */
  asker?: string;
}

/**
 * One running process, as DNS answers and the calls after them name it: its pid with its name.
 * Undefined unless both are known (a Harden-Runner DNS record names no process).
 */
export function askerKey(pid: number | undefined, name: string | undefined): string | undefined {
  return pid === undefined || name === undefined ? undefined : `${pid}\u0000${name}`;
}

/** Converts one already-JSON-parsed record. Throws RecordError on bad input. */
export interface RecordAdapter {
  readonly format: IngestFormat;
  parse(record: unknown, rc: RecordContext): AdapterOutput;
}
