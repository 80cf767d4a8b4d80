/**
 * Requests the upstream sends the client are remembered (PolicyProxy.upstreamRequests) so that only an
 * answer to one of them is forwarded up. An upstream can send requests the client never answers, each
 * id as long as a message: what is remembered is bounded (RecentIds: 4096 ids, 1 Mi characters), the
 * oldest forgotten first, and a client's answer to a forgotten one is dropped like any answer to no
 * open request. recent-ids.test.ts checks RecentIds alone; this checks the gateway is built on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, resultText, startGateway } from './stdio-helpers.js';
import { waitFor } from '../helpers/wait.js';

const POLICY = 'version: 1\ndefault: allow\n';

for (const c of [
  { label: 'past 4096 ids', n: 4097, pad: 0 },
  { label: 'past 1 Mi characters of ids', n: 4, pad: 300_000 },
]) test(`stdio (2025-11-25): the upstream's unanswered requests are remembered up to a bound (${c.label}); an answer to a forgotten one is dropped`, async () => {
  const g = await startGateway(POLICY);
  try {
    await g.init();
    g.send(call('asker', 'ask_many', { n: c.n, pad: c.pad }));
    assert.equal(resultText(await g.reply('asker')), `asked ${c.n}`);
    const asked = g.out.filter((m) => m.method === 'ping').map((m) => m.id as string);
    assert.equal(asked.length, c.n, 'every request reached the client');
    const [oldest, newest] = [asked[0]!, asked.at(-1)!];
    g.send({ jsonrpc: '2.0', id: oldest, result: {} });
    g.send({ jsonrpc: '2.0', id: newest, result: {} });
    await g.barrier();
    // the newest is still remembered and its answer reaches the upstream; the oldest was forgotten
    await waitFor(() => g.upstream().some((m) => m.id === newest && m.method === undefined), 15_000, 25, 'the answer to the newest request upstream');
    assert.deepEqual(g.upstream().filter((m) => m.method === undefined && m.id === oldest), [], 'the answer to the forgotten request was not forwarded');
    assert.match(g.stderr(), new RegExp(`dropped a response from the client to "${oldest.slice(0, 40)}p*": no such request from the upstream is open`));
  } finally {
    await g.close();
  }
});
