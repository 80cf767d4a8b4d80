/**
 * Tool and prompt definitions (schemas, descriptions) are built once per process and shared by every
 * server (src/mcp/context.ts `definition`), because 2026-07-28 HTTP builds a server per request. The
 * handlers must still act for their own server: its tenant, its actor.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { createEgressTriageServer } from '../../src/mcp/server.js';
import { definition } from '../../src/mcp/context.js';
import { openStore, type OpenStore } from '../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../src/storage/location.js';
import { tempDir } from '../helpers.js';
import { TENANT, buildDemoDb, callOk } from './helpers.js';

type Any = Record<string, any>;

describe('shared tool definitions', () => {
  const tmp = tempDir('egress-mcp-definitions-');
  let store: OpenStore;
  const clients: Client[] = [];
  before(async () => {
    store = await openStore(resolveStoreLocation(await buildDemoDb(tmp.dir, { events: 3000, runs: 6 }), {}));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await store.close();
    tmp.cleanup();
  });

  async function connect(tenant: string, actor: string): Promise<Client> {
    const server = createEgressTriageServer({ store, tenant, dashboardUrl: 'https://dash.example', actor });
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: 'definitions-test', version: '1' });
    await client.connect(clientSide);
    clients.push(client);
    return client;
  }

  it('a definition is built once per name and then reused', () => {
    let built = 0;
    const build = () => ({ n: ++built });
    const first = definition('test:built-once', build);
    assert.equal(definition('test:built-once', build), first);
    assert.equal(built, 1);
  });

  it('servers for different tenants and actors list the same tools, and each handler acts for its own server', async () => {
    const demo = await connect(TENANT, 'mcp:alice');
    const other = await connect('other-tenant', 'mcp:bob');
    assert.deepEqual((await demo.listTools()).tools, (await other.listTools()).tools);
    assert.deepEqual((await demo.listPrompts()).prompts, (await other.listPrompts()).prompts);

    assert.equal((await callOk(demo, 'ping')).tenant, TENANT);
    assert.equal((await callOk(other, 'ping')).tenant, 'other-tenant');
    assert.equal((await callOk(other, 'get_my_tenant')).tenant, 'other-tenant');

    const an = await callOk<Any>(demo, 'analyze_anomalous_calls_by_process', { limit: 50 });
    const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
    const rule = { detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions, confirm: true };
    const created = await callOk<Any>(demo, 'create_suppression_rule', { ...rule, name: 'by alice' });
    assert.equal(created.rule.created_by, 'mcp:alice');
    // the other server's tools write as its own actor, in its own tenant
    const elsewhere = await callOk<Any>(other, 'create_suppression_rule', { ...rule, name: 'by bob' });
    assert.equal(elsewhere.rule.created_by, 'mcp:bob');
    assert.equal(elsewhere.tenant, 'other-tenant');
    assert.equal((await callOk(demo, 'list_suppression_rules')).count, 1);
  });
});
