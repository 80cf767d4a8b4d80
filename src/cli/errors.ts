import { ForeignDatabaseError, StoreDamagedError, StoreNewerError } from '../storage/schema-version.js';
import { CommanderError } from 'commander';
import { EXIT } from './exit-codes.js';

/** An error caused by the user's input or environment: printed without a stack trace. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.USAGE,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * A command stopped by SIGINT or SIGTERM once it had cleaned up (ingest: its scope rolled back and
 * its leases released). main() then ends the process by that same signal, so the shell sees what
 * the README documents for a command killed by a signal (128 + signal).
 */
export class InterruptedError extends Error {
  /** report: what the interrupted work leaves behind, said on stderr before the process ends by the signal */
  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    readonly report?: string,
  ) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
  }
}

/** errno codes that mean the file system or the network refused, not that egress-triage is broken. */
// ERR_FS_EISDIR: Node's own code for fs.rm on a directory without `recursive`
const IO_CODES = new Set(['EACCES', 'EPERM', 'EISDIR', 'ERR_FS_EISDIR', 'ENOTDIR', 'ENOSPC', 'EROFS', 'EDQUOT', 'EMFILE', 'ENFILE', 'EIO', 'EADDRINUSE', 'EADDRNOTAVAIL']);

/**
 * SQLite errors that come from the environment (permissions, locks, a file that is not a store),
 * explained for the user; null for anything else, which is a bug.
 */
export function storeProblem(err: unknown): string | null {
  if (err instanceof StoreNewerError || err instanceof ForeignDatabaseError || err instanceof StoreDamagedError) return err.message;
  if (!(err instanceof Error) || err.name !== 'SqliteError') return null;
  const code = String((err as NodeJS.ErrnoException).code ?? '');
  if (code.startsWith('SQLITE_READONLY')) return `it is read-only (${err.message}): check the permissions of the file and of its directory`;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return `it is locked by another process (${err.message}): try again`;
  if (code.startsWith('SQLITE_CANTOPEN')) return `it cannot be opened (${err.message}): check the path and permissions`;
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) return `it is not an intact egress-triage store (${err.message})`;
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_PERM') return err.message;
  return null;
}

export interface Failure {
  code: number;
  /** what to print on stderr after "egress-triage: ", or null when it was already printed */
  message: string | null;
}

/**
 * A file a command was given that cannot be used: missing is 3 (NOT_FOUND), unreadable 5 (IO; a
 * directory, no permission); read but invalid is `invalid`.
 */
export function fileExit(readErrno: string | undefined, invalid: number): number {
  if (readErrno === undefined) return invalid;
  return readErrno === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.IO;
}

/** A policy file that cannot be used: as fileExit, and invalid is 1 (REJECTED). */
export function policyFileExit(e: { readErrno?: string }): number {
  return fileExit(e.readErrno, EXIT.REJECTED);
}

/**
 * The store of approvals and audit cannot be used (damaged, read-only, locked, not a store): named,
 * as every store command names it, so a gateway among several (or `audit`, `approvals`) says which
 * store to restore. Null for any other error.
 */
export function policyStoreError(e: unknown, store: { display: string }): UserError | null {
  const problem = storeProblem(e);
  return problem === null ? null : new UserError(`--db ${store.display}: the store of approvals and audit: ${problem}`, EXIT.IO);
}

/** Maps anything a command threw to its exit code and a one-line message (a stack only when debugging). */
export function failureOf(err: unknown, debug = false): Failure {
  if (err instanceof CommanderError) {
    // commander has printed its own message (or the help / version text, with exit code 0).
    return { code: err.exitCode === 0 ? EXIT.OK : EXIT.USAGE, message: null };
  }
  if (err instanceof UserError) return { code: err.exitCode, message: err.message };
  const e = err as NodeJS.ErrnoException | undefined;
  const text = e instanceof Error ? e.message : String(err);
  const store = storeProblem(err);
  if (store) return { code: EXIT.IO, message: `store: ${store}` };
  if (typeof e?.code === 'string') {
    if (e.code === 'ENOENT') return { code: EXIT.NOT_FOUND, message: text };
    if (IO_CODES.has(e.code)) return { code: EXIT.IO, message: text };
  }
  const detail = debug && e instanceof Error && e.stack ? `\n${e.stack}` : ' (set EGRESS_TRIAGE_DEBUG=1 for the stack trace)';
  return { code: EXIT.INTERNAL, message: `internal error: ${text}${detail}` };
}
