import { EXIT } from './exit-codes.js';

/**
 * Makes the process fail if it ends while `work` is still pending. Node ends a process whose event
 * loop is empty even while a promise is pending, with code 0: a command stalled on a callback that
 * never came (a driver that dropped an error: `?port=abc` once did) would look done and successful.
 */
export function failIfUnfinished(work: Promise<unknown>, write: (text: string) => void = (t) => process.stderr.write(t)): void {
  let settled = false;
  const done = () => {
    settled = true;
  };
  work.then(done, done);
  process.on('exit', (code) => {
    if (settled || code !== 0) return;
    write('egress-triage: the command stopped before it finished (nothing left to wait for); this is a bug, please report it\n');
    process.exitCode = EXIT.INTERNAL;
  });
}
