import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';

/**
 * The built CLI the tests run, and how they end a child of it. A module of its own, importing nothing
 * else: the conformance client driver (test/conformance/gateway-client.ts) is started once per scenario,
 * and the other helpers would load most of the code base into every one of those processes.
 */
export const CLI = process.env.EGRESS_TRIAGE_TEST_CLI ?? fileURLToPath(new URL('../../bundle/cli/main.js', import.meta.url));

/** Ends `child` with SIGTERM and resolves once it has exited (at once if it already has). */
export function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
