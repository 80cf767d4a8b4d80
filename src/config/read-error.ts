/**
 * Why a file a person named could not be read, in words: one wording for the policy file, the grants
 * file, the gateway config and the config file. The errno still decides the exit code (3 for a missing
 * file, 5 otherwise, cli/errors.ts); the rest keep the system's message.
 */
const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
};

/** The errno of what readFileSync threw (EIO when it carries none). */
export function readErrno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

export function readErrorText(e: unknown): string {
  return READ_ERRORS[readErrno(e)] ?? (e as Error).message;
}
