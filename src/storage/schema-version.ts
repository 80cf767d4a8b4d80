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
