import { tempDir } from '../helpers.js';
import { buildDemoDb, killChild, startServe } from '../mcp/helpers.js';
import type { Fixture } from './runner.js';

/**
 * `egress-triage serve` as a conformance target: the built CLI as a child process on a free loopback
 * port, over a demo store built in a temp folder (the tools have real data to answer with). stop() ends
 * the process and removes the folder.
 */
export async function startServeTarget(): Promise<Fixture> {
  const tmp = tempDir('egress-triage-conformance-serve-');
  try {
    const db = await buildDemoDb(tmp.dir, { events: 3000, runs: 6 });
    const serve = await startServe(db);
    return {
      url: serve.url.href,
      stop: async () => {
        await killChild(serve.child);
        tmp.cleanup();
      },
    };
  } catch (e) {
    tmp.cleanup();
    throw e;
  }
}
