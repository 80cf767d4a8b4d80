import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, cli, stdioGatewayClient, text, tmpDir, waitFor } from './helpers.js';

/**
 * A call held for approval was decided under the policy in force when it arrived. When the policy is
 * reloaded before the approval comes, the call is denied and the approval spent: it never runs under
 * rules that no longer hold (the tool denied now, or approval by the asking client withdrawn), and a
 * retry is decided afresh. Through a real gateway child and the CLI that approves.
 */
for (const era of ERAS) test(`stdio gateway (${REVISION[era]}): an approval granted after a reload does not run the held call; the retry is decided under the new policy`, async () => {
  const t = tmpDir();
  const held = 'version: 1\ndefault: allow\ntools:\n  write_thing: { action: require_approval, approval_timeout: 60 }\n';
  const policy = t.file('p.yaml', held);
  const g = await stdioGatewayClient(policy, t.db, { era });
  // the gateway logs each reload it applies, with the new policy's hash
  const reloads = () => g.stderr().match(/policy reloaded \(/g)?.length ?? 0;
  const pending = () =>
    waitFor(async () => {
      const r = await cli(['approvals', 'list', '--db', t.db, '--json']);
      return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((x) => x.tool === 'write_thing');
    });
  try {
    const call = g.client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } }, { timeout: 30_000 });
    const row = await pending();
    t.file('p.yaml', 'version: 1\ndefault: allow\ntools:\n  write_thing: { action: deny, reason: "incident: writes blocked" }\n');
    await waitFor(() => reloads() === 1 || undefined, 8000);
    const ok = await cli(['approvals', 'approve', row.id, '--db', t.db]);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await call;
    assert.equal(r.isError, true);
    assert.equal(text(r), `[POLICY DENIED] the policy was reloaded while approval ${row.id} was pending: call again to be decided under the policy now in force`);
    const all = JSON.parse((await cli(['approvals', 'list', '--db', t.db, '--json', '--all'])).stdout) as { id: string; status: string }[];
    assert.equal(all.find((x) => x.id === row.id)?.status, 'consumed', 'the approval is spent');
    // the retry under the policy now in force
    assert.equal(text(await g.client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } })), '[POLICY DENIED] incident: writes blocked');
    // approval required again: the spent approval does not carry over, a new one is filed
    t.file('p.yaml', held);
    await waitFor(() => reloads() === 2 || undefined, 8000);
    const again = g.client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } }, { timeout: 30_000 });
    const row2 = await pending();
    assert.notEqual(row2.id, row.id);
    await cli(['approvals', 'approve', row2.id, '--db', t.db]);
    assert.equal(text(await again), 'write_thing ok {"owner":"acme"}');
    const stats = JSON.parse(text(await g.client.callTool({ name: 'stats', arguments: {} })));
    assert.equal(stats.write_thing, 1, 'only the call approved under the policy in force ran');
  } finally {
    await g.client.close();
    t.cleanup();
  }
});
