/**
 * A set of JSON-RPC ids that forgets its oldest entries past a count and a total length: what a
 * connection remembers of requests it gave up on. An id may be as long as a message (megabytes), and
 * a client can give up on requests for as long as it likes; the oldest are the least likely to get a
 * late answer. Forgetting one costs little: its late answer, should it still come, is dropped as an
 * answer to no open request.
 */
export class RecentIds {
  private readonly ids = new Set<string | number>();
  private chars = 0;

  constructor(
    private readonly maxIds = 4096,
    private readonly maxChars = 1 << 20,
  ) {}

  add(id: string | number): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.chars += weight(id);
    // Set iterates in insertion order: the first is the oldest
    for (const old of this.ids) {
      if (this.ids.size <= this.maxIds && this.chars <= this.maxChars) break;
      this.ids.delete(old);
      this.chars -= weight(old);
    }
  }

  has(id: string | number): boolean {
    return this.ids.has(id);
  }

  delete(id: string | number): boolean {
    if (!this.ids.delete(id)) return false;
    this.chars -= weight(id);
    return true;
  }

  get size(): number {
    return this.ids.size;
  }
}

function weight(id: string | number): number {
  return typeof id === 'string' ? id.length : 8;
}
