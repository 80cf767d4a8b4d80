import { parseSource, type ParseError } from '../../src/ingest/record-parser.js';
import type { AdapterOutput } from '../../src/ingest/adapters/types.js';
import type { JobContext, NetworkCallEvent } from '../../src/domain/types.js';

export interface Parsed {
  outputs: AdapterOutput[];
  calls: NetworkCallEvent[];
  errors: ParseError[];
  notes: Record<string, number>;
  records: number;
}

/** Reads and parses a whole source in this thread, as the ingest worker does, without a store. */
export async function parseFile(
  path: string,
  defaults: Partial<JobContext> = {},
  format: 'auto' | 'ecs' | 'harden-runner' = 'auto',
  /** extra risky destinations, as a config's reach the parser (pipeline.ts) */
  riskyDestinations?: string[],
): Promise<Parsed> {
  const r: Parsed = { outputs: [], calls: [], errors: [], notes: {}, records: 0 };
  for await (const chunk of parseSource(path, { format, tenant: 'default', defaults, batchSize: 50, riskyDestinations })) {
    const b = chunk.batch;
    r.outputs.push(...b.outputs);
    r.errors.push(...b.errors);
    r.records += b.records;
    for (const [k, v] of Object.entries(b.notes)) r.notes[k] = (r.notes[k] ?? 0) + v;
  }
  for (const o of r.outputs) if (o.kind === 'call') r.calls.push(o.event);
  return r;
}
