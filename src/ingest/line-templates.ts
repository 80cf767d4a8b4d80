/**
 * Lines remembered with their timestamp value cut out, for the repeat fast path of the record
 * parser: most telemetry repeats a call with only a new timestamp, and recognising such a line by
 * its text is far cheaper than JSON.parse. Only the text outside the cut must match exactly; the
 * caller validates the new timestamp value itself.
 *
 * Bounded: two generations of at most `max` lines each; the older one is dropped when the newer
 * fills up, so recently used lines survive and memory stays flat.
 */

const TS_FIELD = '"timestamp":"';
/** characters hashed before and after the cut (hashAround) */
const HASH_BEFORE = 24;
const HASH_AFTER = 64;
/** A timestamp value that is a plain JSON string: no escapes, quotes or control characters. */
const PLAIN_TS = /^[0-9A-Za-z:.+-]+$/;

interface Entry<T> {
  pre: string;
  post: string;
  value: T;
}

export class LineTemplates<T> {
  private young = new Map<number, Entry<T>[]>();
  private old = new Map<number, Entry<T>[]>();
  private youngCount = 0;
  // The cut of the last line passed to match(), for value() and remember().
  private text: string | null = null;
  private start = 0;
  private end = 0;
  private hash = 0;
  /** where the last line's timestamp field was */
  private lastAt = -1;
  /** the text before the cut of the last line remembered, shared with the next one when equal */
  private lastPre: string | null = null;

  constructor(private readonly max: number) {}

  /**
   * What was remembered for a line equal to `text` outside its timestamp value, if anything.
   * The cut is always the whole content of one JSON string value, given that the remembered line
   * parsed as JSON: the value holds no quote or backslash, and `"timestamp":"` cannot end inside
   * a string (its second quote is unescaped).
   */
  match(text: string): T | undefined {
    this.text = null;
    // Lines of one producer put the field at much the same place: look there before searching.
    // Any occurrence serves: `"timestamp":"` is always a key and the opening quote of its value.
    let at = this.lastAt;
    if (at < 0 || !text.startsWith(TS_FIELD, at)) {
      at = text.indexOf(TS_FIELD);
      if (at === -1) return undefined;
      this.lastAt = at;
    }
    const start = at + TS_FIELD.length;
    const end = text.indexOf('"', start);
    // A cut that is not a plain value (say, it holds an escaped quote) can match no template, whose
    // cut was plain, once the caller has checked the value is a time (isRfc3339At: no backslash).
    if (end === -1 || end === start) return undefined;
    this.text = text;
    this.start = start;
    this.end = end;
    this.hash = hashAround(text, start, end);
    return find(this.young, this.hash, text, start, end) ?? find(this.old, this.hash, text, start, end);
  }

  /** Where the timestamp value of the line last given to match() (which must have cut it) starts. */
  get cutStart(): number {
    return this.start;
  }

  /** ...and where it ends (the index of its closing quote). */
  get cutEnd(): number {
    return this.end;
  }

  /** The timestamp value of the line last given to match() (which must have cut it). */
  value(): string {
    return this.text!.slice(this.start, this.end);
  }

  /** Remembers `text` (the line last given to match()) as standing for `value`. */
  remember(text: string, value: T): void {
    if (this.text !== text || !PLAIN_TS.test(text.slice(this.start, this.end))) return;
    // Fresh copies: slices of the line would keep the whole read chunk alive. The text before the
    // timestamp names the job run, which the calls remembered one after another mostly share.
    const last = this.lastPre;
    const pre = last !== null && last.length === this.start && text.startsWith(last) ? last : (this.lastPre = flatCopy(text.slice(0, this.start)));
    const e: Entry<T> = { pre, post: flatCopy(text.slice(this.end)), value };
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
    this.text = null;
    this.lastPre = null;
  }
}

function find<T>(m: Map<number, Entry<T>[]>, hash: number, text: string, start: number, end: number): T | undefined {
  const bucket = m.get(hash);
  if (bucket === undefined) return undefined;
  for (let i = bucket.length - 1; i >= 0; i--) {
    const e = bucket[i]!;
    // Equal lengths first; then slices compared with ===, which V8 does as one memory compare
    // (3x faster than startsWith and endsWith on these lines).
    if (e.pre.length === start && e.post.length === text.length - end && text.slice(end) === e.post && text.slice(0, start) === e.pre) return e.value;
  }
  return undefined;
}

/**
 * A cheap hash of the text next to the cut: the end of the job run before it (the GitHub job id in
 * native lines) and the destination after it. Lines that differ only further away (another process
 * calling the same host) share a bucket and are told apart by the comparison in find(); hashing 256
 * characters instead cost more than those comparisons save.
 */
function hashAround(text: string, start: number, end: number): number {
  let h = (text.length - (end - start)) | 0;
  for (let i = Math.max(0, start - HASH_BEFORE); i < start; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  const stop = Math.min(text.length, end + HASH_AFTER);
  for (let i = end; i < stop; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  return h;
}

/**
 * A copy of `s` that shares no memory with it. Slicing a concatenation makes V8 flatten it into a
 * new sequential string, one copy in one byte per character for Latin-1 text (most telemetry is
 * ASCII); copying through a Buffer (encode, then decode) cost twice that, and 3% of the parse
 * worker's time on the 1M-event benchmark file.
 */
function flatCopy(s: string): string {
  return (' ' + s).slice(1);
}
