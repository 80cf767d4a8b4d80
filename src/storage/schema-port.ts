/** The versioned schema of a store, as `egress-triage db status` and `db migrate` see it. */
export interface SchemaStatus {
  applied: { version: number; name: string; appliedAt: string }[];
  pending: { version: number; name: string }[];
  /** versions recorded in the store that this build does not know: a newer build migrated it */
  unknown: number[];
  /** tables the applied migrations made that are gone (a damaged store); checked only once nothing is pending */
  missing: string[];
}

export interface SchemaPort {
  /** Reads the schema's state without changing anything. */
  status(): Promise<SchemaStatus>;
  /** Applies every pending migration (safe with concurrent migrators); returns the versions applied. */
  migrate(): Promise<number[]>;
}
