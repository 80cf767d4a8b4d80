import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 may grow the heap past what survived the last full collection, in percent.
 *
 * Measured on the 5M-event benchmark file: the main thread's live heap stays near 50 MiB the whole
 * run, but V8's default growing factor (up to 4x for a fast-allocating heap) let the old space
 * reach over 200 MiB of mostly garbage (parsed batches from the worker, promoted while they wait
 * for their write), and the worker's heap grew the same way; that, not live data, took peak RSS
 * past 600 MiB. A fixed 30% growth runs full collections sooner: peak RSS fell below 400 MiB for a
 * little more CPU (docs/benchmarks.md). Live data is never limited, so a larger input still fits.
 */
export const INGEST_HEAP_GROWING_PERCENT = 30;

let applied = false;

/** Sets the growth for the whole process (flags are process-wide: the parse worker too). Idempotent. */
export function limitHeapGrowth(): void {
  if (applied) return;
  applied = true;
  setFlagsFromString(`--heap-growing-percent=${INGEST_HEAP_GROWING_PERCENT}`);
}
