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
    const at = text.indexOf(TS_FIELD);
    if (at === -1) return undefined;
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
    if (e.pre.length === start && e.post.length === text.length - end && text.startsWith(e.pre) && text.endsWith(e.post)) return e.value;
  }
  return undefined;
}

/** A cheap hash of the text next to the cut (job run before it, endpoint and process after it). */
function hashAround(text: string, start: number, end: number): number {
  let h = (text.length - (end - start)) | 0;
  for (let i = Math.max(0, start - 64); i < start; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  const stop = Math.min(text.length, end + 192);
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
