import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { buildDemoDb, call, callOk, httpClient, killChild, startServe, stdioClient, textOf } from './helpers.js';
import type { Client } from '@modelcontextprotocol/client';
import { eachStore } from '../helpers/each-store.js';
import { waitFor } from '../helpers/wait.js';
import { runCli } from '../helpers.js';

const { storeTest } = eachStore();

const POLICY = `version: 1
default: allow
hide: [delete_suppression_rule]
tools:
  ping:
    rate_limit: { max: 1, window: 60 }
  create_suppression_rule:
    action: deny
    reason: "Rules are created by people in this test"
`;

storeTest('serve --policy: per-session rate limits, hidden tools, denials before the tools run', async (s) => {
  const db = await buildDemoDb(s.dir, { events: 4000, runs: 8, db: s.db });
  const policy = join(s.dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  const { child, url } = await startServe(db, ['--policy', policy]);
  try {
    const a = await httpClient(url);
    const b = await httpClient(url);
    const names = (await a.client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('analyze_anomalous_calls_by_process'));
    assert.ok(!names.includes('delete_suppression_rule'));
    await callOk(a.client, 'ping');
    const limited = await call(a.client, 'ping');
    assert.equal(limited.isError, true);
    assert.match(textOf(limited), /^\[POLICY DENIED\] rate limit exceeded for "ping".*retry after/);
    await callOk(b.client, 'ping'); // session B has its own quota
    const hidden = await call(a.client, 'delete_suppression_rule', { ruleId: 'x', confirm: true });
    assert.match(textOf(hidden), /^\[POLICY DENIED\] .*hidden by policy/);
    const before = await callOk(a.client, 'list_suppression_rules');
    const denied = await call(a.client, 'create_suppression_rule', {
      detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled', process_sha256: 'a'.repeat(64) }, confirm: true,
    });
    assert.equal(denied.isError, true);
    assert.equal(textOf(denied), '[POLICY DENIED] Rules are created by people in this test');
    assert.deepEqual(await callOk(a.client, 'list_suppression_rules'), before);
    await a.client.close();
    await b.client.close();
  } finally {
    await killChild(child);
  }
});

storeTest('mcp --policy on stdio refuses to start with an invalid policy', async ({ db, dir }) => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'version: 1\ndefault: sometimes\n');
  await assert.rejects(stdioClient(db, { extraArgs: ['--policy', bad] }));
});

storeTest('mcp --policy judges arguments as the tools read them: an alias, "owner/name", another case or blanks cannot walk past a condition', async (s) => {
  const db = await buildDemoDb(s.dir, { events: 4000, runs: 8, db: s.db });
  const policy = join(s.dir, 'alias-policy.yaml');
  writeFileSync(
    policy,
    `version: 1
default: allow
tools:
  list_anomalous_network_calls:
    when:
      - { path: args.owner, op: eq, value: "initech", action: deny, reason: "initech is off-limits" }
  analyze_anomalous_calls_by_process:
    when:
      - { path: args.detection_id, op: eq, value: "Domain-Blocked", action: deny, reason: "blocked calls are for people" }
  delete_suppression_rule:
    when:
      - { path: args.ruleId, op: eq, value: "PROTECTED", action: deny, reason: "protected rule" }
  find_endpoint_calls_in_tenant:
    when:
      - { path: args.endpoint, op: eq, value: "webhook.site", action: deny, reason: "ask a person about webhook.site" }
  list_detections:
    when:
      - { path: args.process, op: eq, value: "/usr/sbin/TailScaled", action: deny, reason: "tailscaled is for people" }
      - { path: args.detection_id, op: in, value: ["domain-blocked"], action: deny, reason: "blocked calls are for people" }
      - { path: args.endpoint, op: regex, value: '^webhook\\.site(:\\d+)?$', action: deny, reason: "ask a person about webhook.site" }
      - { path: args.repo, op: eq, value: "scraper", action: deny, reason: "scraper is for people" }
  preview_suppression_rule:
    when:
      - { path: args.detectionId, op: eq, value: "New-Outbound-Network-Call", action: deny, reason: "no rules over new calls" }
`,
  );
  const { client } = await stdioClient(db, { extraArgs: ['--policy', policy] });
  try {
    // ...nor another case or blanks around it: the tools read owner and repo ignoring both
    for (const args of [{ owner: 'initech' }, { orgScope: 'initech' }, { repo: 'initech/api-gateway' }, { owner: 'INITECH' }, { owner: ' Initech ' }, { repo: 'InItEcH/api-gateway' }]) {
      const r = await call(client, 'list_anomalous_network_calls', { ...args, limit: 1 });
      assert.equal(textOf(r), '[POLICY DENIED] initech is off-limits', JSON.stringify(args));
    }
    for (const args of [{ detection_id: 'Domain-Blocked' }, { detectionId: 'Domain-Blocked' }]) {
      assert.equal(textOf(await call(client, 'analyze_anomalous_calls_by_process', args)), '[POLICY DENIED] blocked calls are for people', JSON.stringify(args));
    }
    for (const args of [{ ruleId: 'PROTECTED' }, { rule_id: 'PROTECTED' }]) {
      assert.equal(textOf(await call(client, 'delete_suppression_rule', { ...args, confirm: true })), '[POLICY DENIED] protected rule', JSON.stringify(args));
    }
    for (const endpoint of ['webhook.site', 'WEBHOOK.site', ' Webhook.Site']) {
      assert.equal(textOf(await call(client, 'find_endpoint_calls_in_tenant', { endpoint })), '[POLICY DENIED] ask a person about webhook.site', endpoint);
    }
    // a process name is read as the tools read it: basename, ".exe" and case aside
    for (const process of ['tailscaled', 'TAILSCALED', ' tailscaled ', '/usr/sbin/tailscaled', 'C:\\Program Files\\Tailscale\\tailscaled.exe']) {
      assert.equal(textOf(await call(client, 'list_detections', { process, limit: 1 })), '[POLICY DENIED] tailscaled is for people', process);
    }
    // a detection type in any case, as the tools read it
    for (const detection_id of ['Domain-Blocked', 'DOMAIN-BLOCKED', ' domain-blocked', 'Domain-Blocked,domain-blocked']) {
      assert.equal(textOf(await call(client, 'list_detections', { detection_id, limit: 1 })), '[POLICY DENIED] blocked calls are for people', detection_id);
    }
    assert.equal(textOf(await call(client, 'analyze_anomalous_calls_by_process', { detection_id: 'DOMAIN-BLOCKED' })), '[POLICY DENIED] blocked calls are for people');
    // a comma list of several types is read as a list, which a condition on one string cannot check: denied
    for (const tool of ['list_detections', 'analyze_anomalous_calls_by_process']) {
      const r = textOf(await call(client, tool, { detection_id: 'New-Outbound-Network-Call,Domain-Blocked' }));
      assert.match(r, /^\[POLICY DENIED\] argument args\.detection_id is an array, but tools\.\w+\.when\[\d\] tests a string/, tool);
    }
    // an endpoint filter in any spelling the list tools read as webhook.site, on any port
    for (const endpoint of ['webhook.site', 'WEBHOOK.SITE.', 'webhook.site.:0443', 'Webhook.Site:443']) {
      assert.equal(textOf(await call(client, 'list_detections', { endpoint, limit: 1 })), '[POLICY DENIED] ask a person about webhook.site', endpoint);
    }
    // a repo written owner/name is read as both, whether the owner is given too or not
    for (const args of [{ repo: 'scraper' }, { repo: 'globex/scraper' }, { owner: 'globex', repo: 'globex/scraper' }, { owner: 'GLOBEX', repo: ' Globex/Scraper' }]) {
      assert.equal(textOf(await call(client, 'list_detections', { ...args, limit: 1 })), '[POLICY DENIED] scraper is for people', JSON.stringify(args));
    }
    // the rule tools read an empty or missing detection type as New-Outbound-Network-Call
    const conditions = { process: 'tailscaled', process_sha256: 'a'.repeat(64) };
    for (const detectionId of ['New-Outbound-Network-Call', 'new-outbound-network-call', '', undefined]) {
      assert.equal(textOf(await call(client, 'preview_suppression_rule', { detectionId, conditions })), '[POLICY DENIED] no rules over new calls', JSON.stringify(detectionId));
    }
    assert.notEqual(textOf(await call(client, 'preview_suppression_rule', { detectionId: 'Domain-Blocked', conditions })), '[POLICY DENIED] no rules over new calls');
    assert.equal((await call(client, 'list_detections', { process: 'curl', detection_id: 'New-Outbound-Network-Call', limit: 1 })).isError, undefined);
    // ruleId is no name: it stays exact
    assert.notEqual(textOf(await call(client, 'delete_suppression_rule', { ruleId: 'protected', confirm: true })), '[POLICY DENIED] protected rule');
    // other owners pass, through either name
    assert.equal((await call(client, 'list_anomalous_network_calls', { orgScope: 'acme-corp', limit: 1 })).isError, undefined);
  } finally {
    await client.close();
  }
  // The store says the same as the answers: every hostile spelling is one denial, by the rule it met.
  const audit = runCli(['audit', '--db', db, '--jsonl']);
  assert.equal(audit.status, 0, audit.stderr);
  const rows = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { tool: string; decision: string; rule: string });
  const decisions = (tool: string) => rows.filter((r) => r.tool === tool).map((r) => `${r.decision} ${r.rule}`);
  const deny = (rule: string, n: number) => Array.from({ length: n }, () => `deny ${rule}`);
  assert.deepEqual(decisions('list_anomalous_network_calls'), [...deny('tools.list_anomalous_network_calls.when[0] (line 6)', 6), 'allow default']);
  assert.deepEqual(decisions('find_endpoint_calls_in_tenant'), deny('tools.find_endpoint_calls_in_tenant.when[0] (line 15)', 3));
  assert.deepEqual(decisions('list_detections'), [
    ...deny('tools.list_detections.when[0] (line 18)', 5),
    ...deny('tools.list_detections.when[1] (line 19)', 5),
    ...deny('tools.list_detections.when[2] (line 20)', 4),
    ...deny('tools.list_detections.when[3] (line 21)', 4),
    'allow default',
  ]);
});

const CATALOG_POLICY = `version: 1
default: allow
hide: [delete_suppression_rule, "list_blocked_*"]
tools:
  create_suppression_rule:
    action: deny
    reason: "Rules are created by people"
  "preview_*":
    action: deny
    reason: "Previews are off"
  update_suppression_rule:
    action: require_approval
  get_suppression_rule:
    when:
      - { path: args.ruleId, op: eq, value: "PROTECTED", action: deny, reason: "protected rule" }
  list_detections:
    when:
      - { path: args.status, op: eq, value: "new", action: allow }
    action: deny
    reason: "only open detections"
`;

type Caps = { tools: { name: string; denied_by_policy?: string }[]; safety: string[] };

/** describe_capabilities' catalog against tools/list: the same names, and the denials the policy makes whatever the arguments. */
async function assertCatalogMatchesPolicy(client: Client): Promise<Caps> {
  const listed = (await client.listTools()).tools.map((t) => t.name).sort();
  const caps = await callOk<Caps>(client, 'describe_capabilities');
  assert.deepEqual(caps.tools.map((t) => t.name).sort(), listed, 'the catalog lists exactly what tools/list lists');
  for (const gone of ['delete_suppression_rule', 'list_blocked_domain_calls']) assert.ok(!listed.includes(gone), `${gone} is hidden`);
  const denied = Object.fromEntries(caps.tools.filter((t) => t.denied_by_policy !== undefined).map((t) => [t.name, t.denied_by_policy]));
  // a conditional deny (get_suppression_rule), approval and an allow condition (list_detections) leave calls that pass
  assert.deepEqual(denied, { create_suppression_rule: 'Rules are created by people', preview_suppression_rule: 'Previews are off' });
  assert.ok(caps.safety.some((l) => /policy decides every tool call/.test(l)));
  // and the flag tells the truth: the call is refused with that reason
  assert.equal(textOf(await call(client, 'preview_suppression_rule', { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'x' } })), '[POLICY DENIED] Previews are off');
  return caps;
}

storeTest(
  'describe_capabilities under a policy lists what tools/list lists and flags tools denied outright (mcp and serve), following a hot reload',
  async (s) => {
    const db = await buildDemoDb(s.dir, { events: 4000, runs: 8, db: s.db });
    const policy = join(s.dir, 'catalog-policy.yaml');
    writeFileSync(policy, CATALOG_POLICY);
    const { client } = await stdioClient(db, { extraArgs: ['--policy', policy] });
    try {
      await assertCatalogMatchesPolicy(client);
      // read per call, so a hot reload that hides another tool reaches the catalog too
      writeFileSync(policy, `${CATALOG_POLICY.replace('hide: [delete_suppression_rule, ', 'hide: [ping, delete_suppression_rule, ')}`);
      await waitFor(async () => !(await callOk<Caps>(client, 'describe_capabilities')).tools.some((t) => t.name === 'ping'), 10_000, 25, 'ping to leave the catalog');
    } finally {
      await client.close();
    }
    writeFileSync(policy, CATALOG_POLICY);
    const { child, url } = await startServe(db, ['--policy', policy]);
    try {
      const a = await httpClient(url);
      await assertCatalogMatchesPolicy(a.client);
      await a.client.close();
    } finally {
      await killChild(child);
    }
  },
  // the catalog comes from the policy, not the store
  { only: ['sqlite'] },
);

storeTest(
  "mcp --policy: a deny on a rule's conditions holds for the blanks, case, '.exe' and left-out keys the rule tools read alike (create and update)",
  async (s) => {
    const db = await buildDemoDb(s.dir, { events: 2000, runs: 4, db: s.db });
    const policy = join(s.dir, 'conditions-policy.yaml');
    writeFileSync(
      policy,
      `version: 1
default: allow
tools:
  "*_suppression_rule":
    when:
      - { path: args.conditions.owner, op: eq, value: "*", action: deny, reason: "Tenant-wide rules need a human" }
      - { path: args.conditions.owner, op: eq, value: "globex", action: deny, reason: "globex rules are off limits" }
      - { path: args.conditions.process, op: eq, value: "openvpn", action: deny, reason: "no openvpn rules" }
`,
    );
    const { client } = await stdioClient(db, { extraArgs: ['--policy', policy] });
    try {
      const denied = async (tool: string, conditions: Record<string, string>) =>
        textOf(await call(client, tool, { name: 't', confirm: true, ...(tool === 'update_suppression_rule' ? { rule_id: 'r_1' } : {}), conditions }));
      for (const tool of ['create_suppression_rule', 'update_suppression_rule']) {
        assert.equal(await denied(tool, { owner: ' * ', process: 'zzznone' }), '[POLICY DENIED] Tenant-wide rules need a human');
        assert.equal(await denied(tool, { process: 'zzznone' }), '[POLICY DENIED] Tenant-wide rules need a human', 'no owner is every owner');
        // a pattern that names no owner is every owner too, however it is spelled
        for (const owner of ['?*', '*?', ' ** ', '*.*']) {
          assert.equal(await denied(tool, { owner, process: 'zzznone' }), '[POLICY DENIED] Tenant-wide rules need a human', owner);
        }
        assert.equal(await denied(tool, { owner: 'GLOBEX ', endpoint: '*' }), '[POLICY DENIED] globex rules are off limits');
        assert.equal(await denied(tool, { owner: 'acme', process: 'OpenVPN.exe' }), '[POLICY DENIED] no openvpn rules');
      }
      // and a rule the policy does not speak of passes to the tool
      assert.doesNotMatch(await denied('create_suppression_rule', { owner: 'acme', process: 'zzznone' }), /POLICY DENIED/);
    } finally {
      await client.close();
    }
    // what reached the store: that one rule, none of the denied ones
    const listed = runCli(['rules', 'list', '--db', db, '--tenant', 'demo', '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    const rules = (JSON.parse(listed.stdout) as { rules: { conditions: Record<string, string> }[] }).rules;
    assert.deepEqual(rules.map((r) => r.conditions), [{ owner: 'acme', process: 'zzznone' }]);
  },
  // the decision comes from the policy, not the store
  { only: ['sqlite'] },
);
