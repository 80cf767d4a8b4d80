import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import { call as event, ingestCalls, proc, TS0 } from '../analysis/helpers.js';
import { call, callOk, stdioClient, textOf } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

storeTest('MCP update_suppression_rule reports kept, released and handed-over counts of a narrowed rule', async (at) => {
  const store = await at.open();
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= store.close());
  const T = 'mcpnarrow';
  try {
    const evs = [];
    for (let i = 0; i < 12; i++) evs.push(event(T, 'api', 100 + i, TS0 + i * 1000, proc('curl'), { domain: `h${i % 2}.example.com`, port: 443 }, i % 3 ? 'acme-corp' : 'globex'));
    await ingestCalls(at, store, T, evs);
    const svc = new RulesService(store);
    const wide = await svc.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'curl' } }, 't');
    const h1 = await svc.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { endpoint: 'h1.example.com:443' } }, 't');
    await close();
    const { client } = await stdioClient(at.db, { tenant: T });
    try {
      const r = await callOk(client, 'update_suppression_rule', { ruleId: wide.rule.rule_id, conditions: { process: 'curl', owner: 'acme-corp' }, confirm: true });
      // globex: i = 0, 3, 6, 9 -> h0, h1, h0, h1: two go to the h1 rule, two back to new
      assert.equal(r.kept, 8);
      assert.deepEqual(r.handed_to_other_rules, [{ rule_id: h1.rule.rule_id, count: 2 }]);
      assert.equal(r.restored, 2);
      assert.equal(r.suppressed, 0);
      assert.match(r.note, /8 kept, 2 released to new, 2 handed to other rules/);
      // the same match spelt otherwise is no twin of the rule itself; another rule's match is refused, named
      const respelt = await callOk(client, 'update_suppression_rule', { ruleId: h1.rule.rule_id, conditions: { endpoint: 'h1.example.com:443', owner: '*' }, confirm: true });
      assert.deepEqual(respelt.rule.conditions, { endpoint: 'h1.example.com:443', owner: '*' });
      const twin = await call(client, 'update_suppression_rule', { ruleId: h1.rule.rule_id, conditions: { owner: 'acme-corp', process: 'curl' }, confirm: true });
      assert.equal(twin.isError, true);
      assert.match(textOf(twin), new RegExp(`Refused, nothing was changed: the active rule ${wide.rule.rule_id} \\(.*\\) has the same detection type and conditions`));
    } finally {
      await client.close();
    }
  } finally {
    await close();
  }
});

storeTest('MCP update_suppression_rule renames a rule made before its risky evidence arrived, and still refuses new conditions that would cover it', async (at) => {
  const store = await at.open();
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= store.close());
  const T = 'mcprename';
  try {
    const svc = new RulesService(store);
    await ingestCalls(at, store, T, [event(T, 'api', 100, TS0, proc('curl'), { domain: 'h0.example.com', port: 443 }, 'acme-corp')]);
    const rule = await svc.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'curl' } }, 't');
    // the evidence arrives after the rule: the guard keeps it new
    await ingestCalls(at, store, T, [event(T, 'api', 101, TS0 + 1000, proc('curl'), { domain: 'webhook.site', port: 443 }, 'acme-corp')]);
    await close();
    const { client } = await stdioClient(at.db, { tenant: T });
    try {
      const r = await callOk(client, 'update_suppression_rule', { ruleId: rule.rule.rule_id, name: 'curl noise', confirm: true });
      assert.equal(r.rule.name, 'curl noise');
      assert.equal(r.kept, 1);
      const refused = await call(client, 'update_suppression_rule', { ruleId: rule.rule.rule_id, conditions: { process: 'curl', owner: 'acme-corp' }, confirm: true });
      assert.equal(refused.isError, true);
      assert.match(textOf(refused), /Refused, nothing was changed: .*risky destinations \(webhook\.site:443\)/);
    } finally {
      await client.close();
    }
  } finally {
    await close();
  }
});
