/** A database of another application, where no store is made (sqlite/db.ts sqliteFileKind). */
export class ForeignDatabaseError extends Error {
  override name = 'ForeignDatabaseError';
}

export class StoreNewerError extends Error {
  override name = 'StoreNewerError';
}

/**
 * Refuses a store that a newer egress-triage migrated past what this one knows: written to by this
 * one, it would get rows its newer schema does not expect, and read by it, columns may mean what
 * this one cannot tell. Versions come in families of a hundred (core 1-99, policy state 100-199):
 * only a recorded version above the highest this build knows of the same family is newer.
 */
export function refuseNewerSchema(recorded: readonly number[], known: readonly number[]): void {
  if (known.length === 0) return;
  const family = Math.floor(Math.min(...known) / 100);
  const highest = Math.max(...known);
  const newer = recorded.filter((v) => Math.floor(v / 100) === family && v > highest).sort((a, b) => a - b);
  if (newer.length === 0) return;
  throw new StoreNewerError(
    `the store was migrated by a newer egress-triage (schema version ${newer[newer.length - 1]}; this one knows up to ${highest}): use that version or a later one; nothing was changed`,
  );
}

/** A store whose applied migrations made tables it no longer has: changed by hand or by another tool. */
export class StoreDamagedError extends Error {
  override name = 'StoreDamagedError';
}

/** The tables of `expected` that are not among `present`, in `expected`'s order. */
export function missingTables(present: Iterable<string>, expected: readonly string[]): string[] {
  const have = new Set(present);
  return expected.filter((t) => !have.has(t));
}

/**
 * Refuses a store that lacks a table its schema promises. Without this, the first query that
 * names the table fails as "no such table", which the CLI must answer as a bug of its own (exit
 * 70): the error alone cannot tell our SQL from a damaged file. Checked once per open, after the
 * pending migrations (which change nothing a lost table held). Only tables are checked: a dropped
 * index costs speed, not answers, and a dropped column is a far rarer edit.
 */
export function refuseDamagedStore(present: Iterable<string>, expected: readonly string[]): void {
  const missing = missingTables(present, expected);
  if (missing.length === 0) return;
  const one = missing.length === 1;
  throw new StoreDamagedError(
    `it is damaged: table${one ? '' : 's'} ${missing.join(', ')} ${one ? 'is' : 'are'} missing, though the migrations recorded in it made ${one ? 'it' : 'them'}. Restore it from a backup`,
  );
}

/**
 * A pending migration that failed because a table it reads or changes is gone: the store is
 * damaged, not this build, so it is said as such (exit 5) rather than as an internal error. The
 * migration was rolled back. `lost` is the table the database named, if it did.
 */
export function refuseMigrationOnLostTable(m: { version: number; name: string }, lost: string | undefined, tables: readonly string[]): void {
  if (lost === undefined || !tables.includes(lost)) return;
  throw new StoreDamagedError(
    `it is damaged: migration ${m.version} (${m.name}) needs table ${lost}, which is missing; the migration was rolled back. Restore the store from a backup`,
  );
}
