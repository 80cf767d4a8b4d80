import type { SqliteDatabase } from './db.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';

/**
 * Address ids in the list's IP ranges, computed incrementally over the shared (append-only) address
 * dictionary: a detection there is risky whatever name its call went by. Empty, and never read,
 * when the list has no ranges (the built-in list has none).
 */
export class RiskyIpIndex {
  private maxId = 0;
  readonly ids = new Set<number>();
  constructor(private readonly risky: Pick<RiskyDestinations, 'hasRanges' | 'matchHost'>) {}
  refresh(db: SqliteDatabase): Set<number> {
    if (!this.risky.hasRanges) return this.ids;
    const rows = db.prepare('SELECT id, ip FROM ips WHERE id > ? ORDER BY id').raw().all(this.maxId) as [number, string][];
    for (const [id, ip] of rows) {
      if (this.risky.matchHost(ip)) this.ids.add(id);
      this.maxId = id;
    }
    return this.ids;
  }
}
