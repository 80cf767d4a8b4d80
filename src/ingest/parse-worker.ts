/**
 * Worker thread: reads, decompresses, splits and parses one file, posting ParsedBatch messages.
 * The main thread owns the database; this thread keeps JSON parsing and validation off it.
 * At most `window` batches are in flight; the main thread acks each one it has applied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseSource, type SourceChunk } from './record-parser.js';
import { toColumns, type ColumnBatch } from './call-columns.js';
import { SourceReadError } from './input.js';
import { HeapBound, WORKER_HEAP_GROWTH_PERCENT, WORKER_HEAP_SLACK_BYTES } from './heap-growth.js';
import type { IngestFormat } from './adapters/types.js';
import type { JobContext } from '../domain/types.js';

export interface WorkerInput {
  path: string;
  format: IngestFormat | 'auto';
  tenant: string;
  defaults: Partial<JobContext>;
  batchSize: number;
  window: number;
  repeatFastPath?: boolean;
  riskyDestinations?: readonly string[];
}

export type WorkerMessage =
  | ({ type: 'batch'; batch: ColumnBatch } & Omit<SourceChunk, 'batch'>)
  | { type: 'done' }
  | { type: 'error'; message: string; read?: { source: string; reason: SourceReadError['reason']; byte: number; detail: string } };

async function main(): Promise<void> {
  const port = parentPort!;
  const w = workerData as WorkerInput;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  port.on('message', (m: { type: string }) => {
    if (m.type === 'ack') {
      inFlight--;
      wake?.();
      wake = null;
    }
  });
  // The worker's live heap is small but it promotes much (line templates, per-run call keys): a looser
  // bound than the main thread's, so it seldom collects, yet stays far below V8's default (heap-growth.ts).
  const heap = new HeapBound(WORKER_HEAP_GROWTH_PERCENT, WORKER_HEAP_SLACK_BYTES);
  for await (const chunk of parseSource(w.path, w)) {
    while (inFlight >= w.window) await new Promise<void>((r) => (wake = r));
    inFlight++;
    // calls cross in columns (call-columns.ts): far less for the main thread to deserialize
    const { batch, transfer } = toColumns(chunk.batch);
    port.postMessage({ type: 'batch', ...chunk, batch } satisfies WorkerMessage, transfer);
    heap.check();
  }
  port.postMessage({ type: 'done' } satisfies WorkerMessage);
  port.close();
}

main().catch((err: Error) => {
  // A source that cannot be opened keeps its type across the thread boundary, so the CLI can explain it.
  const read = err instanceof SourceReadError ? { source: err.source, reason: err.reason, byte: err.byte, detail: err.detail } : undefined;
  parentPort!.postMessage({ type: 'error', message: err.message, read } satisfies WorkerMessage);
  parentPort!.close();
});
