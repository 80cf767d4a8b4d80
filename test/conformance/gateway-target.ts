import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { CLI, kill, spawnUntil } from '../gateway/helpers.js';
import { startFixture, type Fixture } from './runner.js';
import { TRANSPARENT_POLICY } from './transparent-policy.js';


/**
 * The HTTP policy gateway as a conformance target: the fixture upstream as its own process, and the built
 * CLI's `egress-triage gateway --upstream <fixture> --listen 127.0.0.1:0` in front of it, with
 * TRANSPARENT_POLICY and a store in a temp folder. stop() ends both processes and removes the folder.
 */
export async function startGatewayTarget(): Promise<Fixture> {
  const tmp = tempDir('egress-triage-conformance-gateway-');
  let fixture: Fixture | undefined;
  try {
    fixture = await startFixture();
    const policy = join(tmp.dir, 'policy.yaml');
    writeFileSync(policy, TRANSPARENT_POLICY);
    const args = [CLI, 'gateway', '--policy', policy, '--db', join(tmp.dir, 'gateway.db'), '--upstream', fixture.url, '--listen', '127.0.0.1:0'];
    const gw = await spawnUntil(process.execPath, args, /listening on (http:\/\/\S+)/, 60_000);
    const up = fixture;
    return {
      url: gw.match[1]!,
      stop: async () => {
        await kill(gw.child);
        await up.stop();
        tmp.cleanup();
      },
    };
  } catch (e) {
    await fixture?.stop();
    tmp.cleanup();
    throw e;
  }
}
