import { closeSync, fsyncSync, fchmodSync, openSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces a file's contents so that any reader (the policy watcher, an editor, a crash) sees the old
 * file or the new one, never half of either: the text goes to a temporary file in the same directory
 * (so the rename cannot cross filesystems), is flushed to disk, gets the old file's mode, and is
 * renamed over the old name; the directory is flushed so the rename itself survives a crash.
 * Synchronous on purpose: the caller compares, writes and reloads in one turn of the event loop.
 */
export function writeFileAtomicSync(path: string, text: string): void {
  const mode = statSync(path).mode & 0o7777;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeFileSync(fd, text);
      // the umask may have narrowed the mode given to open: set it exactly
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // not every filesystem lets a directory be opened and synced; the rename is still atomic
  }
}
