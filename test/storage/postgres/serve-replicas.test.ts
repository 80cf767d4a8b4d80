import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CLI, tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { kill, text } from '../../gateway/helpers.js';
import { writeTenant } from '../../../src/generate/index.js';
import { GOLDEN_TENANT } from '../../analysis/golden-cases.js';

/**
 * The scale-out shape of docs/scale-out.md ("A three-replica deployment"), with real processes:
 * one PostgreSQL store, one Redis for policy state, three `serve` replicas of the built CLI. A
 * realistic tenant is ingested once; every replica then answers from that one store (the same
 * analysis as `analyze --json`), a rule created through one replica is seen by another, and a
 * global rate limit is one budget across the three.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

const DASH = 'https://dash.example.test';
const TOKENS = ['alice-token-0123456789abcdef', 'bob-token-0123456789abcdef', 'carol-token-0123456789abcdef'];
const LIMIT = 7;
const POLICY = `version: 1
default: allow
tools:
  list_tenant_github_orgs:
    rate_limit: { max: ${LIMIT}, window: 3600, scope: global }
`;
const GRANTS = `grants:
  - { identity: alice, token: ${TOKENS[0]} }
  - { identity: bob, token: ${TOKENS[1]} }
  - { identity: carol, token: ${TOKENS[2]} }
`;

/** Runs the built CLI in the temp folder (so no default store of the checkout is ever in reach). */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: tmp.dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

function cleanEnv(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG', 'EGRESS_TRIAGE_DASHBOARD_URL']) delete e[k];
  return e;
}

/** Starts one `serve` replica; resolves with its /mcp URL once it prints it. */
function startServe(args: string[], children: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: tmp.dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not print its address within 30 s:\n${out}`)), 30_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+\/mcp)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited ${code} before listening:\n${out}`));
    });
  });
}

type Analysis = {
  total_anomalies_scanned: number;
  processes: { process: string; count: number; is_vpn_process_candidate: boolean; suggested_rule: { detection_id: string; conditions: Record<string, string>; blocked_reason: string | null; impact: { would_suppress: number } } | null; sample_detections: { id: string; dashboard_url: string }[] }[];
};

function structured<T>(r: unknown, what: string): T {
  const res = r as { isError?: boolean; structuredContent?: unknown };
  assert.ok(!res.isError && res.structuredContent, `${what} failed: ${text(r)}`);
  return res.structuredContent as T;
}

test('three serve replicas on one PostgreSQL and one Redis: one store behind every replica, a rule written through one is seen by another, and a global rate limit is one budget', async () => {
  const db = await (await server()).createDatabase('replicas');
  let redis: TestRedis | undefined;
  const children: ChildProcess[] = [];
  const clients: Client[] = [];
  try {
    redis = await startRedis();
    const migrate = await cli(['db', 'migrate', '--db', db]);
    assert.equal(migrate.status, 0, migrate.stderr);
    const events = join(tmp.dir, 'events.ndjson.gz');
    await writeTenant(GOLDEN_TENANT, events);
    const ingest = await cli(['ingest', events, '--db', db, '--format', 'native']);
    assert.equal(ingest.status, 0, ingest.stderr);

    const policy = join(tmp.dir, 'policy.yaml');
    const grants = join(tmp.dir, 'grants.yaml');
    writeFileSync(policy, POLICY);
    writeFileSync(grants, GRANTS);
    // The dashboard base comes from the config file, as in the documented deployment.
    const config = join(tmp.dir, 'egress-triage.yaml');
    writeFileSync(config, `dashboard_url: ${DASH}\n`);
    const common = ['--db', db, '--state', redis.url, '--policy', policy, '--grants', grants, '--config', config, '--listen', '127.0.0.1:0'];
    const urls = await Promise.all([0, 1, 2].map(() => startServe(common, children)));
    assert.equal(new Set(urls).size, 3, 'three replicas on three ports');
    const connect = async (replica: number, token: string) => {
      const c = new Client({ name: 'replica-test', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(urls[replica]!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      clients.push(c);
      return c;
    };
    const on = await Promise.all([0, 1, 2].map((i) => connect(i, TOKENS[i]!)));

    // 1. The same analysis from two replicas, and from the CLI on the same store.
    const args = { minCount: 1, limit: 200, samples: 2 };
    const [a0, a1] = await Promise.all(
      [0, 1].map(async (i) => structured<Analysis>(await on[i]!.callTool({ name: 'analyze_anomalous_calls_by_process', arguments: args }), `analyze on replica ${i}`)),
    );
    assert.ok(a0.total_anomalies_scanned > 0 && a0.processes.length > 1, 'the replica reads the ingested store');
    assert.ok(a0.processes[0]!.sample_detections[0]!.dashboard_url.startsWith(`${DASH}/`), 'links use the config file\'s dashboard_url');
    assert.deepEqual(a1, a0, 'replica 1 answers as replica 0');
    const fromCli = await cli(['analyze', '--db', db, '--json', '--min-count', '1', '--limit', '200', '--samples', '2', '--config', config]);
    assert.equal(fromCli.status, 0, fromCli.stderr);
    assert.deepEqual(JSON.parse(fromCli.stdout), JSON.parse(JSON.stringify(a0)), '`analyze --json` on the same URL answers as the replicas');

    // 2. A VPN group's suggested rule, created through replica 1, is seen by replica 2.
    const vpn = a0.processes.find((g) => g.is_vpn_process_candidate && g.suggested_rule && g.suggested_rule.blocked_reason === null);
    assert.ok(vpn?.suggested_rule, `the tenant has a VPN group with a safe suggested rule: ${a0.processes.map((g) => g.process).join(', ')}`);
    const rule = vpn.suggested_rule;
    assert.ok(rule.impact.would_suppress > 0);
    const list = async (replica: number, status: string, process?: string) =>
      structured<{ total: number; detections: { id: string; status: string}[] }>(
        await on[replica]!.callTool({ name: 'list_detections', arguments: { status, limit: 200, ...(process ? { process } : {}) } }),
        `list_detections on replica ${replica}`,
      );
    const suppressedBefore = (await list(2, 'suppressed')).total;
    const newBefore = (await list(2, 'new')).total;
    const created = structured<{ suppressed: number; rule: { rule_id: string; created_by: string } }>(
      await on[1]!.callTool({
        name: 'create_suppression_rule',
        arguments: { detection_id: rule.detection_id, name: `${vpn.process} (genuine)`, conditions: rule.conditions, confirm: true },
      }),
      'create_suppression_rule on replica 1',
    );
    assert.equal(created.suppressed, rule.impact.would_suppress, 'the rule suppressed exactly its reported impact');
    assert.equal(created.rule.created_by, 'mcp:bob', 'recorded as the bearer token identity of replica 1');
    const suppressedAfter = await list(2, 'suppressed');
    assert.equal(suppressedAfter.total - suppressedBefore, rule.impact.would_suppress, 'replica 2 shows exactly those detections as suppressed');
    assert.equal(newBefore - (await list(2, 'new')).total, rule.impact.would_suppress, 'and exactly that many fewer new ones');
    // Every suppressed detection of the process, page by page: exactly the rule's impact, the samples among them.
    const ids = new Set<string>();
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const p: { detections: { id: string; status: string; process_sha256: string | null }[]; next_cursor: string | null } = structured(
        await on[2]!.callTool({ name: 'list_detections', arguments: { status: 'suppressed', process: vpn.process, limit: 200, ...(cursor ? { cursor } : {}) } }),
        'list_detections page on replica 2',
      );
      for (const d of p.detections) {
        assert.equal(d.status, 'suppressed');
        assert.equal(d.process_sha256, rule.conditions.process_sha256, 'only the genuine binary is suppressed');
        ids.add(d.id);
      }
      cursor = p.next_cursor;
      if (!cursor) break;
    }
    assert.equal(ids.size, rule.impact.would_suppress, 'replica 2 lists exactly the suppressed detections of the process');
    // The rule is narrowed to the genuine binary's hash: the impostor using the daemon's name stays new.
    const stillNew = await list(2, 'new', vpn.process);
    assert.equal(stillNew.total, vpn.count - rule.impact.would_suppress, 'the rest of the group (the impostor binary) stays new');
    assert.ok(stillNew.total > 0);
    const rest = new Set(stillNew.detections.map((d) => d.id));
    for (const d of vpn.sample_detections) assert.ok(ids.has(d.id) !== rest.has(d.id), `sampled detection ${d.id} is either suppressed or still new, not both`);
    const after = structured<Analysis>(await on[0]!.callTool({ name: 'analyze_anomalous_calls_by_process', arguments: args }), 'analyze after the rule');
    assert.equal(after.total_anomalies_scanned, a0.total_anomalies_scanned - rule.impact.would_suppress, 'replica 0 sees the rule too');

    // 3. A global limit of LIMIT admits exactly LIMIT calls, spread over the three replicas at once.
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const r = await on[i % 3]!.callTool({ name: 'list_tenant_github_orgs', arguments: {} });
        const s = text(r);
        if (s.startsWith('[POLICY DENIED]')) {
          assert.match(s, /rate limit exceeded for "list_tenant_github_orgs"/);
          return false;
        }
        assert.ok(!r.isError, `unexpected error answer: ${s}`);
        return true;
      }),
    );
    assert.equal(outcomes.filter(Boolean).length, LIMIT, `exactly ${LIMIT} admitted across the three replicas`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(children.map(kill));
    await redis?.stop();
  }
});
