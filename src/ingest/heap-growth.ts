import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * How far a thread's old generation may grow past what survived its last full collection before
 * the ingest collects it: a percentage of the survivors plus a fixed allowance.
 *
 * Measured on the 5M-event benchmark file (2026-12-03): the main thread's live heap stays at 40-60
 * MiB the whole run, the parse worker's at 15-25 MiB, but V8's default growing factor (up to 4x) let
 * their heaps reach 233 and 123 MiB, mostly garbage; that, not live data, took peak RSS to 516
 * MiB. V8's `--heap-growing-percent=30` bounded both, but flags are per process, and the worker,
 * which promotes much short-lived data (line templates, per-run call keys), then ran a full
 * collection every ~0.1 s: 20% of the 5M ingest's wall clock. So each thread bounds its own heap, the
 * worker more loosely (docs/benchmarks.md).
 */
export const HEAP_BOUND_GROWTH_PERCENT = 30;
export const HEAP_BOUND_SLACK_BYTES = 16 << 20;
export const WORKER_HEAP_GROWTH_PERCENT = 100;
export const WORKER_HEAP_SLACK_BYTES = 32 << 20;

/** The old generation: what full collections free (young objects are V8's own, cheap business). */
const OLD_SPACES = new Set(['old_space', 'large_object_space', 'code_space', 'code_large_object_space']);

function oldGenerationBytes(): number {
  let n = 0;
  for (const s of getHeapSpaceStatistics()) if (OLD_SPACES.has(s.space_name)) n += s.space_used_size;
  return n;
}

let collect: (() => void) | null = null;

/**
 * V8's full collection, for this isolate. Node has no API for it: `--expose-gc` installs `gc` on
 * contexts made after it is set, so a fresh context hands it over. Its `gc` collects the heap of
 * the thread that calls it.
 */
function fullCollection(): () => void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  return collect;
}

/**
 * Keeps one thread's old generation within HEAP_BOUND_GROWTH_PERCENT (plus the slack) of its live
 * data: check() after each unit of work runs a full collection once the bound is passed, and sets
 * the next bound from what survived. Live data is never capped, so larger inputs still fit.
 */
export class HeapBound {
  private limit: number;

  constructor(
    private readonly growthPercent = HEAP_BOUND_GROWTH_PERCENT,
    private readonly slackBytes = HEAP_BOUND_SLACK_BYTES,
  ) {
    this.limit = this.next(oldGenerationBytes());
  }

  /** Collects when the old generation has passed the bound; true when it did. */
  check(): boolean {
    if (oldGenerationBytes() < this.limit) return false;
    // fetched on first need: making the context costs a few ms that a small source never has to pay
    fullCollection()();
    this.limit = this.next(oldGenerationBytes());
    return true;
  }

  private next(live: number): number {
    return live * (1 + this.growthPercent / 100) + this.slackBytes;
  }
}
