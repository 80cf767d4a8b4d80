import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EcsAdapter } from '../../src/ingest/adapters/ecs.js';
import { HardenRunnerAdapter } from '../../src/ingest/adapters/harden-runner.js';
import { NativeAdapter } from '../../src/ingest/adapters/native.js';
import type { AdapterOutput, RecordContext } from '../../src/ingest/adapters/types.js';
import { CHAIN_CUT, MAX_PARENT_DEPTH, parentChain } from '../../src/domain/process-name.js';
import type { NetworkCallEvent, ProcessInfo } from '../../src/domain/types.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { call as storedCall, ingestCalls, tailscaled, TS0, IMPOSTOR_SHA } from '../analysis/helpers.js';
import { eachStore } from '../helpers/each-store.js';

/**
 * A parent chain deeper than MAX_PARENT_DEPTH links, in every format: the record is kept (refusing it
 * dropped the call of whoever chose a deep chain), the chain keeps its nearest links and ends in
 * CHAIN_CUT, counted as `parent-chain-cut`, and a daemon-named binary with such a chain is a
 * suspected impostor (32 `sh` between an npm postinstall and a renamed tailscaled hid the npm).
 */

const { storeTest } = eachStore();
const CTX = { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', runId: '7', runAttempt: 1 };

function rc(): RecordContext {
  return { source: 'deep.ndjson', line: 1, tenant: 'default', defaults: CTX, notes: {} };
}

function event(out: AdapterOutput): NetworkCallEvent {
  assert.equal(out.kind, 'call');
  return (out as { kind: 'call'; event: NetworkCallEvent }).event;
}

/** `links` parents, nearest first: npm, node, then `sh` up to the count (as JSON objects with `parent`). */
function nested(links: number, shape: 'native' | 'tool'): Record<string, unknown> | null {
  let p: Record<string, unknown> | null = null;
  for (let i = links - 1; i >= 0; i--) {
    const name = i === links - 1 ? 'npm' : 'sh';
    p = shape === 'native' ? { name, path: `/usr/bin/${name}`, parent: p } : { name, sha256: '', parent: p };
  }
  return p;
}

function names(p: ProcessInfo): string[] {
  return parentChain(p).map((l) => l.name);
}

for (const links of [MAX_PARENT_DEPTH - 1, MAX_PARENT_DEPTH, MAX_PARENT_DEPTH + 1, 200]) {
  const cut = links > MAX_PARENT_DEPTH;
  test(`native and Harden-Runner records with ${links} parent links: kept, ${cut ? `cut to ${MAX_PARENT_DEPTH - 1} links and CHAIN_CUT` : 'whole'}`, () => {
    const native = rc();
    const n = event(new NativeAdapter().parse({ ...CTX, run_id: '7', timestamp: '2026-11-02T10:00:00Z', domain: 'webhook.site', port: 443, process: { name: 'curl', parent: nested(links, 'native') } }, native));
    const hr = rc();
    const h = event(new HardenRunnerAdapter().parse({ ipAddress: '46.4.105.116', port: '443', domainName: 'webhook.site.', timestamp: '2026-11-02T10:00:00Z', tool: { name: 'curl', sha256: '', parent: nested(links, 'tool') }, status: 'Allowed' }, hr));
    for (const [ev, ctx] of [[n, native], [h, hr]] as const) {
      const chain = names(ev.process);
      assert.equal(chain.length, Math.min(links, MAX_PARENT_DEPTH));
      assert.equal(chain.at(-1), cut ? CHAIN_CUT : 'npm');
      assert.ok(chain.slice(0, -1).every((x) => x === 'sh'));
      assert.deepEqual(ctx.notes, cut ? { 'parent-chain-cut': 1 } : {});
    }
  });
}

test('ECS: an ancestry resolved past MAX_PARENT_DEPTH ends in CHAIN_CUT; one that fits is whole', () => {
  for (const depth of [MAX_PARENT_DEPTH, MAX_PARENT_DEPTH + 1]) {
    const a = new EcsAdapter();
    const ctx = rc();
    const start = (id: string, name: string, parent?: string) =>
      a.parse({ '@timestamp': '2026-11-02T10:00:00Z', event: { category: ['process'], type: ['start'] }, process: { entity_id: id, name, ...(parent ? { parent: { entity_id: parent } } : {}) } }, ctx);
    // p0 is the farthest: npm, then sh ... up to the nearest parent p{depth-1}
    for (let i = 0; i < depth; i++) start(`p${i}`, i === 0 ? 'npm' : 'sh', i === 0 ? undefined : `p${i - 1}`);
    const ev = event(
      a.parse({ '@timestamp': '2026-11-02T10:00:01Z', event: { category: ['network'], type: ['connection', 'start'] }, network: { direction: 'egress' }, destination: { ip: '203.0.113.9', port: 41641 }, process: { entity_id: 'ts', name: 'tailscaled', parent: { entity_id: `p${depth - 1}` } } }, ctx),
    );
    const chain = names(ev.process);
    assert.equal(chain.length, MAX_PARENT_DEPTH);
    assert.equal(chain.at(-1), depth > MAX_PARENT_DEPTH ? CHAIN_CUT : 'npm', `depth ${depth}`);
    assert.equal(ctx.notes['parent-chain-cut'], depth > MAX_PARENT_DEPTH ? 1 : undefined);
  }
});

storeTest('a renamed tailscaled 40 links below an npm postinstall is a suspected impostor: no suggestion, no rule over its hash', async (at) => {
  const store = await at.open();
  try {
    let parent: ProcessInfo | null = { name: 'npm', path: '/usr/bin/npm', parent: null };
    for (let i = 0; i < 40; i++) parent = { name: 'sh', path: '/bin/sh', parent };
    const renamed: ProcessInfo = { ...tailscaled(true), sha256: IMPOSTOR_SHA, path: '/tmp/.c/tailscaled', parent };
    const evs: NetworkCallEvent[] = [];
    for (let i = 0; i < 3; i++) {
      evs.push(storedCall('deep', 'web', 400 + i, TS0 + i * 3_600_000, renamed, { ip: '203.0.113.9', port: 41641 }));
      evs.push(storedCall('deep', 'web', 400 + i, TS0 + i * 3_600_000 + 1, renamed, { ip: '203.0.113.10', port: 443 }));
    }
    await ingestCalls(at, store, 'deep', evs);
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: 'deep' }, { rules });
    const g = res.processes.find((p) => p.process === 'tailscaled')!;
    assert.equal(g.count, 6, 'every call kept');
    const bin = g.vpn_evidence.binaries.find((b) => b.sha256 === IMPOSTOR_SHA)!;
    assert.equal(bin.verdict, 'impostor', JSON.stringify(bin));
    assert.ok(bin.contradicting.some((c) => c.includes(CHAIN_CUT)), bin.contradicting.join());
    assert.equal(g.suggested_rule, null);
    await assert.rejects(
      rules.create('deep', { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled', process_sha256: IMPOSTOR_SHA } }, 'test'),
      (e: unknown) => e instanceof RuleError && e.code === 'refused_impostor',
    );
  } finally {
    await store.close();
  }
});
