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
  | { kind: 'call'; event: NetworkCallEvent }
  | { kind: 'detection'; detection: ImportedDetection }
  /** a leading context line: sets job context for the records after it */
  | { kind: 'context'; ctx: Partial<JobContext> }
  | { kind: 'skip' };

/** Converts one already-JSON-parsed record. Throws RecordError on bad input. */
export interface RecordAdapter {
  readonly format: IngestFormat;
  parse(record: unknown, rc: RecordContext): AdapterOutput;
}
