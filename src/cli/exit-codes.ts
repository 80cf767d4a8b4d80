/**
 * Every exit status the CLI uses, in one place. README "Exit codes" documents the same table;
 * scripts rely on these numbers, so never reuse one for a different meaning.
 */
export const EXIT = {
  /** the command did what was asked (ingest: every record accepted) */
  OK: 0,
  /** input was read but some or all of it was rejected: ingest rejected records or a source ended early,
   * a policy file is invalid */
  REJECTED: 1,
  /** the command line is wrong: unknown command or option, missing or malformed argument, missing --yes */
  USAGE: 2,
  /** something named does not exist: the store, an input file, a rule, an approval, a repository's jobs */
  NOT_FOUND: 3,
  /** a safety guard refused: a rule that would hide risky or impostor detections, overwriting a store */
  REFUSED: 4,
  /** the environment failed: store read-only, locked or not a store; a file cannot be read or written;
   * an address is in use */
  IO: 5,
  /** a bug in egress-triage */
  INTERNAL: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
