import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { argReadingsFor, canonicalToolArgs, policyArgs, TOOL_ALIASES } from '../../src/mcp/tool-aliases.js';
import { parsePolicy } from '../../src/policy/load.js';

/** The built-in mode's decision on a tool call under `yaml`: the reason that decided it, if any. */
function builtInReason(yaml: string): (tool: string, args: Record<string, unknown>) => string | undefined {
  const engine = parsePolicy(yaml).engine;
  return (tool, args) => engine.decide(tool, policyArgs(tool, args), argReadingsFor(tool)).reason;
}

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
  const decide = (process: string) => engine.decide('list_detections', canonicalToolArgs('list_detections', { process }), argReadingsFor('list_detections')).action;
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

test('canonicalToolArgs: the list tools read endpoint as one host and port, and repo "owner/name" as both, an owner given or not', () => {
  for (const endpoint of ['webhook.site:443', 'WEBHOOK.SITE.:0443', ' webhook.site.:443 ']) {
    assert.deepEqual(canonicalToolArgs('list_detections', { endpoint }), { endpoint: 'webhook.site:443' }, endpoint);
  }
  assert.deepEqual(canonicalToolArgs('list_anomalous_network_calls', { endpoint: 'Webhook.Site.' }), { endpoint: 'webhook.site' });
  assert.deepEqual(canonicalToolArgs('list_blocked_domain_calls', { endpoint: '[2001:DB8:0::1]:443' }), { endpoint: '[2001:db8::1]:443' });
  // the inventory tools search: trimmed, nothing more; a malformed filter is the tool's to refuse
  assert.deepEqual(canonicalToolArgs('find_endpoint_calls_in_tenant', { endpoint: ' WEBHOOK.site.' }), { endpoint: 'WEBHOOK.site.' });
  assert.deepEqual(canonicalToolArgs('list_detections', { endpoint: 'https://x/y' }), { endpoint: 'https://x/y' });
  assert.deepEqual(canonicalToolArgs('list_detections', { owner: 'globex', repo: 'globex/scraper' }), { owner: 'globex', repo: 'scraper' });
  assert.deepEqual(canonicalToolArgs('list_detections', { owner: 'GLOBEX', repo: 'globex/scraper' }), { owner: 'GLOBEX', repo: 'scraper' });
  assert.deepEqual(canonicalToolArgs('list_recent_workflow_runs', { owner: 'initech', repo: 'initech/api' }), { owner: 'initech', repo: 'api' });
  assert.deepEqual(canonicalToolArgs('list_detections', { owner: 'acme', repo: 'initech/api' }), { owner: 'acme', repo: 'initech/api' });
  // tenantWide: true reads owner as the tenant, so the call has no owner scope (a repo's owner still scopes it)
  assert.deepEqual(canonicalToolArgs('list_detections', { owner: 'acme', tenantWide: true }), { customer: 'acme', tenantWide: true });
  assert.deepEqual(canonicalToolArgs('list_detections', { orgScope: 'acme', tenantWide: true, repo: 'initech/api' }), { customer: 'acme', tenantWide: true, owner: 'initech', repo: 'api' });
  assert.deepEqual(canonicalToolArgs('list_detections', { owner: 'acme', tenantWide: false }), { owner: 'acme', tenantWide: false });
});

test('argReadingsFor: a condition on repo written owner/name cannot be checked in the built-in mode, so it denies; endpoint is read per tool', () => {
  const engine = parsePolicy(
    `version: 1
default: allow
tools:
  "*":
    when:
      - { path: args.repo, op: in, value: ["api", "initech/api"], action: allow }
      - { path: args.endpoint, op: eq, value: "WEBHOOK.site.:0443", action: deny, reason: "webhook" }
`,
  ).engine;
  const decide = (tool: string, args: Record<string, unknown>) => engine.decide(tool, canonicalToolArgs(tool, args), argReadingsFor(tool));
  const d = decide('list_detections', { owner: 'initech', repo: 'api' });
  assert.equal(d.action, 'deny');
  assert.match(d.reason ?? '', /^tools\["\*"\]\.when\[0\] cannot be checked: a repository written with "\/" names an owner/);
  assert.equal(decide('list_detections', {}).action, 'allow', 'without a repo the condition does not apply');
  // a pattern with "/" cannot match a repo read as a name either
  const pattern = parsePolicy('version: 1\ntools:\n  list_detections:\n    when:\n      - { path: args.repo, op: regex, value: "^initech/", action: deny, reason: no }\n').engine;
  const p = pattern.decide('list_detections', canonicalToolArgs('list_detections', { owner: 'initech', repo: 'initech/api' }), argReadingsFor('list_detections'));
  assert.match(p.reason ?? '', /cannot be checked/);
  assert.equal(decide('list_detections', { endpoint: 'webhook.site:443' }).reason, 'webhook');
  assert.equal(decide('list_detections', { endpoint: 'webhook.site' }).action, 'allow', 'a bare host is another filter (any port): see docs/policy.md');
  // the inventory tools' search is compared as text, ignoring case and blanks only
  assert.equal(decide('find_endpoint_calls_in_tenant', { endpoint: 'webhook.site:443' }).action, 'allow');
  assert.equal(decide('find_endpoint_calls_in_tenant', { endpoint: 'WEBHOOK.site.:0443' }).reason, 'webhook');
});

test('policyArgs: a condition written on an alias name sees the call, read as the canonical name is', () => {
  const engine = parsePolicy(
    `version: 1
default: allow
tools:
  create_suppression_rule:
    when:
      - { path: args.detection_id, op: eq, value: "domain-blocked", action: deny, reason: "alias" }
  list_detections:
    when:
      - { path: args.orgScope, op: eq, value: "initech", action: deny, reason: "alias" }
      - { path: args.detectionId, op: eq, value: "Domain-Blocked", action: deny, reason: "alias" }
  update_suppression_rule:
    when:
      - { path: args.rule_id, op: eq, value: "r_1", action: deny, reason: "alias" }
`,
  ).engine;
  const decide = (tool: string, args: Record<string, unknown>) => engine.decide(tool, policyArgs(tool, args), argReadingsFor(tool)).reason;
  assert.equal(decide('create_suppression_rule', { detection_id: 'Domain-Blocked' }), 'alias');
  assert.equal(decide('create_suppression_rule', { detectionId: 'DOMAIN-BLOCKED' }), 'alias');
  assert.equal(decide('list_detections', { owner: ' INITECH' }), 'alias');
  assert.equal(decide('list_detections', { detection_id: 'domain-blocked' }), 'alias');
  assert.equal(decide('update_suppression_rule', { ruleId: 'r_1' }), 'alias');
  assert.equal(engine.decide('update_suppression_rule', policyArgs('update_suppression_rule', { ruleId: 'R_1' }), argReadingsFor('update_suppression_rule')).action, 'allow', 'rule ids stay exact');
  assert.deepEqual(policyArgs('list_detections', { orgScope: 'initech' }), { owner: 'initech', orgScope: 'initech' });
  assert.deepEqual(policyArgs('ping', { orgScope: 'x' }), { orgScope: 'x' });
});

test('canonicalToolArgs: a rule\'s conditions as the matcher reads them: trimmed, "*"s alone as "*", a process without ".exe", an IP canonical', () => {
  const read = canonicalToolArgs('create_suppression_rule', {
    conditions: { owner: ' GLOBEX\t', repo: '**', process: 'OpenVPN.exe', ip_address: '2001:DB8:0:0::1', endpoint: 'Webhook.Site:443' },
  });
  assert.deepEqual(read.conditions, { owner: 'GLOBEX', repo: '*', process: 'OpenVPN', ip_address: '2001:db8::1', endpoint: 'Webhook.Site:443' });
  assert.deepEqual(canonicalToolArgs('update_suppression_rule', { ruleId: 'r_1', name: 'n' }), { ruleId: 'r_1', name: 'n' });
  // a key left out is compared as "*", but `exists` still says it was not written; conditions left out
  // of an update (which keeps the rule's own) are not "*"
  const decide = builtInReason(
    `version: 1
default: allow
tools:
  "*_suppression_rule":
    when:
      - { path: args.conditions.process_sha256, op: exists, value: false, action: deny, reason: "pin a hash" }
      - { path: args.conditions.owner, op: eq, value: "*", action: deny, reason: "tenant-wide" }
`,
  );
  assert.equal(decide('create_suppression_rule', { conditions: { process: 'x' } }), 'pin a hash');
  assert.equal(decide('create_suppression_rule', { conditions: { process: 'x', process_sha256: 'a'.repeat(64) } }), 'tenant-wide');
  assert.equal(decide('create_suppression_rule', { conditions: { process: 'x', process_sha256: 'a'.repeat(64), owner: 'acme' } }), undefined);
  assert.equal(decide('update_suppression_rule', { ruleId: 'r_1', name: 'n' }), 'pin a hash', 'exists: false holds when conditions are left out');
  assert.equal(decide('update_suppression_rule', { ruleId: 'r_1', name: 'n', conditions: { process_sha256: 'a'.repeat(64), owner: 'acme' } }), undefined);
  // what the tool refuses (not an object) is left as sent; other tools' conditions are no rule
  assert.deepEqual(canonicalToolArgs('create_suppression_rule', { conditions: 'owner=*' }), { conditions: 'owner=*', detectionId: 'New-Outbound-Network-Call' });
  const other = { conditions: { owner: ' x ' } };
  assert.equal(canonicalToolArgs('list_detections', other), other);
});

test('property: in the built-in mode a deny of a rule\'s owner "*" or "globex" or process "openvpn" holds for every spelling the rule tools write as such a rule, and only for those', () => {
  const decide = builtInReason(
    `version: 1
default: allow
tools:
  "*_suppression_rule":
    when:
      - { path: args.conditions.owner, op: eq, value: "*", action: deny, reason: "tenant-wide" }
      - { path: args.conditions.owner, op: eq, value: "globex", action: deny, reason: "globex" }
      - { path: args.conditions.process, op: in, value: ["openvpn.exe"], action: deny, reason: "openvpn" }
`,
  );
  const recase = (s: string, flips: boolean[]) => [...s].map((c, i) => (flips[i % flips.length] ? c.toUpperCase() : c)).join('');
  const pad = fc.constantFrom('', ' ', '\t', '  ');
  const arb = fc.record({
    tool: fc.constantFrom('create_suppression_rule', 'update_suppression_rule', 'preview_suppression_rule'),
    owner: fc.option(fc.record({ v: fc.constantFrom('*', '**', '?*', '*?', '*.*', '?', 'globex', 'acme', 'globex-2', '?lobex'), flips: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), pad }), { nil: undefined }),
    process: fc.record({ v: fc.constantFrom('openvpn', 'openvpnd', 'curl'), flips: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), exe: fc.constantFrom('', '.exe', '.EXE'), pad }),
  });
  fc.assert(
    fc.property(arb, ({ tool, owner, process }) => {
      const conditions: Record<string, string> = { process: `${process.pad}${recase(process.v, process.flips)}${process.exe}${process.pad}` };
      if (owner) conditions.owner = `${owner.pad}${recase(owner.v, owner.flips)}${owner.pad}`;
      const args = { ruleId: 'r_1', conditions, confirm: true };
      const got = decide(tool, args);
      // a pattern without a letter or digit names no owner: read as "*" (namesNothing)
      const want = !owner || !/[a-z]/.test(owner.v) ? 'tenant-wide' : owner.v === 'globex' ? 'globex' : process.v === 'openvpn' ? 'openvpn' : undefined;
      assert.equal(got, want, JSON.stringify({ tool, conditions }));
    }),
    { numRuns: 500 },
  );
});
