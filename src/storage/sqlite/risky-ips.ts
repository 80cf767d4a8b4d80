import type { SqliteDatabase } from './db.js';
import type { RiskyRanges } from '../analysis-port.js';

/**
 * Address ids in the list's IP ranges, computed incrementally over the shared address dictionary: a
 * detection there is risky whatever name its call went by. Empty, and never read, when the list has
 * no ranges (the built-in list has none).
 *
 * Judging an address costs about 12 µs, so an index is kept per connection and list (riskyIpIndexOf)
 * and judges each address once. Ids only grow, except that an ingest rolled back gives its ids out
 * again: a refresh that finds its highest id gone or holding another address starts over.
 */
export class RiskyIpIndex {
  private maxId = 0;
  private maxIp: string | null = null;
  readonly ids = new Set<number>();
  constructor(private readonly risky: Pick<RiskyRanges, 'hasRanges' | 'matchHost'>) {}
  refresh(db: SqliteDatabase): Set<number> {
    if (!this.risky.hasRanges) return this.ids;
    if (this.maxId > 0 && db.prepare('SELECT ip FROM ips WHERE id = ?').pluck().get(this.maxId) !== this.maxIp) {
      this.ids.clear();
      this.maxId = 0;
      this.maxIp = null;
    }
    const rows = db.prepare('SELECT id, ip FROM ips WHERE id > ? ORDER BY id').raw().all(this.maxId) as [number, string][];
    for (const [id, ip] of rows) {
      if (this.risky.matchHost(ip)) this.ids.add(id);
      this.maxId = id;
      this.maxIp = ip;
    }
    return this.ids;
  }
}

const INDEXES = new WeakMap<SqliteDatabase, Map<string, RiskyIpIndex>>();

/** The connection's index for this list (by its entries), made on first use. */
export function riskyIpIndexOf(db: SqliteDatabase, risky: RiskyRanges): RiskyIpIndex {
  let byList = INDEXES.get(db);
  if (!byList) INDEXES.set(db, (byList = new Map()));
  const key = risky.entries.join('\n');
  let index = byList.get(key);
  if (!index) byList.set(key, (index = new RiskyIpIndex(risky)));
  return index;
}
