/**
 * Lines remembered with their timestamp value cut out, for the repeat fast path of the record
 * parser: most telemetry repeats a call with only a new timestamp, and recognising such a line by
 * its bytes is far cheaper than decoding it and JSON.parse. Only the bytes outside the cut must
 * match exactly; the caller validates the new timestamp value itself.
 *
 * Bytes, not decoded text: a repeat is then never made a string at all. The 1M-event benchmark
 * file's parser spent about half its time and most of its garbage on the strings of lines it then
 * dropped as repeats (docs/benchmarks.md, "ingest"). Equal bytes decode to equal text, and the cut
 * is plain ASCII, so matching bytes is matching the text the full path parsed.
 *
 * Bounded: two generations of at most `max` lines each; the older one is dropped when the newer
 * fills up, so recently used lines survive and memory stays flat.
 */

/** `"timestamp":"` */
const TS_FIELD = Buffer.from('"timestamp":"', 'latin1');
const TS_LEN = TS_FIELD.length;
/** bytes hashed before and after the cut (hashAround) */
const HASH_BEFORE = 24;
const HASH_AFTER = 64;
const QUOTE = 0x22;

interface Entry<T> {
  pre: Buffer;
  post: Buffer;
  value: T;
}

export class LineTemplates<T> {
  private young = new Map<number, Entry<T>[]>();
  private old = new Map<number, Entry<T>[]>();
  private youngCount = 0;
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
  /** the bytes before the cut of the last line remembered, shared with the next one when equal */
  private lastPre: Buffer | null = null;

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
    if (buf === null || !plainTime(buf, this.start, this.end)) return;
    this.buf = null;
    // Copies: views of the line would keep its whole read chunk alive. The bytes before the
    // timestamp name the job run, which the calls remembered one after another mostly share.
    const preLen = this.start - this.lineStart;
    const last = this.lastPre;
    const pre = last !== null && last.length === preLen && buf.compare(last, 0, preLen, this.lineStart, this.start) === 0
      ? last
      : (this.lastPre = copyOf(buf, this.lineStart, this.start));
    const e: Entry<T> = { pre, post: copyOf(buf, this.end, this.lineEnd), value };
    const bucket = this.young.get(this.hash);
    if (bucket) bucket.push(e);
    else this.young.set(this.hash, [e]);
    if (++this.youngCount >= this.max) {
      this.old = this.young;
      this.young = new Map();
      this.youngCount = 0;
    }
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
    this.youngCount = 0;
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

function find<T>(m: Map<number, Entry<T>[]>, hash: number, buf: Buffer, from: number, to: number, start: number, end: number): T | undefined {
  const bucket = m.get(hash);
  if (bucket === undefined) return undefined;
  for (let i = bucket.length - 1; i >= 0; i--) {
    const e = bucket[i]!;
    // Equal lengths first; then one native memory compare each side.
    if (
      e.pre.length === start - from && e.post.length === to - end &&
      buf.compare(e.post, 0, e.post.length, end, to) === 0 && buf.compare(e.pre, 0, e.pre.length, from, start) === 0
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

function copyOf(buf: Buffer, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(to - from);
  buf.copy(out, 0, from, to);
  return out;
}
