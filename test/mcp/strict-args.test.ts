import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, tempDir } from '../helpers.js';
import { TENANT, call, callOk, cleanEnv, textOf, useDemoClient } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { waitFor } from '../helpers/wait.js';
import { ERAS, envelope, type Era } from '../adversarial/stdio-helpers.js';

type Any = Record<string, any>;

const { fresh } = eachStore();

/**
 * `egress-triage mcp` on `db` driven with raw JSON-RPC lines: an SDK client may drop a `__proto__` key
 * before sending, so these are written as text. Returns the text of each tools/call answer, in order.
 */
async function rawToolCalls(db: string, era: Era, extraArgs: string[], calls: string[]): Promise<{ isError?: boolean; text: string }[]> {
  const child = spawn(process.execPath, [CLI, 'mcp', '--db', db, '--tenant', TENANT, ...extraArgs], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const answers = new Map<number, Any>();
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, nl)) as Any;
      buf = buf.slice(nl + 1);
      if (typeof m.id === 'number') answers.set(m.id, m);
    }
  });
  try {
    const meta = era === 'modern' ? `,"_meta":${JSON.stringify(envelope())}` : '';
    if (era === 'legacy') {
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })}\n`);
      child.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
    }
    calls.forEach((params, i) => child.stdin.write(`{"jsonrpc":"2.0","id":${i + 1},"method":"tools/call","params":{${params}${meta}}}\n`));
    await waitFor(() => calls.every((_, i) => answers.has(i + 1)), 15_000, 25, 'every tools/call answer');
    return calls.map((_, i) => {
      const m = answers.get(i + 1)!;
      assert.equal(m.error, undefined, `a tool result, not a protocol error: ${JSON.stringify(m.error)}`);
      return { isError: m.result.isError as boolean | undefined, text: (m.result.content as { text: string }[]).map((c) => c.text).join('\n') };
    });
  } finally {
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
  }
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`MCP tool arguments are strict; StepSecurity names are honoured aliases (real SDK fx.client) [${backend}]`, () => {
    const fx = useDemoClient('egress-mcp-strict-', async () => (await fresh(backend, 'mcp')).db);

    async function refused(tool: string, args: Any, why: RegExp): Promise<void> {
      const r = await call(fx.client, tool, args);
      assert.equal(r.isError, true, `${tool} ${JSON.stringify(args)} must fail, got ${textOf(r).slice(0, 200)}`);
      assert.match(textOf(r), why, tool);
    }

    it('every tool declares additionalProperties: false and refuses an unknown argument by name', async () => {
      const { tools } = await fx.client.listTools();
      for (const t of tools) {
        assert.equal((t.inputSchema as Any).additionalProperties, false, `${t.name} input schema is strict`);
        await refused(t.name, { detectionld: 'x' }, /unknown argument "detectionld": (this tool accepts only \[[a-zA-Z_, ]+\]|this tool takes no arguments)(, |$)/);
      }
      await refused('list_detections', { status: 'new', pgae: 2, limt: 5 }, /unknown arguments "pgae", "limt": this tool accepts only .*\blimit\b.*\bpage\b/);
    });

    it('an argument or condition key named __proto__, constructor or prototype is refused like any unknown name (raw JSON-RPC; with and without a policy; both revisions)', async () => {
      const t = tempDir('egress-mcp-proto-');
      try {
        const policy = join(t.dir, 'allow.yaml');
        writeFileSync(policy, 'version: 1\ndefault: allow\n');
        for (const era of ERAS) {
          for (const extra of [[], ['--policy', policy]]) {
            const where = `${era} ${extra.join(' ') || 'no policy'}`;
            const [bogus, proto, protoNumber, ctor, prototype, beside, nested] = await rawToolCalls(fx.db, era, extra, [
              '"name":"list_suppression_rules","arguments":{"bogus":1}',
              '"name":"list_suppression_rules","arguments":{"__proto__":{"x":1}}',
              // a value the prototype setter ignores: nothing at all was left of it
              '"name":"list_suppression_rules","arguments":{"__proto__":5}',
              '"name":"list_suppression_rules","arguments":{"constructor":1}',
              '"name":"list_suppression_rules","arguments":{"prototype":{}}',
              '"name":"list_detections","arguments":{"status":"new","__proto__":{"limit":1}}',
              '"name":"preview_suppression_rule","arguments":{"conditions":{"process":"tailscaled","__proto__":"x"}}',
            ]);
            assert.equal(bogus!.isError, true, where);
            assert.match(bogus!.text, /unknown argument "bogus": this tool accepts only \[customer\]$/, where);
            for (const [key, r] of [['__proto__', proto], ['__proto__', protoNumber], ['constructor', ctor], ['prototype', prototype]] as const) {
              assert.equal(r!.isError, true, `${where}: ${key} accepted: ${r!.text.slice(0, 120)}`);
              assert.equal(r!.text, bogus!.text.replace('"bogus"', `"${key}"`), `${where}: ${key} gets the same refusal as any unknown argument`);
            }
            assert.equal(beside!.isError, true, where);
            assert.match(beside!.text, /unknown argument "__proto__": this tool accepts only \[.*\blimit\b.*\]$/, where);
            assert.equal(nested!.isError, true, `${where}: a condition named __proto__ was dropped: ${nested!.text.slice(0, 120)}`);
            assert.match(nested!.text, /^unknown condition key "__proto__": use only /, where);
          }
        }
      } finally {
        t.cleanup();
      }
    });

    it('detectionId is honoured: list_detections returns only that type', async () => {
      const r = await callOk(fx.client, 'list_detections', { detectionId: 'Domain-Blocked', status: 'all', limit: 200 });
      assert.ok(r.total > 0, 'the demo tenant has blocked calls');
      assert.equal(r.detection_id, 'Domain-Blocked');
      assert.ok(r.detections.every((d: Any) => d.detection_id === 'Domain-Blocked'));
      const canonical = await callOk(fx.client, 'list_detections', { detection_id: 'Domain-Blocked', status: 'all', limit: 200 });
      assert.deepEqual(r, canonical);
      await refused('list_detections', { detectionId: 'Domain-Blocked', detection_id: 'New-Outbound-Network-Call' }, /"detectionId" is an alias of "detection_id" and the two disagree/);
      const a = await callOk(fx.client, 'analyze_anomalous_calls_by_process', { detectionId: 'Domain-Blocked', status: 'all', minCount: 1 });
      assert.equal(a.detection_id, 'Domain-Blocked');
      assert.equal(a.total_anomalies_scanned, r.total);
    });

    it('page is honoured, 1-based with limit as page size, on every paged tool', async () => {
      const byCursor = async (tool: string, args: Any, listKey: string) => {
        const p1 = await callOk(fx.client, tool, args);
        assert.ok(p1.next_cursor, `${tool}: there is a second page`);
        const p2 = await callOk(fx.client, tool, { ...args, cursor: p1.next_cursor });
        const viaPage1 = await callOk(fx.client, tool, { ...args, page: 1 });
        const viaPage2 = await callOk(fx.client, tool, { ...args, page: 2 });
        assert.deepEqual(viaPage1[listKey], p1[listKey], `${tool} page 1`);
        assert.deepEqual(viaPage2[listKey], p2[listKey], `${tool} page 2`);
        assert.notDeepEqual(viaPage2[listKey], viaPage1[listKey]);
        await refused(tool, { ...args, page: 2, cursor: p1.next_cursor }, /`page` and `cursor` are two ways to choose a page: pass only one of them/);
        await refused(tool, { ...args, page: 100_000 }, /page 100000 is past the end/);
      };
      await byCursor('list_detections', { status: 'all', limit: 7 }, 'detections');
      await byCursor('list_anomalous_network_calls', { limit: 7 }, 'detections');
      await byCursor('analyze_anomalous_calls_by_process', { minCount: 1, limit: 2, samples: 1 }, 'processes');
      await byCursor('find_endpoint_calls_in_tenant', { endpoint: 'tailscale.com', limit: 3 }, 'observations');
      await byCursor('list_recent_workflow_runs', { owner: 'globex', limit: 3 }, 'runs');
      await refused('list_detections', { page: 0 }, /page/);
    });

    it('tenantWide follows StepSecurity: true reads owner as the tenant, false needs an owner', async () => {
      const tenantWide = await callOk(fx.client, 'list_detections', { tenantWide: true, owner: TENANT, status: 'all', limit: 1 });
      const whole = await callOk(fx.client, 'list_detections', { status: 'all', limit: 1 });
      assert.equal(tenantWide.total, whole.total);
      assert.equal(tenantWide.scope, `tenant:${TENANT}`);
      await refused('list_detections', { tenantWide: true, owner: 'globex' }, /unknown tenant "globex"/);
      await refused('list_detections', { tenantWide: false }, /`tenantWide: false` asks for owner scope: pass `owner`/);
      const org = await callOk(fx.client, 'list_detections', { tenantWide: false, owner: 'GLOBEX', status: 'all', limit: 1 });
      assert.ok(org.total > 0 && org.total < whole.total);
      assert.equal(org.total, (await callOk(fx.client, 'list_detections', { orgScope: 'globex', status: 'all', limit: 1 })).total, 'orgScope is owner');
      await refused('list_detections', { orgScope: 'globex', owner: 'initech' }, /"orgScope" is an alias of "owner" and the two disagree/);
    });

    it('ruleId and rule_id, detectionId and detection_id both work on the rule tools', async () => {
      const p = await callOk(fx.client, 'preview_suppression_rule', { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'netbird' } });
      const q = await callOk(fx.client, 'preview_suppression_rule', { detectionId: 'New-Outbound-Network-Call', conditions: { process: 'netbird' } });
      assert.equal(p.would_suppress, q.would_suppress);
      // a suggestion's severity_action passes through (the only action there is); another is refused
      await refused('create_suppression_rule', {
        detection_id: 'New-Outbound-Network-Call', name: 'netbird', conditions: { process: 'netbird', owner: 'initech' }, severity_action: { type: 'escalate' }, confirm: true,
      }, /severity_action/);
      const created = await callOk(fx.client, 'create_suppression_rule', {
        detection_id: 'New-Outbound-Network-Call', name: 'netbird', conditions: { process: 'netbird', owner: 'initech' }, severity_action: { type: 'ignore' }, confirm: true,
      });
      const id = created.rule.rule_id as string;
      assert.equal((await callOk(fx.client, 'get_suppression_rule', { rule_id: id })).rule.rule_id, id);
      assert.equal((await callOk(fx.client, 'get_suppression_rule', { ruleId: id })).rule.rule_id, id);
      await refused('get_suppression_rule', {}, /"ruleId" is required \(or its alias "rule_id"\)/);
      const { tools } = await fx.client.listTools();
      const get = tools.find((t) => t.name === 'get_suppression_rule')!.inputSchema as Any;
      assert.match(get.properties.ruleId.description, /Required: give it here or as `rule_id`/, 'the schema says the id is needed in one spelling');
      await refused('get_suppression_rule', { ruleId: id, rule_id: 'r_other' }, /"rule_id" is an alias of "ruleId" and the two disagree/);
      await refused('delete_suppression_rule', { rule_id: id, confirm: true, restor: true }, /unknown argument "restor"/);
      assert.equal((await callOk(fx.client, 'list_suppression_rules')).count, 1, 'the refused delete changed nothing');
      const del = await callOk(fx.client, 'delete_suppression_rule', { rule_id: id, restore: true, confirm: true });
      assert.equal(del.action, 'deleted');
      assert.equal(del.restored, created.suppressed);
    });
  });
}
