import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import { RuleError } from '../../src/rules/matcher.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { call, GENUINE_SHA, ingestCalls, tailscaled, TS0 } from '../analysis/helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { runCli } from '../helpers.js';

const { storeTest } = eachStore();

/**
 * A rule with the same detection type and conditions as an active one is refused: it would suppress
 * nothing, and a replayed confirmation of a create (an MCP client sending its answer again) must not
 * write a second rule.
 */
storeTest('a second rule with the same type and conditions is refused, whatever its name; nothing is written', async (at) => {
  const T = 'dup';
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, [call(T, 'web', 1, TS0, tailscaled(true), { ip: '100.64.0.1', port: 41641 })]);
    const rules = new RulesService(store);
    const conditions = { process: 'tailscaled', process_sha256: GENUINE_SHA };
    const first = await rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions, name: 'mesh' }, 't');
    assert.equal(first.suppressed, 1);
    // the same conditions spelt another way (key order, case of the hash) and another name
    const again = rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process_sha256: GENUINE_SHA.toUpperCase(), process: 'tailscaled' }, name: 'mesh again' }, 't');
    await assert.rejects(again, (e: unknown) => e instanceof RuleError && e.code === 'duplicate' && e.message.includes(first.rule.rule_id));
    assert.equal((await rules.list(T)).length, 1);
    assert.equal((await rules.audit(T)).length, 1, 'one create in the audit log');
    // a preview says create would refuse it, and names the rule
    const p = await rules.preview(T, { detection_id: 'New-Outbound-Network-Call', conditions });
    assert.equal(p.refused_reason, `the active rule ${first.rule.rule_id} ("mesh") has the same detection type and conditions`);
    // another detection type is another rule
    const other = await rules.create(T, { detection_id: 'Domain-Blocked', conditions }, 't');
    assert.equal((await rules.list(T)).length, 2);
    // an update cannot make one rule the twin of another; one that keeps its own conditions is no twin of itself
    await assert.rejects(
      rules.update(T, other.rule.rule_id, { detection_id: 'New-Outbound-Network-Call' }, 't'),
      (e: unknown) => e instanceof RuleError && e.code === 'duplicate' && e.message.includes(first.rule.rule_id) && e.message.endsWith('nothing was changed'),
    );
    const same = await rules.update(T, first.rule.rule_id, { conditions: { process: 'tailscaled', process_sha256: GENUINE_SHA.toUpperCase() }, name: 'mesh, renamed' }, 't');
    assert.equal(same.rule.name, 'mesh, renamed');
    // a condition that names nothing is still a condition: "??" matches two characters, a file condition nothing
    for (const [first2, second] of [[{ process: 'wget', file: '??' }, { process: 'wget' }], [{ process: 'curl', ip_address: '*.*.*.*' }, { process: 'curl' }], [{ process: 'npm', owner: '???' }, { process: 'npm', owner: '*' }]] as const) {
      await rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { ...first2 } }, 't');
      await rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { ...second } }, 't');
    }
    // an analysis of what the rule already suppressed suggests no second copy of it
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 10, minCount: 1, status: 'suppressed' }, { rules });
    const g = res.processes.find((x) => x.process === 'tailscaled')!;
    assert.equal(g.suggested_rule!.blocked_reason, `the active rule ${first.rule.rule_id} ("mesh, renamed") has the same detection type and conditions`);
  } finally {
    await store.close();
  }
  const cli = runCli(['rules', 'create', '--db', at.db, '--tenant', T, '--condition', 'process=tailscaled', '--condition', `process_sha256=${GENUINE_SHA}`, '--yes']);
  assert.equal(cli.status, EXIT.REFUSED, cli.stderr);
  assert.match(cli.stderr, /^egress-triage: rule refused: the active rule \S+ \("mesh, renamed"\) has the same detection type and conditions; nothing was created$/m);
});
