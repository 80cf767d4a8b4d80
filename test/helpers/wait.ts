/**
 * Polls `fn` until it returns something truthy (which is returned), failing after `timeoutMs` with
 * what was awaited. A bounded poll of a condition, never a sleep before an assertion.
 *
 * The default bound is generous on purpose: it costs nothing while the condition comes, and on the
 * shared 2-core machine, with four test files at work, a gateway and its upstream took over 10 s to
 * answer their first request (2026-12-06, a whole-suite run beside other work).
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 30_000, stepMs = 25, what = 'a condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`waitFor timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
