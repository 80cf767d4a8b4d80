/**
 * Under a policy (`mcp|serve --policy`) no text the server hands the agent names a tool the policy
 * hides, or sends it to one the policy denies outright: tool descriptions and schemas in tools/list,
 * the capability catalog, the refusals of the write tools (src/mcp/mentions.ts). The prompts and the
 * server instructions are tested in prompts-policy.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { createEgressTriageServer } from '../../src/mcp/server.js';
import type { ToolPolicyView } from '../../src/mcp/context.js';
import { fitText, mention } from '../../src/mcp/mentions.js';
import { TOOL_CATALOG } from '../../src/mcp/tools/meta.js';
import { openStore } from '../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../src/storage/location.js';
import { nativeEvent, ndjson, runCli, tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { TENANT, call, callOk, stdioClient, textOf } from './helpers.js';

const tmp = tempDir('egress-mcp-mentions-');
after(() => tmp.cleanup());

const PREVIEW = 'preview_suppression_rule';
const ANALYZE = 'analyze_anomalous_calls_by_process';

/** `name` as a word: "ping" is named by "call ping", not by "grouping". */
const names = (text: string, name: string) => new RegExp(`(^|[^A-Za-z0-9_])${name}($|[^A-Za-z0-9_])`).test(text);

function view(hidden: string[], denied: string[] = []): ToolPolicyView {
  return { isHidden: (t) => hidden.includes(t), deniesEveryCall: (t) => (denied.includes(t) ? 'denied' : undefined) };
}

test('fitText: a mention gives way to its alternative, or goes, when a tool it names may not be called', () => {
  const parts = ['Do x.', mention(['a', 'b'], 'Then call a and b.', 'Then do it by hand.'), mention('c', 'Or call c.'), 'Done.'];
  assert.equal(fitText(parts, undefined), 'Do x. Then call a and b. Or call c. Done.');
  assert.equal(fitText(parts, view(['b'])), 'Do x. Then do it by hand. Or call c. Done.');
  assert.equal(fitText(parts, view([], ['c'])), 'Do x. Then call a and b. Done.');
});

test('tools/list: with any one tool hidden or denied outright, no other tool names it, and without a policy the texts keep their names', async () => {
  const db = `${tmp.dir}/inmemory.db`;
  assert.equal(runCli(['ingest', tmp.file('e.ndjson', ndjson([nativeEvent({ tenant: TENANT, run: 1 })])), '--db', db]).status, 0);
  const store = await openStore(resolveStoreLocation(db, {}));
  let policy: ToolPolicyView = view([]);
  const connect = async (withPolicy: boolean) => {
    const server = createEgressTriageServer({ store, tenant: TENANT, dashboardUrl: 'https://dash.example', ...(withPolicy ? { toolPolicy: () => policy } : {}) });
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: 'mentions-test', version: '1' });
    await client.connect(clientSide);
    return client;
  };
  const bare = await connect(false);
  const fitted = await connect(true);
  try {
    // the texts do name tools, so the checks below can fail
    const plain = new Map((await bare.listTools()).tools.map((t) => [t.name, JSON.stringify(t)]));
    assert.ok(names(plain.get(ANALYZE)!, PREVIEW));
    assert.ok(names(plain.get(PREVIEW)!, 'create_suppression_rule'));
    assert.ok(names(plain.get('find_repos_using_endpoint')!, 'list_tenant_github_orgs'));
    assert.ok(names(plain.get('list_blocked_domain_calls')!, 'list_anomalous_network_calls'));
    // the in-memory server is not behind the gateway, so it still lists the tool itself: only the others are checked
    for (const { name } of TOOL_CATALOG) {
      for (const [hidden, denied] of [[[name], []], [[], [name]]] as const) {
        policy = view([...hidden], [...denied]);
        for (const t of (await fitted.listTools()).tools) {
          if (t.name !== name) assert.ok(!names(JSON.stringify(t), name), `${t.name} names ${name} (hidden: ${hidden.length > 0})`);
        }
      }
    }
    // with the policy allowing everything the texts are the shared ones
    policy = view([]);
    assert.deepEqual((await fitted.listTools()).tools, (await bare.listTools()).tools);
  } finally {
    await Promise.all([bare.close(), fitted.close()]);
    await store.close();
  }
});

test('mcp --policy over stdio: a hot reload that hides the preview takes its name out of descriptions, the catalog and the write refusals', async () => {
  const db = `${tmp.dir}/stdio.db`;
  assert.equal(runCli(['ingest', tmp.file('s.ndjson', ndjson([nativeEvent({ tenant: TENANT, run: 1 })])), '--db', db]).status, 0);
  const policyFile = tmp.file('policy.yaml', 'version: 1\ndefault: allow\n');
  const { client } = await stdioClient(db, { extraArgs: ['--policy', policyFile] });
  const analyzeText = async () => JSON.stringify((await client.listTools()).tools.find((t) => t.name === ANALYZE));
  const refusals = async () => [
    textOf(await call(client, 'update_suppression_rule', { rule_id: 'r_none', name: 'n' })),
    textOf(await call(client, 'update_suppression_rule', { rule_id: 'r_none', name: 'n', confirm: true })),
    textOf(await call(client, 'delete_suppression_rule', { rule_id: 'r_none' })),
    JSON.stringify((await callOk(client, 'describe_capabilities')).safety),
  ];
  try {
    assert.ok(names(await analyzeText(), PREVIEW));
    const before = await refusals();
    assert.ok(names(before[0]!, PREVIEW), before[0]);
    assert.ok(names(before[1]!, 'list_suppression_rules'), before[1]);
    assert.ok(names(before[2]!, 'get_suppression_rule'), before[2]);
    assert.ok(names(before[3]!, PREVIEW), before[3]);

    writeFileSync(policyFile, `version: 1\ndefault: allow\nhide: [${PREVIEW}, list_suppression_rules, get_suppression_rule]\n`);
    await waitFor(async () => !names(await analyzeText(), PREVIEW), 10_000, 25, 'the analysis description to drop the preview');
    const now = await refusals();
    for (const hidden of [PREVIEW, 'list_suppression_rules', 'get_suppression_rule']) {
      for (const text of now) assert.ok(!names(text, hidden), `${hidden} is named: ${text}`);
    }
    assert.match(now[0]!, /requires confirm: true\. Nothing was changed\. First show the user the rule's exact impact/);
    assert.match(now[1]!, /no suppression rule "r_none" .*check the rule_id\. Nothing was changed\./);
  } finally {
    await client.close();
  }
});
