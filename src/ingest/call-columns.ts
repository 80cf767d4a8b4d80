import type { AdapterOutput } from './adapters/types.js';
import type { ParsedBatch } from './record-parser.js';

/**
 * A parsed batch as the parse worker posts it to the main thread: its calls in columns, not one
 * object each.
 *
 * Posting the outputs as objects made the main thread deserialize every call's nine properties by
 * name: 0.5-0.6 s of its CPU for the 293,309 calls of the 1M-event benchmark file (v8.deserialize
 * of the same batches, 2026-12-04), on the thread that bounds the ingest. In columns, times and
 * ports cross as typed arrays, and every string or object the calls share (tenant, job run context,
 * process, domain, IP, protocol, status) crosses once per batch, named by its index. The main thread
 * builds the call objects again, in the adapters' shape.
 *
 * Only a call whose event has exactly the nine fields below (the native adapter's shape) goes into
 * the columns; any other output, or a call with a field more or less (a producer's verdict, DNS
 * names), crosses whole at its place, so nothing is ever dropped or changed on the way.
 */
export interface CallColumns {
  /** outputs in the batch, calls in columns and others together */
  count: number;
  /** the values the columns name, each once */
  values: unknown[];
  tenant: Uint32Array;
  ctx: Uint32Array;
  timestamp: Float64Array;
  domain: Uint32Array;
  ip: Uint32Array;
  port: Float64Array;
  protocol: Uint32Array;
  process: Uint32Array;
  status: Uint32Array;
  /** the outputs that are not in the columns, with their index in the batch, in order */
  others: { at: number; output: AdapterOutput }[];
}

export type ColumnBatch = Omit<ParsedBatch, 'outputs'> & { calls: CallColumns };

const FIELDS = ['tenant', 'ctx', 'timestamp', 'domain', 'ip', 'port', 'protocol', 'process', 'status'] as const;

function isColumnCall(o: AdapterOutput): o is Extract<AdapterOutput, { kind: 'call' }> {
  if (o.kind !== 'call' || 'names' in o) return false;
  const keys = Object.keys(o.event);
  if (keys.length !== FIELDS.length) return false;
  for (const k of keys) if (!(FIELDS as readonly string[]).includes(k)) return false;
  return true;
}

/** The batch with its calls in columns; `transfer` lists the buffers postMessage may move. */
export function toColumns(b: ParsedBatch): { batch: ColumnBatch; transfer: ArrayBuffer[] } {
  const { outputs, ...rest } = b;
  const n = outputs.length;
  const values: unknown[] = [];
  const index = new Map<unknown, number>();
  const ref = (v: unknown): number => {
    let i = index.get(v);
    if (i === undefined) {
      i = values.length;
      values.push(v);
      index.set(v, i);
    }
    return i;
  };
  const c: CallColumns = {
    count: n, values,
    tenant: new Uint32Array(n), ctx: new Uint32Array(n), timestamp: new Float64Array(n), domain: new Uint32Array(n),
    ip: new Uint32Array(n), port: new Float64Array(n), protocol: new Uint32Array(n), process: new Uint32Array(n),
    status: new Uint32Array(n), others: [],
  };
  let k = 0;
  for (let i = 0; i < n; i++) {
    const o = outputs[i]!;
    if (!isColumnCall(o)) {
      c.others.push({ at: i, output: o });
      continue;
    }
    const e = o.event;
    c.tenant[k] = ref(e.tenant);
    c.ctx[k] = ref(e.ctx);
    c.timestamp[k] = e.timestamp;
    c.domain[k] = ref(e.domain);
    c.ip[k] = ref(e.ip);
    c.port[k] = e.port;
    c.protocol[k] = ref(e.protocol);
    c.process[k] = ref(e.process);
    c.status[k] = ref(e.status);
    k++;
  }
  const transfer = [c.tenant, c.ctx, c.timestamp, c.domain, c.ip, c.port, c.protocol, c.process, c.status].map((a) => a.buffer as ArrayBuffer);
  return { batch: { ...rest, calls: c }, transfer };
}

/** The parsed batch back from its columns: the same outputs, in the same order. */
export function fromColumns(b: ColumnBatch): ParsedBatch {
  const { calls: c, ...rest } = b;
  const v = c.values as never[];
  const outputs: AdapterOutput[] = new Array(c.count);
  let other = 0;
  let k = 0;
  for (let i = 0; i < c.count; i++) {
    const next = c.others[other];
    if (next !== undefined && next.at === i) {
      outputs[i] = next.output;
      other++;
      continue;
    }
    outputs[i] = {
      kind: 'call',
      event: {
        tenant: v[c.tenant[k]!], ctx: v[c.ctx[k]!], timestamp: c.timestamp[k]!, domain: v[c.domain[k]!], ip: v[c.ip[k]!],
        port: c.port[k]!, protocol: v[c.protocol[k]!], process: v[c.process[k]!], status: v[c.status[k]!],
      },
    };
    k++;
  }
  return { ...rest, outputs };
}
