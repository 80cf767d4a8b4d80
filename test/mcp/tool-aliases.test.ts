import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ARG_READINGS, canonicalToolArgs, TOOL_ALIASES } from '../../src/mcp/tool-aliases.js';
import { parsePolicy } from '../../src/policy/load.js';

test('canonicalToolArgs: aliases folded into their canonical names, "owner/name" split, the rest as sent', () => {
  assert.deepEqual(canonicalToolArgs('list_detections', { orgScope: 'initech', detectionId: 'Domain-Blocked', limit: 5 }), { owner: 'initech', detection_id: 'Domain-Blocked', limit: 5 });
  assert.deepEqual(canonicalToolArgs('delete_suppression_rule', { rule_id: 'r_1', confirm: true }), { ruleId: 'r_1', confirm: true });
  assert.deepEqual(canonicalToolArgs('create_suppression_rule', { detection_id: 'X', conditions: {} }), { detectionId: 'X', conditions: {} });
  assert.deepEqual(canonicalToolArgs('list_anomalous_network_calls', { repo: 'initech/api' }), { owner: 'initech', repo: 'api' });
  // both names given: left for the tool, which refuses a disagreement
  assert.deepEqual(canonicalToolArgs('list_anomalous_network_calls', { owner: 'acme', orgScope: 'initech' }), { owner: 'acme', orgScope: 'initech' });
  assert.deepEqual(canonicalToolArgs('list_anomalous_network_calls', { owner: 'acme', repo: 'initech/api' }), { owner: 'acme', repo: 'initech/api' });
  // a tool without aliases, an unknown tool, a rule tool whose repo is no filter: unchanged, and the same object
  for (const [tool, args] of [['ping', { orgScope: 'x' }], ['not_a_tool', { orgScope: 'x' }], ['update_suppression_rule', { repo: 'a/b' }]] as const) {
    const a = { ...args };
    assert.equal(canonicalToolArgs(tool, a), a);
  }
  // blanks around a name the tools trim are trimmed, before "owner/name" is split; a blank value is left to the tool
  assert.deepEqual(canonicalToolArgs('list_detections', { repo: ' initech/api ', job: 'deploy\t' }), { owner: 'initech', repo: 'api', job: 'deploy' });
  assert.deepEqual(canonicalToolArgs('check_ioc_in_baseline', { indicator: ' webhook.site', owner: '  ' }), { indicator: 'webhook.site', owner: '  ' });
  // inherited names are no aliases
  assert.deepEqual(canonicalToolArgs('toString', { orgScope: 'x' }), { orgScope: 'x' });
  assert.ok(Object.keys(TOOL_ALIASES).length >= 9);
});

test('canonicalToolArgs: process and detection types as the tools read them; what their parsers refuse is left as sent', () => {
  for (const process of ['tailscaled', 'TailScaled', ' tailscaled\t', '/usr/sbin/tailscaled', 'C:\\Program Files\\Tailscale\\tailscaled.EXE', 'ｔａｉｌｓｃａｌｅｄ']) {
    assert.deepEqual(canonicalToolArgs('list_detections', { process }), { process: 'tailscaled' }, process);
  }
  assert.deepEqual(canonicalToolArgs('list_detections', { detection_id: ' domain-BLOCKED' }), { detection_id: 'Domain-Blocked' });
  assert.deepEqual(canonicalToolArgs('list_detections', { detectionId: 'domain-blocked,DOMAIN-BLOCKED' }), { detection_id: 'Domain-Blocked' });
  assert.deepEqual(canonicalToolArgs('analyze_anomalous_calls_by_process', { detection_id: 'domain-blocked,new-outbound-network-call' }), {
    detection_id: ['Domain-Blocked', 'New-Outbound-Network-Call'],
  });
  // the rule tools read an empty type as the default
  assert.deepEqual(canonicalToolArgs('preview_suppression_rule', { detection_id: '', conditions: {} }), { detectionId: 'New-Outbound-Network-Call', conditions: {} });
  assert.deepEqual(canonicalToolArgs('update_suppression_rule', { detectionId: 'domain-blocked' }), { detectionId: 'Domain-Blocked' });
  // what a tool reads for a type left out or empty: analyze and the rules it makes, not update or the lists
  for (const detection_id of [undefined, '']) {
    assert.deepEqual(canonicalToolArgs('analyze_anomalous_calls_by_process', { detection_id }), { detection_id: 'New-Outbound-Network-Call' });
    assert.deepEqual(canonicalToolArgs('create_suppression_rule', { detection_id }), { detectionId: 'New-Outbound-Network-Call' });
  }
  assert.deepEqual(canonicalToolArgs('preview_suppression_rule', {}), { detectionId: 'New-Outbound-Network-Call' });
  for (const tool of ['update_suppression_rule', 'list_detections']) assert.deepEqual(canonicalToolArgs(tool, {}), {}, tool);
  // refused by the parsers, so by the tools: unchanged
  for (const args of [{ detection_id: 'Nope' }, { detection_id: 'Domain-Blocked,Nope' }, { detectionId: 'Nope' }, { process: 42 }]) {
    assert.deepEqual(canonicalToolArgs('list_detections', { ...args }), Object.hasOwn(args, 'detectionId') ? { detection_id: 'Nope' } : args);
  }
});

test('property: in the built-in mode a deny of a process holds for every spelling the list tools read as that process, and only for those', () => {
  const engine = parsePolicy(
    'version: 1\ndefault: allow\ntools:\n  list_detections:\n    when:\n      - { path: args.process, op: eq, value: "/usr/sbin/TailScaled", action: deny, reason: "no" }\n',
  ).engine;
  const decide = (process: string) => engine.decide('list_detections', canonicalToolArgs('list_detections', { process }), ARG_READINGS).action;
  const recase = (s: string, flips: boolean[]) => [...s].map((c, i) => (flips[i % flips.length] ? c.toUpperCase() : c)).join('');
  const spelling = fc.record({
    name: fc.constantFrom('tailscaled', 'tailscale', 'tailscaled2', 'openvpn'),
    flips: fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
    dir: fc.constantFrom('', '/usr/sbin/', '/opt/x/', 'C:\\Program Files\\Tailscale\\', './'),
    exe: fc.constantFrom('', '.exe', '.EXE'),
    pad: fc.constantFrom('', ' ', '\t', '  '),
  });
  fc.assert(
    fc.property(spelling, ({ name, flips, dir, exe, pad }) => {
      const sent = `${pad}${dir}${recase(name, flips)}${exe}${pad}`;
      assert.equal(decide(sent), name === 'tailscaled' ? 'deny' : 'allow', JSON.stringify(sent));
    }),
    { numRuns: 300 },
  );
});
