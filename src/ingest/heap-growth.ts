import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 may grow the heap past what survived the last full collection, in percent.
 *
 * Measured on the 5M-event benchmark file: the main thread's live heap stays near 50 MiB the whole
 * run (heap used right after full collections), but V8's default growing factor (up to 4x) let
 * its old space reach over 200 MiB, mostly garbage, and the worker's up to about 50 MiB; that, not
 * live data, took peak RSS past 600 MiB. A fixed 30% growth runs full collections sooner (alone: 688 -> 415 MiB; with the
 * smaller ingest page cache of the SQLite backend's ingest port: under 400 MiB), for a few percent more
 * CPU (docs/benchmarks.md). 10% bought nothing more. Live data is never capped, so larger inputs fit.
 */
export const INGEST_HEAP_GROWING_PERCENT = 30;

let applied = false;

/** Sets the growth for the whole process (flags are process-wide: the parse worker too). Idempotent. */
export function limitHeapGrowth(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString(`--heap-growing-percent=${INGEST_HEAP_GROWING_PERCENT}`);
}
