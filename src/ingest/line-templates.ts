/**
 * Lines remembered with their timestamp value cut out, for the repeat fast path of the record
 * parser: most telemetry repeats a call with only a new timestamp, and recognising such a line by
 * its bytes is far cheaper than decoding it and JSON.parse. Only the bytes outside the cut must
 * match exactly; the caller validates the new timestamp value itself.
 *
 * Bytes, not decoded text: a repeat is then never made a string at all (709,596 of the 1,002,905
 * lines of the 1M-event benchmark file; the parser alone took 10-20% less CPU: docs/benchmarks.md,
 * "ingest"). Equal bytes decode to equal text, and the cut is plain ASCII, so matching bytes is
 * matching the text the full path parsed.
 *
 * Bounded: two generations of at most `max` lines each, each line at most MAX_TEMPLATE_BYTES; the
 * older one is dropped when the newer fills up, so recently used lines survive and memory stays flat.
 */

/** `"timestamp":"` */
const TS_FIELD = Buffer.from('"timestamp":"', 'latin1');
const TS_LEN = TS_FIELD.length;
/** bytes hashed before and after the cut (hashAround) */
const HASH_BEFORE = 24;
const HASH_AFTER = 64;
const QUOTE = 0x22;

/** A remembered line: where its bytes before and after the cut are in its generation's arena. */
interface Entry<T> {
  pre: number;
  preLen: number;
  post: number;
  postLen: number;
  value: T;
}

/**
 * Lines longer than this are not remembered (they take the full path every time): a template is a
 * copy of its line, and telemetry lines are well under a kilobyte.
 */
const MAX_TEMPLATE_BYTES = 16 * 1024;
/** An arena's first size; it doubles as needed, and keeps its size when recycled. */
const ARENA_BYTES = 1 << 20;

/**
 * One generation of templates, their bytes copied into one arena. A generation's arena is reused by
 * the generation after next once its templates are dropped, so remembering lines makes no garbage:
 * with a small Buffer per template (293,309 on the 1M-event benchmark file), dead templates' memory
 * waited for full collections and the parse worker held 40 MiB of it at its peak, against 14 MiB
 * before (2026-12-05).
 */
class Generation<T> {
  readonly buckets = new Map<number, Entry<T>[]>();
  count = 0;
  used = 0;

  constructor(public arena: Buffer) {}

  /** Copies buf[from, to) into the arena; returns where it starts there. */
  append(buf: Buffer, from: number, to: number): number {
    const n = to - from;
    if (this.used + n > this.arena.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.arena.length, this.used + n));
      this.arena.copy(grown, 0, 0, this.used);
      this.arena = grown;
    }
    const at = this.used;
    buf.copy(this.arena, at, from, to);
    this.used += n;
    return at;
  }

  reset(): void {
    this.buckets.clear();
    this.count = 0;
    this.used = 0;
  }
}

export class LineTemplates<T> {
  private young = new Generation<T>(Buffer.allocUnsafeSlow(ARENA_BYTES));
  private old = new Generation<T>(Buffer.allocUnsafeSlow(ARENA_BYTES));
  // The line last passed to match() and its cut, for cutValue() and rememberLast(); null once used.
  private buf: Buffer | null = null;
  private lineStart = 0;
  private lineEnd = 0;
  private start = 0;
  private end = 0;
  private hash = 0;
  /** where the last line's timestamp field was, from its line's start */
  private lastAt = -1;
  /** the first timestamp field at or after `foundFrom` in `foundIn` (-1: none): one search per buffer, not per line */
  private foundIn: Buffer | null = null;
  private foundFrom = 0;
  private foundAt = -1;
  /** the bytes before the cut of the young generation's last template (in its arena), shared with the next one when equal */
  private lastPre: { at: number; len: number } | null = null;

  constructor(private readonly max: number) {}

  /**
   * What was remembered for a line equal to buf[from, to) outside its timestamp value, if anything.
   * The cut is always the whole content of one JSON string value, given that the remembered line
   * parsed as JSON: the value holds no quote or backslash, and `"timestamp":"` cannot end inside
   * a string (its second quote is unescaped).
   */
  match(buf: Buffer, from: number, to: number): T | undefined {
    this.buf = null;
    // Lines of one producer put the field at much the same place: look there before searching.
    // Any occurrence serves: `"timestamp":"` is always a key and the opening quote of its value.
    let at = this.lastAt;
    if (at < 0 || !fieldAt(buf, from + at, to)) {
      const f = this.findField(buf, from);
      if (f === -1 || f + TS_LEN > to) return undefined;
      at = f - from;
      this.lastAt = at;
    }
    const start = from + at + TS_LEN;
    let end = start;
    while (end < to && buf[end] !== QUOTE) end++;
    // A cut that is not a plain value (say, it holds an escaped quote) can match no template, whose
    // cut was plain (rememberLast), once the caller has checked the value is a time.
    if (end === to || end === start) return undefined;
    this.buf = buf;
    this.lineStart = from;
    this.lineEnd = to;
    this.start = start;
    this.end = end;
    this.hash = hashAround(buf, from, to, start, end);
    return find(this.young, this.hash, buf, from, to, start, end) ?? find(this.old, this.hash, buf, from, to, start, end);
  }

  /**
   * The timestamp value of the line last given to match() (which must have cut it), each byte one
   * character: a multi-byte character there is no time, and reads as none.
   */
  cutValue(): string {
    return this.buf!.toString('latin1', this.start, this.end);
  }

  /** Remembers the line last given to match(), if it cut one, as standing for `value`. */
  rememberLast(value: T): void {
    const buf = this.buf;
    if (buf === null || this.lineEnd - this.lineStart > MAX_TEMPLATE_BYTES || !plainTime(buf, this.start, this.end)) return;
    this.buf = null;
    const g = this.young;
    // The bytes before the timestamp name the job run, which the calls remembered one after another
    // mostly share: stored once for them.
    const preLen = this.start - this.lineStart;
    const last = this.lastPre;
    let pre: number;
    if (last !== null && last.len === preLen && buf.compare(g.arena, last.at, last.at + preLen, this.lineStart, this.start) === 0) pre = last.at;
    else {
      pre = g.append(buf, this.lineStart, this.start);
      this.lastPre = { at: pre, len: preLen };
    }
    const post = g.append(buf, this.end, this.lineEnd);
    const e: Entry<T> = { pre, preLen, post, postLen: this.lineEnd - this.end, value };
    const bucket = g.buckets.get(this.hash);
    if (bucket) bucket.push(e);
    else g.buckets.set(this.hash, [e]);
    if (++g.count >= this.max) {
      // the old generation's templates go; its arena takes the next ones
      const recycled = this.old;
      recycled.reset();
      this.old = g;
      this.young = recycled;
      this.lastPre = null;
    }
  }

  clear(): void {
    this.young.reset();
    this.old.reset();
    this.buf = null;
    this.lastPre = null;
  }

  /**
   * The first `"timestamp":"` at or after `from` in `buf`, or -1. A search runs to the end of the
   * buffer (a read chunk, many lines), so its answer is kept for the lines up to it: a source whose
   * lines lack the field is searched once per chunk, not once per line.
   */
  private findField(buf: Buffer, from: number): number {
    if (this.foundIn === buf && from >= this.foundFrom && (this.foundAt === -1 || from <= this.foundAt)) return this.foundAt;
    this.foundIn = buf;
    this.foundFrom = from;
    this.foundAt = buf.indexOf(TS_FIELD, from);
    return this.foundAt;
  }
}

function fieldAt(buf: Buffer, at: number, to: number): boolean {
  if (at + TS_LEN > to) return false;
  for (let i = 0; i < TS_LEN; i++) if (buf[at + i] !== TS_FIELD[i]) return false;
  return true;
}

/** A timestamp value that is a plain JSON string: [0-9A-Za-z:.+-] only (no escapes, quotes or control characters). */
function plainTime(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const ok = (c >= 0x30 && c <= 0x3a) /* 0-9 : */ || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2e || c === 0x2b || c === 0x2d;
    if (!ok) return false;
  }
  return true;
}

function find<T>(g: Generation<T>, hash: number, buf: Buffer, from: number, to: number, start: number, end: number): T | undefined {
  const bucket = g.buckets.get(hash);
  if (bucket === undefined) return undefined;
  const arena = g.arena;
  for (let i = bucket.length - 1; i >= 0; i--) {
    const e = bucket[i]!;
    // Equal lengths first; then one native memory compare each side.
    if (
      e.preLen === start - from && e.postLen === to - end &&
      buf.compare(arena, e.post, e.post + e.postLen, end, to) === 0 && buf.compare(arena, e.pre, e.pre + e.preLen, from, start) === 0
    ) return e.value;
  }
  return undefined;
}

/**
 * A cheap hash of the bytes next to the cut: the end of the job run before it (the GitHub job id
 * in native lines) and the destination after it. Lines that differ only further away (another
 * process calling the same host) share a bucket and are told apart by the comparison in find();
 * hashing 256 characters instead cost more than those comparisons save.
 */
function hashAround(buf: Buffer, from: number, to: number, start: number, end: number): number {
  let h = (to - from - (end - start)) | 0;
  for (let i = Math.max(from, start - HASH_BEFORE); i < start; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  const stop = Math.min(to, end + HASH_AFTER);
  for (let i = end; i < stop; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  return h;
}
