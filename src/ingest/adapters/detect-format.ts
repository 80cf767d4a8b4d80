/**
 * `--format auto`: picks the format from the first record, and maps a format to its adapter.
 */
import { EcsAdapter } from './ecs.js';
import { HardenRunnerAdapter } from './harden-runner.js';
import { NativeAdapter } from './native.js';
import { StepSecurityAdapter } from './stepsecurity.js';
import { INGEST_FORMATS, type IngestFormat, type RecordAdapter } from './types.js';
import { isObject } from './validate.js';

function has(o: Record<string, unknown>, key: string): boolean {
  return o[key] !== undefined;
}

/**
 * Guesses the format of a stream from its first (already JSON-parsed) record. Rules, in order:
 * - a JSON array: the format of its first element (a stepsecurity array is the usual case);
 * - `{"data": {"detections": [...]}}` (or `{"detections": [...]}`) → stepsecurity (envelope);
 * - a context line `{"context": {...}}` → harden-runner, unless it says `"format": "<fmt>"`;
 * - `endpoint` plus any of `tool` / `detection_id` / `is_suppressed` / `is_resolved` → stepsecurity;
 * - a string `detection_id` plus `is_suppressed` or `is_resolved` → stepsecurity (a detection with no endpoint);
 * - `ipAddress` / `domainName` / `tool` → harden-runner;
 * - `@timestamp`, a `destination` object or a `destination.*` dotted key → ecs;
 * - a `process` object plus `domain` or `ip` (plus `owner` or `port`) → native;
 * - otherwise null.
 */
export function detectFormat(firstRecord: unknown): IngestFormat | null {
  if (Array.isArray(firstRecord)) {
    // One level only: an array of arrays tells nothing, and deep nesting must not recurse.
    if (firstRecord.length === 0 || Array.isArray(firstRecord[0])) return null;
    const f = detectFormat(firstRecord[0]);
    return f === null && isObject(firstRecord[0]) && has(firstRecord[0], 'id') ? 'stepsecurity' : f;
  }
  if (!isObject(firstRecord)) return null;
  const r = firstRecord;
  if (isObject(r.data) && Array.isArray(r.data.detections)) return 'stepsecurity';
  if (Array.isArray(r.detections)) return 'stepsecurity';
  if (isObject(r.context) && !has(r, 'ipAddress') && !has(r, 'process') && !has(r, '@timestamp')) {
    const hint = r.format;
    if (typeof hint === 'string' && (INGEST_FORMATS as readonly string[]).includes(hint)) return hint as IngestFormat;
    return 'harden-runner';
  }
  if (
    has(r, 'endpoint') &&
    (has(r, 'tool') || has(r, 'detection_id') || has(r, 'is_suppressed') || has(r, 'is_resolved'))
  ) {
    return 'stepsecurity';
  }
  // A detection of a kind with no destination (a secret in a build log) has no endpoint: its own
  // detection_id with the API's state flags still says what it is. Refused as an unknown format, it
  // took the network detections after it down with it.
  if (typeof r.detection_id === 'string' && (has(r, 'is_suppressed') || has(r, 'is_resolved'))) return 'stepsecurity';
  if (has(r, 'ipAddress') || has(r, 'domainName') || (isObject(r.tool) && !has(r, 'process'))) return 'harden-runner';
  if (has(r, '@timestamp') || isObject(r.destination)) return 'ecs';
  for (const k in r) if (k.startsWith('destination.')) return 'ecs';
  if (isObject(r.process) && (has(r, 'domain') || has(r, 'ip')) && (has(r, 'owner') || has(r, 'port'))) return 'native';
  return null;
}

/** A fresh adapter for a format (adapters keep small per-stream caches; use one per stream). */
export function adapterFor(format: IngestFormat): RecordAdapter {
  switch (format) {
    case 'native':
      return new NativeAdapter();
    case 'harden-runner':
      return new HardenRunnerAdapter();
    case 'ecs':
      return new EcsAdapter();
    case 'stepsecurity':
      return new StepSecurityAdapter();
    default: {
      const never: never = format;
      throw new Error(`unknown ingest format: ${String(never)}`);
    }
  }
}
