/**
 * The one place that knows stdout may be a pipe whose reader has gone (`... | head -1`).
 * A closed reader is not an error: the command stops producing output, keeps its own exit code
 * and prints nothing about it. Any other output failure ends the command with EXIT.IO.
 */
let closed = false;
let failure: Error | null = null;

function isClosedReader(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED' || err.code === 'ECONNRESET';
}

/** Installs the stdout/stderr 'error' handlers. Call once, before any command runs. */
export function guardOutput(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    closed = true;
    if (!isClosedReader(err)) failure ??= err;
  });
  // stderr can be a closed pipe too (`2>&1 | head`); there is nowhere left to report to.
  process.stderr.on('error', () => undefined);
}

/** True once stdout can take no more output: long producers check this and stop early. */
export function outputClosed(): boolean {
  return closed;
}

/**
 * Resolves once what was written to stdout is out, or has failed: a device or file that refuses the
 * bytes (`> /dev/full`) reports it through an 'error' event a tick after the write, too late for the
 * exit code unless the command waits for it here.
 */
export function outputSettled(): Promise<void> {
  return new Promise((resolve) => {
    const next = () => setImmediate(resolve);
    if (closed || process.stdout.destroyed) return next();
    try {
      process.stdout.write('', next);
    } catch {
      next();
    }
  });
}

/** A stdout failure other than a closed reader (e.g. disk full), if one happened. */
export function outputFailure(): Error | null {
  return failure;
}

/** Writes data output to stdout, or nothing once the reader has gone. */
export function out(text: string): void {
  if (closed) return;
  try {
    process.stdout.write(text);
  } catch (err) {
    // Files are written synchronously: their errors are thrown here rather than emitted.
    closed = true;
    if (!isClosedReader(err as NodeJS.ErrnoException)) failure ??= err as Error;
  }
}
