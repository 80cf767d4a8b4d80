import { join } from 'node:path';
import type { ClientUnderTest } from './runner.js';
import { ROOT } from './tools.js';

/**
 * The policy gateway's upstream side as the client under test of the conformance client scenarios: the CLI
 * runs the driver (test/conformance/gateway-client.ts, built) per scenario, which puts the real gateway between
 * the scenario server and an SDK v2 agent. The driver writes `completed <scenario>` to its stderr once the
 * agent has done everything the scenario asks; a scenario without that line fails even if its checks passed.
 */
export const GATEWAY_CLIENT: ClientUnderTest = {
  command: [process.execPath, join(ROOT, 'dist', 'test', 'conformance', 'gateway-client.js')],
  completedMarker: /^gateway-client: \+\d+ms completed \S+$/m,
};
