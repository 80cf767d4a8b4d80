/**
 * Newline-delimited JSON-RPC framing for stdio, shared by the agent-facing and the upstream-facing side.
 *
 * Chunks are kept as bytes and split on 0x0A, and a line is decoded only once it is complete, so a
 * multi-byte character split across two chunks arrives intact. A line longer than the limit is not
 * buffered: its bytes are skipped up to the next newline, keeping only a head and a tail from which
 * the id (and method) can usually be recovered, so the sender can be answered.
 */

const HEAD_BYTES = 64 * 1024;
const TAIL_BYTES = 4096;

export interface OversizeLine {
  /** Length of the line in bytes, without the newline. */
  bytes: number;
  head: string;
  tail: string;
}

export class JsonLineReader {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;
  private head = '';
  private tail: Buffer = Buffer.alloc(0);

  constructor(
    readonly maxBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOversize: (o: OversizeLine) => void,
  ) {}

  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(0x0a, start);
      this.take(buf.subarray(start, nl === -1 ? buf.length : nl));
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  }

  private take(piece: Buffer): void {
    if (piece.length === 0) return;
    this.size += piece.length;
    if (!this.skipping && this.size > this.maxBytes) {
      this.skipping = true;
      this.head = Buffer.concat([...this.parts, piece]).subarray(0, HEAD_BYTES).toString('utf8');
      this.parts = [];
    }
    if (!this.skipping) {
      this.parts.push(piece);
      return;
    }
    const t = Buffer.concat([this.tail, piece]);
    this.tail = t.length > TAIL_BYTES ? Buffer.from(t.subarray(t.length - TAIL_BYTES)) : t;
  }

  private endLine(): void {
    if (this.skipping) {
      const o = { bytes: this.size, head: this.head, tail: this.tail.toString('utf8') };
      this.reset();
      this.onOversize(o);
      return;
    }
    const parts = this.parts;
    this.reset();
    let line = (parts.length === 1 ? parts[0]! : Buffer.concat(parts)).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim()) this.onLine(line);
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.skipping = false;
    this.head = '';
    this.tail = Buffer.alloc(0);
  }
}

export type RpcId = string | number;

/** A valid JSON-RPC id for MCP: a string, or an integer JSON numbers carry exactly (no null, no floats). */
export function isValidId(v: unknown): v is RpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v));
}

const STR = String.raw`"(?:[^"\\]|\\.){0,1024}"`;
const ID = String.raw`(${STR}|-?\d{1,16})`;
/** Leading members whose values are plain strings, e.g. `"jsonrpc":"2.0","method":"x",`. */
const LEAD = String.raw`^\s*\{(?:\s*"(?:jsonrpc|method)"\s*:\s*${STR}\s*,)*`;
const HEAD_ID = new RegExp(`${LEAD}\\s*"id"\\s*:\\s*${ID}`);
const TAIL_ID = new RegExp(String.raw`,\s*"id"\s*:\s*${ID}\s*\}\s*$`);
const HEAD_METHOD = new RegExp(String.raw`^\s*\{(?:\s*"(?:jsonrpc|id)"\s*:\s*(?:${STR}|-?\d{1,16})\s*,)*\s*"method"\s*:\s*(${STR})`);

/**
 * Best effort: the top-level id and method of a message too large to parse, from its head and tail.
 * Only ids that sit before any nested value, or close the top-level object, are trusted.
 */
export function recoverEnvelope(o: OversizeLine): { id?: RpcId; method?: string } {
  const raw = HEAD_ID.exec(o.head)?.[1] ?? TAIL_ID.exec(o.tail)?.[1];
  const out: { id?: RpcId; method?: string } = {};
  if (raw !== undefined) {
    try {
      const v: unknown = JSON.parse(raw);
      if (isValidId(v)) out.id = v;
    } catch {
      // not recoverable
    }
  }
  const m = HEAD_METHOD.exec(o.head)?.[1];
  if (m !== undefined) {
    try {
      out.method = JSON.parse(m) as string;
    } catch {
      // not recoverable
    }
  }
  return out;
}
