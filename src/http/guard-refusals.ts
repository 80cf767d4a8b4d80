/**
 * Requests the guard refuses (guard.ts: 401 without a valid bearer token, 403 from a foreign Host or
 * Origin) come from nobody the server knows, and anyone who can reach its port can send them. An
 * operator must still see them: a token being guessed, a page trying DNS rebinding. One audit record
 * per request would let that anyone fill the audit store, so they are tallied by remote address and
 * kind: the first of a window is recorded at once, the rest are counted and recorded as one summary
 * when the window has ended (flush, called on a timer and when the server closes). An IPv6 client
 * is tallied by its /64 (clientBlock in domain/ip.ts): one host holds a whole /64 and could otherwise
 * write a record per address it picks. At most `maxKeys` block-and-kind pairs are tallied apart at
 * once; later ones share the tally of "other addresses".
 */
import { clientBlock } from '../domain/ip.js';

export interface GuardRefusal {
  /** the client's address as the socket gives it */
  remote: string;
  status: 401 | 403;
  /** a fixed name (guard.ts): the key of the tally, never text from the request */
  kind: string;
  message: string;
}

export interface GuardRefusalRecord extends GuardRefusal {
  /** the first of a window: the address it came from; a summary: the block tallied (clientBlock) */
  remote: string;
  /** 1 for the first of a window; for a summary, how many more came after it */
  count: number;
  /** true for the record written at once; false for a window's summary */
  first: boolean;
  /** the window's start (epoch ms) */
  since: number;
}

export interface TallyOptions {
  windowMs?: number;
  maxKeys?: number;
  now?: () => number;
}

/** What the remote address of a refusal tallied with the others reads as. */
export const OTHER_ADDRESSES = 'other addresses';

interface Window {
  r: GuardRefusal;
  block: string;
  since: number;
  more: number;
}

export class GuardRefusalTally {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(
    private readonly write: (r: GuardRefusalRecord) => void,
    o: TallyOptions = {},
  ) {
    this.windowMs = o.windowMs ?? 60_000;
    this.maxKeys = o.maxKeys ?? 1000;
    this.now = o.now ?? Date.now;
  }

  note(refusal: GuardRefusal): void {
    const now = this.now();
    let r = refusal;
    let block = clientBlock(r.remote);
    let key = `${block}\n${r.kind}`;
    let w = this.windows.get(key);
    if (w && now - w.since >= this.windowMs) {
      this.end(key, w);
      w = undefined;
    }
    if (!w && this.windows.size >= this.maxKeys) {
      this.flush();
      if (this.windows.size >= this.maxKeys) {
        r = { ...r, remote: OTHER_ADDRESSES };
        block = OTHER_ADDRESSES;
        key = `${OTHER_ADDRESSES}\n${r.kind}`;
        w = this.windows.get(key);
      }
    }
    if (w) {
      w.more++;
      return;
    }
    this.windows.set(key, { r, block, since: now, more: 0 });
    this.write({ ...r, count: 1, first: true, since: now });
  }

  /** Records the summary of every window that has ended; `all` ends them all (the server is closing). */
  flush(all = false): void {
    const now = this.now();
    for (const [key, w] of this.windows) if (all || now - w.since >= this.windowMs) this.end(key, w);
  }

  private end(key: string, w: Window): void {
    this.windows.delete(key);
    if (w.more > 0) this.write({ ...w.r, remote: w.block, count: w.more, first: false, since: w.since });
  }
}
