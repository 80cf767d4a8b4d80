import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import type { ProcessInfo } from '../../src/domain/types.js';
import { call, ingestCalls, rollupMismatchesOf, tailscaled, TS0 } from '../analysis/helpers.js';
import { detectionsView, eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * The engine writes a whole batch at once: a binary flagged as a suspected impostor by a call of a
 * batch must also lose the suppressions of its earlier calls in that same batch, which are not stored
 * yet when the flag releases the stored ones.
 */

const NOC = 'New-Outbound-Network-Call';
/** named tailscaled, another binary: looks like the daemon until it calls outside its signature */
const LATE: ProcessInfo = { name: 'tailscaled', path: '/usr/local/bin/tailscaled', sha256: 'e'.repeat(64), parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };

storeTest('a binary flagged by a call of a batch is not left suppressed by its earlier calls of that batch', async (at) => {
  const store = await at.open();
  try {
    const T = 'same';
    await ingestCalls(at, store, T, [call(T, 'web', 1, TS0, tailscaled(true), { ip: '100.64.0.1', port: 41641 })]);
    const rules = new RulesService(store);
    await rules.create(T, { detection_id: NOC, conditions: { process: 'tailscaled' } }, 't');
    // one batch: three calls that a rule suppresses, then the contradicting call that flags the binary
    const r = await ingestCalls(at, store, T, [
      ...[1, 2, 3].map((i) => call(T, 'web', 2, TS0 + i, LATE, { ip: `100.64.0.${i + 1}`, port: 41641 })),
      call(T, 'web', 2, TS0 + 9, LATE, { domain: 'evil.example.com', port: 443 }),
    ]);
    assert.equal(r.suppressedOnIngest, 0);
    const byStatus = (await at.rows(`SELECT d.status, count(*) AS n FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id WHERE p.sha256 = ? GROUP BY d.status`, [LATE.sha256]));
    assert.deepEqual(byStatus, [{ status: 0, n: 4 }], 'every detection of the flagged binary is new');
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});
