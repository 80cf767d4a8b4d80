import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Client } from '@modelcontextprotocol/client';
import { SCENARIO } from '../../src/generate/scenarios.js';
import { CLI, tempDir } from '../helpers.js';
import { TENANT, buildDemoDb, call, callOk, cleanEnv, stdioClient, textOf } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { waitFor } from '../helpers/wait.js';

const ALL_TOOLS = [
  'analyze_anomalous_calls_by_process',
  'list_anomalous_network_calls',
  'list_blocked_domain_calls',
  'list_detections',
  'list_suppression_rules',
  'get_suppression_rule',
  'preview_suppression_rule',
  'create_suppression_rule',
  'update_suppression_rule',
  'delete_suppression_rule',
  'check_ioc_in_baseline',
  'find_endpoint_calls_in_tenant',
  'find_repos_using_endpoint',
  'list_tenant_github_orgs',
  'list_recent_workflow_runs',
  'get_my_tenant',
  'describe_capabilities',
  'ping',
];
const WRITE_TOOLS = new Set(['create_suppression_rule', 'update_suppression_rule', 'delete_suppression_rule']);

type Any = Record<string, any>;

async function openCount(client: Client): Promise<number> {
  return (await callOk(client, 'list_detections', { status: 'new', limit: 1 })).total as number;
}

const { fresh } = eachStore();

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`MCP over stdio (built binary) [${backend}]`, () => {
    const tmp = tempDir('egress-mcp-stdio-');
    let db: string;
    let client: Client;
    let closeAll: (() => Promise<void>)[] = [];

    before(async () => {
      db = await buildDemoDb(tmp.dir, { db: (await fresh(backend, 'mcp')).db });
      const c = await stdioClient(db);
      client = c.client;
      closeAll.push(() => c.client.close());
    });

    after(async () => {
      for (const f of closeAll) await f().catch(() => undefined);
      closeAll = [];
      tmp.cleanup();
    });

    it('lists every tool with descriptions, described fields, output schema and annotations', async () => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [...ALL_TOOLS].sort());
      for (const t of tools) {
        assert.ok((t.description ?? '').length > 40, `${t.name} description`);
        assert.ok(t.outputSchema, `${t.name} outputSchema`);
        const props = (t.inputSchema.properties ?? {}) as Record<string, { description?: string }>;
        for (const [k, v] of Object.entries(props)) assert.ok(v.description, `${t.name}.${k} has a description`);
        const a = t.annotations!;
        assert.equal(a.openWorldHint, false, t.name);
        assert.equal(a.readOnlyHint, !WRITE_TOOLS.has(t.name), t.name);
        assert.equal(typeof a.destructiveHint, 'boolean', t.name);
        assert.equal(typeof a.idempotentHint, 'boolean', t.name);
      }
      assert.match(client.getInstructions() ?? '', /dashboard_url/);
      assert.match(client.getInstructions() ?? '', /preview_suppression_rule/);
      assert.match(client.getInstructions() ?? '', /evidence, not proof/);
    });

    it('returns structuredContent plus an identical JSON text copy', async () => {
      const r = await call(client, 'ping');
      assert.equal(r.isError, undefined);
      assert.deepEqual(JSON.parse(textOf(r)), r.structuredContent);
      assert.equal((r.structuredContent as Any).tenant, TENANT);
    });

    it('prompts: triage-anomalies and investigate-endpoint', async () => {
      const { prompts } = await client.listPrompts();
      assert.deepEqual(prompts.map((p) => p.name).sort(), ['investigate-endpoint', 'triage-anomalies']);
      const t = await client.getPrompt({ name: 'triage-anomalies', arguments: {} });
      const text = (t.messages[0]!.content as { text: string }).text;
      assert.match(text, /analyze_anomalous_calls_by_process/);
      assert.match(text, /preview_suppression_rule/);
      assert.match(text, /confirm: true/);
      const i = await client.getPrompt({ name: 'investigate-endpoint', arguments: { endpoint: 'webhook.site' } });
      assert.match((i.messages[0]!.content as { text: string }).text, /find_endpoint_calls_in_tenant with endpoint "webhook.site"/);
    });

    it('read tools: happy paths', async () => {
      const me = await callOk(client, 'get_my_tenant');
      assert.equal(me.tenant, TENANT);
      assert.equal(me.exists, true);
      assert.ok(me.stats.runs > 0);

      const caps = await callOk(client, 'describe_capabilities');
      assert.equal(caps.tools.length, ALL_TOOLS.length);
      assert.ok(caps.condition_keys.all.includes('process_sha256'));

      const an = await callOk(client, 'list_anomalous_network_calls', { limit: 3 });
      assert.equal(an.count, 3);
      assert.ok(an.total >= 3);
      assert.ok(an.next_cursor);
      for (const d of an.detections) {
        assert.equal(d.detection_id, 'New-Outbound-Network-Call');
        assert.match(d.dashboard_url, /^https:\/\/dash\.example\/github\/.+\/actions\/runs\/\d+\?jobId=\d+&tab=network-events$/);
      }
      const page2 = await callOk(client, 'list_anomalous_network_calls', { limit: 3, cursor: an.next_cursor });
      assert.notEqual(page2.detections[0].id, an.detections[0].id);

      const bl = await callOk(client, 'list_blocked_domain_calls', { status: 'all' });
      assert.ok(bl.total > 0);
      assert.ok(bl.detections.every((d: Any) => d.detection_id === 'Domain-Blocked' && d.dashboard_url));

      const ld = await callOk(client, 'list_detections', { process: 'node', endpoint: `${SCENARIO.npmPostinstall.domain}:443` });
      assert.ok(ld.total > 0);

      const ioc = await callOk(client, 'check_ioc_in_baseline', { indicator: SCENARIO.npmPostinstall.domain });
      assert.equal(ioc.kind, 'domain');
      assert.equal(ioc.found, true);
      assert.ok(ioc.calls.length > 0);
      const cidr = await callOk(client, 'check_ioc_in_baseline', { indicator: SCENARIO.tailscale.peerCidr, limit: 5 });
      assert.equal(cidr.kind, 'cidr');
      assert.ok(cidr.calls_total > 0);
      const none = await callOk(client, 'check_ioc_in_baseline', { indicator: 'never-seen.example.org' });
      assert.equal(none.found, false);

      const calls = await callOk(client, 'find_endpoint_calls_in_tenant', { endpoint: SCENARIO.npmPostinstall.domain, limit: 2 });
      assert.ok(calls.total_observations > 0);
      assert.ok(calls.observations.every((o: Any) => o.dashboard_url && o.process === 'node'));
      // each row names its whole process variant, so no two rows of a page look alike
      assert.ok(calls.observations.every((o: Any) => Array.isArray(o.process_parent_chain) && 'process_path' in o));
      const wide = await callOk(client, 'find_endpoint_calls_in_tenant', { endpoint: SCENARIO.npmPostinstall.domain, limit: 500 });
      const seen = wide.observations.map((o: Any) => JSON.stringify({ ...o, timestamp: undefined }));
      assert.equal(new Set(seen).size, seen.length, 'rows that differ only in timestamp');
      if (calls.next_cursor) {
        const more = await callOk(client, 'find_endpoint_calls_in_tenant', { endpoint: SCENARIO.npmPostinstall.domain, limit: 2, cursor: calls.next_cursor });
        assert.ok(more.count > 0);
      }

      const orgs = await callOk(client, 'list_tenant_github_orgs');
      assert.deepEqual(orgs.orgs.map((o: Any) => o.org).slice(0, 4), [...SCENARIO.orgs]);
      const owner = calls.observations[0].owner;
      const repos = await callOk(client, 'find_repos_using_endpoint', { owner, endpoint: SCENARIO.npmPostinstall.domain });
      assert.ok(repos.repos.length >= 1);
      assert.ok(repos.repos[0].baseline_url.startsWith('https://dash.example/github/'));

      const runs = await callOk(client, 'list_recent_workflow_runs', { owner: SCENARIO.orgs[0], limit: 5 });
      assert.equal(runs.count, 5);
      assert.ok(runs.total_runs > 5);
      const runs2 = await callOk(client, 'list_recent_workflow_runs', { owner: SCENARIO.orgs[0], limit: 5, cursor: runs.next_cursor });
      assert.ok(runs2.runs[0].started_at <= runs.runs[4].started_at);
      // one repo, by name or as owner/name (its description says both), in any case
      const repo = runs.runs[0].repo as string;
      const byName = await callOk(client, 'list_recent_workflow_runs', { owner: SCENARIO.orgs[0], repo, limit: 5 });
      assert.ok(byName.count > 0 && byName.runs.every((r: Any) => r.repo === repo));
      const byFull = await callOk(client, 'list_recent_workflow_runs', { owner: SCENARIO.orgs[0], repo: `${SCENARIO.orgs[0]}/${repo}`.toUpperCase(), limit: 5 });
      assert.deepEqual(byFull.runs, byName.runs);

      const rules = await callOk(client, 'list_suppression_rules');
      assert.equal(rules.count, 0);
    });

    it('every tool rejects bad input with an isError result that says what to change, and changes nothing', async () => {
      const before = await openCount(client);
      const bad: [string, Any, RegExp][] = [
        ['analyze_anomalous_calls_by_process', { cursor: 'not-a-cursor' }, /cursor/i],
        ['analyze_anomalous_calls_by_process', { minCount: 0 }, /minCount/],
        ['list_anomalous_network_calls', { cursor: 'garbage' }, /invalid cursor/],
        ['list_anomalous_network_calls', { cursor: '' }, /cursor is empty: pass the next_cursor of the previous page, or omit cursor/],
        ['analyze_anomalous_calls_by_process', { cursor: '' }, /cursor is empty/],
        ['list_recent_workflow_runs', { owner: 'acme-corp', cursor: '' }, /cursor is empty/],
        ['list_blocked_domain_calls', { limit: 5000 }, /limit/],
        ['list_detections', { detection_id: 'No-Such-Type' }, /detection_id: unknown detection type "No-Such-Type": use one of/],
        ['list_detections', { since: 'yesterday-ish' }, /RFC 3339/],
        ['list_suppression_rules', { customer: 'someone-else' }, /unknown tenant "someone-else"/],
        ['get_suppression_rule', { ruleId: 'r_missing' }, /list_suppression_rules/],
        ['preview_suppression_rule', { conditions: { proces: 'tailscaled' } }, /unknown condition key "proces": use only/],
        ['preview_suppression_rule', { conditions: { ip_address: '100.64.0.0/99' } }, /ip_address|CIDR|prefix/i],
        ['create_suppression_rule', { name: 'x', conditions: { process: 'tailscaled' } }, /requires confirm: true.*preview_suppression_rule/s],
        ['create_suppression_rule', { name: 'gist', conditions: { endpoint: 'gist.githubusercontent.com:443' }, confirm: true }, /[Rr]efused/],
        ['create_suppression_rule', { name: 'bad', conditions: { colour: 'red' }, confirm: true }, /unknown condition key/],
        ['update_suppression_rule', { ruleId: 'r_missing', name: 'y', confirm: true }, /no suppression rule "r_missing"/],
        ['update_suppression_rule', { ruleId: 'r_missing', name: 'y' }, /requires confirm: true/],
        ['delete_suppression_rule', { ruleId: 'r_missing' }, /requires confirm: true/],
        ['delete_suppression_rule', { ruleId: 'r_missing', confirm: true }, /no suppression rule/],
        ['check_ioc_in_baseline', { indicator: '10.0.0.0/33' }, /malformed CIDR "10.0.0.0\/33"/],
        ['find_endpoint_calls_in_tenant', { endpoint: 'webhook.site', cursor: 'x' }, /invalid cursor/],
        ['find_repos_using_endpoint', { endpoint: 'webhook.site' }, /owner/],
        ['list_tenant_github_orgs', { customer: 'nope' }, /unknown tenant/],
        ['list_recent_workflow_runs', { owner: 'acme-corp', cursor: 'zzz' }, /invalid cursor/],
        ['get_my_tenant', { customer: 'nope' }, /unknown tenant/],
        ['describe_capabilities', { verbose: true }, /verbose|Unrecognized/i],
        ['ping', { extra: 1 }, /extra|Unrecognized/i],
      ];
      for (const [tool, args, re] of bad) {
        const r = await call(client, tool, args);
        assert.equal(r.isError, true, `${tool} ${JSON.stringify(args)} should fail`);
        assert.match(textOf(r), re, `${tool}: ${textOf(r)}`);
      }
      assert.equal(await openCount(client), before, 'no detection changed');
      assert.equal((await callOk(client, 'list_suppression_rules')).count, 0, 'no rule created');
      // and the server is still alive
      assert.equal((await callOk(client, 'ping')).ok, true);
    });

    it('full triage flow on the demo tenant: analyse, preview, create, re-analyse', async () => {
      const a1 = await callOk(client, 'analyze_anomalous_calls_by_process', { limit: 50 });
      assert.equal(a1.tenant, TENANT);
      const ts = a1.processes.find((p: Any) => p.process === SCENARIO.tailscale.process);
      assert.ok(ts, 'tailscaled group');
      assert.equal(ts.is_vpn_process_candidate, true);
      assert.ok(ts.suggested_rule && ts.suggested_rule.blocked_reason === null, 'a safe suggested rule');
      assert.equal(ts.suggested_rule.conditions.process_sha256, SCENARIO.tailscale.sha256, 'narrowed to the genuine binary');
      for (const s of ts.sample_detections) assert.ok(s.dashboard_url);

      const pv = await callOk(client, 'preview_suppression_rule', {
        detectionId: ts.suggested_rule.detection_id,
        conditions: ts.suggested_rule.conditions,
      });
      assert.equal(pv.refused_reason, null);
      assert.equal(pv.risky_matches, 0);
      assert.equal(pv.would_suppress, ts.suggested_rule.impact.would_suppress);
      assert.ok(pv.would_suppress > 0);

      const openBefore = await openCount(client);
      const created = await callOk(client, 'create_suppression_rule', {
        detectionId: ts.suggested_rule.detection_id,
        name: 'Tailscale daemon (genuine binary)',
        description: 'approved in test',
        conditions: ts.suggested_rule.conditions,
        confirm: true,
      });
      assert.equal(created.action, 'created');
      assert.equal(created.confirmed_via, 'confirm-flag');
      assert.equal(created.suppressed, pv.would_suppress, 'reports exactly how many were suppressed');
      assert.equal(await openCount(client), openBefore - pv.would_suppress);

      const a2 = await callOk(client, 'analyze_anomalous_calls_by_process', { limit: 50 });
      const ts2 = a2.processes.find((p: Any) => p.process === SCENARIO.tailscale.process);
      // the genuine daemon is gone; what is left under that name is the impostor
      assert.ok(ts2, 'the impostor is still there');
      assert.equal(ts2.name_impersonation_suspected, true);
      assert.ok(ts2.binaries.every((b: Any) => b.sha256 !== SCENARIO.tailscale.sha256), 'no genuine tailscaled left');
      assert.ok(ts2.binaries.some((b: Any) => b.sha256 === SCENARIO.impostor.sha256));
      const left = await callOk(client, 'list_anomalous_network_calls', { process: 'tailscaled', limit: 200 });
      assert.ok(left.total > 0 && left.detections.every((d: Any) => d.tool.sha256 === SCENARIO.impostor.sha256));
      const hook = await callOk(client, 'list_anomalous_network_calls', { endpoint: `${SCENARIO.npmPostinstall.domain}:443` });
      assert.ok(hook.total > 0, 'the webhook.site call is still open');

      const rules = await callOk(client, 'list_suppression_rules');
      assert.equal(rules.count, 1);
      const got = await callOk(client, 'get_suppression_rule', { ruleId: created.rule.rule_id });
      assert.equal(got.rule.name, 'Tailscale daemon (genuine binary)');
    });

    it('update and delete report exact suppressed / restored counts', async () => {
      const rules = await callOk(client, 'list_suppression_rules');
      const rule = rules.rules[0];
      const renamed = await callOk(client, 'update_suppression_rule', { ruleId: rule.rule_id, name: 'Tailscale (renamed)', confirm: true });
      assert.equal(renamed.action, 'updated');
      assert.equal(renamed.suppressed, 0);
      assert.equal(renamed.rule.name, 'Tailscale (renamed)');
      const open = await openCount(client);
      const del = await callOk(client, 'delete_suppression_rule', { ruleId: rule.rule_id, restore: true, confirm: true });
      assert.equal(del.action, 'deleted');
      assert.ok(del.restored > 0);
      assert.equal(await openCount(client), open + del.restored);
      assert.equal((await callOk(client, 'list_suppression_rules')).count, 0);
    });

    it('elicitation: decline changes nothing, accept creates the rule', async () => {
      const c = await stdioClient(db, { elicitation: true });
      closeAll.push(() => c.client.close());
      let answer: 'accept' | 'decline' | 'cancel' = 'decline';
      const asked: string[] = [];
      c.client.setRequestHandler('elicitation/create', async (req) => {
        asked.push(req.params.message);
        return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: answer };
      });
      const a = await callOk(c.client, 'analyze_anomalous_calls_by_process', { limit: 50 });
      const vpn = a.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
      assert.ok(vpn, 'a genuine VPN daemon to suppress');
      const args = { name: `${vpn.process} daemon`, detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions, confirm: true };
      const before = await openCount(c.client);

      const declined = await call(c.client, 'create_suppression_rule', args);
      assert.equal(declined.isError, true);
      assert.match(textOf(declined), /declined.*Nothing was changed/s);
      assert.equal(asked.length, 1);
      assert.match(asked[0]!, /would be suppressed/);
      answer = 'cancel';
      const cancelled = await call(c.client, 'create_suppression_rule', args);
      assert.equal(cancelled.isError, true);
      assert.match(textOf(cancelled), /cancelled/);
      assert.equal(await openCount(c.client), before);
      assert.equal((await callOk(c.client, 'list_suppression_rules')).count, 0);

      // no confirm flag: not even asked
      const noFlag = await call(c.client, 'create_suppression_rule', { ...args, confirm: undefined });
      assert.equal(noFlag.isError, true);
      assert.equal(asked.length, 2);

      // The agent's name cannot write the question the person answers: a line separator (a line break
      // to text layout) is refused before anyone is asked, and any other name comes last, quoted.
      const forged = await call(c.client, 'create_suppression_rule', { ...args, name: 'x" in tenant demo: 1 open detection(s) would be suppressed.\u2028\u2028\u2028hidden below' });
      assert.equal(forged.isError, true);
      assert.match(textOf(forged), /name contains the unprintable character U\+2028/);
      assert.equal(asked.length, 2, 'not asked');
      await call(c.client, 'create_suppression_rule', { ...args, name: 'Pinned" in tenant other: nothing' });
      assert.equal(asked.length, 3);
      assert.match(asked[2]!, /^Create a suppression rule in tenant \S+: New-Outbound-Network-Call where .* would be suppressed[^\n]*\. Its name: "Pinned\\" in tenant other: nothing"\.$/);

      answer = 'accept';
      const ok = await callOk(c.client, 'create_suppression_rule', args);
      assert.equal(ok.confirmed_via, 'elicitation');
      assert.equal(ok.suppressed, vpn.suggested_rule.impact.would_suppress);
      assert.equal(await openCount(c.client), before - ok.suppressed);

      answer = 'decline';
      const delDeclined = await call(c.client, 'delete_suppression_rule', { ruleId: ok.rule.rule_id, restore: true, confirm: true });
      assert.equal(delDeclined.isError, true);
      assert.equal((await callOk(c.client, 'list_suppression_rules')).count, 1);
    });

    it('an unknown tenant is empty, never a crash', async () => {
      const c = await stdioClient(db, { tenant: 'no-such-tenant' });
      closeAll.push(() => c.client.close());
      const me = await callOk(c.client, 'get_my_tenant');
      assert.equal(me.exists, false);
      assert.match(me.note, /ingest/);
      assert.equal((await callOk(c.client, 'list_detections')).total, 0);
      assert.equal((await callOk(c.client, 'list_tenant_github_orgs')).org_count, 0);
      assert.equal((await callOk(c.client, 'check_ioc_in_baseline', { indicator: 'webhook.site' })).found, false);
      const an = await callOk(c.client, 'analyze_anomalous_calls_by_process');
      assert.equal(an.total_anomalies_scanned, 0);
      const del = await call(c.client, 'delete_suppression_rule', { ruleId: 'r_x', confirm: true });
      assert.equal(del.isError, true);
    });

    it('stdout carries nothing but JSON-RPC', async () => {
      const child = spawn(process.execPath, [CLI, 'mcp', '--db', db, '--tenant', TENANT], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const send = (m: Any) => child.stdin.write(JSON.stringify(m) + '\n');
      send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_detections', arguments: { cursor: 'bad' } } });
      send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'ping', arguments: {} } });
      await waitFor(() => out.includes('"id":3'), 10_000, 25, 'the answer to id 3');
      child.stdin.end();
      await new Promise((r) => child.once('exit', r));
      const lines = out.split('\n').filter((l) => l.trim());
      assert.ok(lines.length >= 3, out);
      for (const l of lines) assert.equal(JSON.parse(l).jsonrpc, '2.0');
      assert.match(err, /serving tenant "demo" over stdio/);
    });
  });
}
