import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { backends, type Connection } from './backends.js';
import { nativeEvent, ndjson, tempDir } from '../../helpers.js';
import { IngestPipeline } from '../../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../../src/detection/engine.js';
import { suppressorFor } from '../../../src/rules/suppressor.js';
import { RuleError, RulesService } from '../../../src/rules/service.js';
import type { DetectionStatus } from '../../../src/domain/types.js';

/**
 * Rules contract, identical on every backend: exact preview / create / update / delete counts,
 * retroactive rules and restore, the never-suppress guards (risky destination, suspected impostor),
 * ingest-time suppression after a rule exists (and an impostor flagged mid-stream released), tenant
 * isolation and the audit trail. The store is fed by the real ingest pipeline through its ports.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const NOC = 'New-Outbound-Network-Call';
let files = 0;

type Spec = Parameters<typeof nativeEvent>[0] & { proc?: Record<string, unknown> };

function event(s: Spec): Record<string, unknown> {
  const e = nativeEvent(s);
  if (s.proc) e.process = s.proc;
  return e;
}

/** A tailscaled with a clean parent chain: nothing contradicts it until it calls a foreign domain. */
const LATE = { name: 'tailscaled', path: '/usr/local/bin/tailscaled', sha256: 'c'.repeat(64), parent: { name: 'sudo', parent: { name: 'bash' } } };
const IMPOSTOR = { name: 'tailscaled', path: '/tmp/.cache/tailscaled', sha256: 'd'.repeat(64), parent: { name: 'node', parent: { name: 'bash' } } };

/** Ingests events through the pipeline with learning off: every call raises a detection. */
async function ingest(c: Connection, tenant: string, events: Spec[], strict = false): Promise<{ detections: number; suppressedOnIngest: number }> {
  const f = join(tmp.dir, `in-${files++}.ndjson`);
  writeFileSync(f, ndjson(events.map((s) => event({ ...s, tenant }))));
  const pipe = new IngestPipeline(
    { ingest: c.ingest() },
    {
      tenant,
      format: 'auto',
      strict,
      defaults: {},
      engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1_000_000 },
      suppressorFor: () => suppressorFor(c.rules, tenant),
      inThread: true,
      // --strict: one write batch per event, so later batches run while earlier ones hold their locks
      batchSize: strict ? 1 : undefined,
    },
  );
  const s = await pipe.ingest(f);
  return { detections: s.detections, suppressedOnIngest: s.suppressedOnIngest };
}

async function count(c: Connection, tenant: string, status: DetectionStatus, more: { endpoint?: string } = {}): Promise<number> {
  const p = await c.detections.list(tenant, { statuses: [status] }, 500);
  return more.endpoint ? p.detections.filter((d) => d.endpoint === more.endpoint).length : p.total;
}

/** The counts kept with the detections (stats) equal the detections themselves. */
async function inStep(c: Connection, tenant: string): Promise<void> {
  const stats = await c.detections.stats(tenant);
  for (const status of ['new', 'suppressed'] as const) {
    const kept = stats.detections.filter((d) => d.status === status).reduce((a, d) => a + d.count, 0);
    assert.equal(kept, await count(c, tenant, status), `${tenant}: ${status} counts in step`);
  }
}

async function refused(p: Promise<unknown>, code: RuleError['code']): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof RuleError && e.code === code);
}

for (const backend of backends()) {
  test(`${backend.name}: rules contract`, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    const rules = new RulesService(c.rules);
    try {
      await ingest(c, 'acme', [
        ...[1, 2, 3, 4].map((run) => ({ run, repo: 'api', domain: 'a1.example.com' })),
        ...[1, 2, 3].map((run) => ({ run, repo: 'web', domain: 'a2.example.com' })),
        { run: 1, repo: 'api', domain: 'webhook.site', t: 1 },
        { run: 2, repo: 'api', domain: 'evil.example.com', t: 2, proc: IMPOSTOR },
        { run: 2, repo: 'api', domain: 'pkg.example.org', t: 3, process: 'wget' },
      ]);
      await ingest(c, 'globex', [1, 2].map((run) => ({ run, repo: 'api', domain: 'a1.example.com' })));
      assert.equal(await count(c, 'acme', 'new'), 10);

      const curlExample = { detection_id: NOC, conditions: { process: 'curl', endpoint: '*.example.com:443' } };
      let wide = '';

      await t.test('preview: exact counts by process and repo, nothing changes', async () => {
        const p = await rules.preview('acme', curlExample);
        assert.equal(p.would_suppress, 7);
        assert.equal(p.risky_matches, 0);
        assert.equal(p.impostor_matches, 0);
        assert.equal(p.refused_reason, null);
        assert.deepEqual(p.by_process, [{ process: 'curl', count: 7 }]);
        assert.deepEqual(p.by_repo, [{ owner: 'acme', repo: 'api', count: 4 }, { owner: 'acme', repo: 'web', count: 3 }]);
        assert.equal(p.sample_detection_ids.length, 7);
        assert.equal(await count(c, 'acme', 'suppressed'), 0);
      });

      await t.test('create is retroactive and exact, within its tenant only', async () => {
        const r = await rules.create('acme', curlExample, 'alice');
        wide = r.rule.rule_id;
        assert.equal(r.suppressed, 7);
        assert.equal(await count(c, 'acme', 'suppressed'), 7);
        assert.equal(await count(c, 'globex', 'new'), 2, 'another tenant is untouched');
        assert.equal((await rules.preview('acme', curlExample)).would_suppress, 0, 'nothing left to suppress');
        assert.deepEqual((await rules.list('acme')).map((x) => x.rule_id), [wide]);
        assert.deepEqual(await rules.list('globex'), []);
        assert.equal((await rules.get('acme', wide)).created_by, 'alice');
        await refused(rules.get('globex', wide), 'not_found');
        await inStep(c, 'acme');
      });

      await t.test('never-suppress: a rule that would hide a risky destination or an impostor is refused, nothing changes', async () => {
        const risky = await rules.preview('acme', { detection_id: NOC, conditions: { process: 'curl' } });
        assert.equal(risky.risky_matches, 1);
        assert.match(risky.refused_reason ?? '', /risky destinations \(webhook\.site:443\)/);
        await refused(rules.create('acme', { detection_id: NOC, conditions: { process: 'curl' } }, 'x'), 'refused_risky');
        await refused(rules.create('acme', { detection_id: NOC, conditions: { host: 'webhook.site' } }, 'x'), 'refused_risky');
        const imp = await rules.preview('acme', { detection_id: NOC, conditions: { process: 'tailscaled' } });
        assert.equal(imp.impostor_matches, 1);
        await refused(rules.create('acme', { detection_id: NOC, conditions: { process: 'tailscaled' } }, 'x'), 'refused_impostor');
        await refused(rules.create('acme', { detection_id: NOC, conditions: { process_sha256: IMPOSTOR.sha256 } }, 'x'), 'refused_impostor');
        await refused(rules.create('acme', { detection_id: NOC, conditions: { process: '*' } }, 'x'), 'too_broad');
        assert.equal(await count(c, 'acme', 'suppressed'), 7);
        assert.equal((await rules.list('acme')).length, 1);
      });

      await t.test('ingest after a rule exists: matching detections are stored suppressed, a risky one never', async () => {
        const wget = await rules.create('acme', { detection_id: NOC, conditions: { process: 'wget' } }, 'alice');
        assert.equal(wget.suppressed, 1);
        const r = await ingest(c, 'acme', [
          { run: 5, repo: 'api', domain: 'a1.example.com' },
          { run: 5, repo: 'api', domain: 'a3.example.com', t: 1 },
          { run: 5, repo: 'api', domain: 'webhook.site', t: 2, process: 'wget' },
          { run: 5, repo: 'api', domain: 'other.example.net', t: 3, process: 'wget' },
        ]);
        assert.equal(r.detections, 4);
        assert.equal(r.suppressedOnIngest, 3);
        assert.equal(await count(c, 'acme', 'new', { endpoint: 'webhook.site:443' }), 2, 'the risky destination stays visible');
        await inStep(c, 'acme');
        // the rule's history: delete it with restore, exactly its detections come back
        const d = await rules.delete('acme', wget.rule.rule_id, { restore: true }, 'bob');
        assert.equal(d.restored, 2);
        await refused(rules.delete('acme', wget.rule.rule_id, {}, 'bob'), 'not_found');
      });

      await t.test('update narrows a rule: kept, released and newly suppressed are exact', async () => {
        const u = await rules.update('acme', wide, { conditions: { process: 'curl', endpoint: 'a1.example.com:443' } }, 'carol');
        assert.equal(u.kept, 5);
        assert.equal(u.restored, 4, 'a2 x3 and a3 x1 back to new');
        assert.equal(u.suppressed, 0);
        assert.deepEqual(u.rule.conditions, { process: 'curl', endpoint: 'a1.example.com:443' });
        await inStep(c, 'acme');
      });

      await t.test('delete keeps past suppressions; a re-created rule suppresses only what is new; delete --restore reopens exactly its own', async () => {
        const before = await count(c, 'acme', 'suppressed');
        const d = await rules.delete('acme', wide, {}, 'dave');
        assert.equal(d.restored, 0);
        assert.equal(await count(c, 'acme', 'suppressed'), before);
        await refused(rules.delete('acme', wide, { restore: true }, 'dave'), 'not_found');
        await refused(rules.update('acme', wide, { name: 'x' }, 'dave'), 'not_found');
        const again = await rules.create('acme', curlExample, 'erin');
        assert.equal(again.suppressed, 4, 'a2 x3 and a3 x1; the a1 ones stay with the deleted rule');
        const gone = await rules.delete('acme', again.rule.rule_id, { restore: true }, 'erin');
        assert.equal(gone.restored, 4);
        assert.equal(await count(c, 'acme', 'suppressed'), before);
        await inStep(c, 'acme');
      });

      await t.test('a rule of another tenant moves only that tenant', async () => {
        const g = await rules.create('globex', curlExample, 'gina');
        assert.equal(g.suppressed, 2);
        assert.equal(await count(c, 'acme', 'suppressed'), 5);
        assert.equal((await rules.delete('globex', g.rule.rule_id, { restore: true }, 'gina')).restored, 2);
        assert.equal(await count(c, 'acme', 'suppressed'), 5);
      });

      await t.test('the audit trail: every change, newest first, who, before/after, how many moved', async () => {
        const a = await rules.audit('acme');
        assert.deepEqual(
          a.map((x) => [x.action, x.actor, x.affected]),
          [
            ['delete+restore', 'erin', 4],
            ['create', 'erin', 4],
            ['delete', 'dave', 0],
            ['update', 'carol', 4],
            ['delete+restore', 'bob', 2],
            ['create', 'alice', 1],
            ['create', 'alice', 7],
          ],
        );
        const one = await rules.audit('acme', wide);
        assert.deepEqual(one.map((x) => x.action), ['delete', 'update', 'create']);
        assert.deepEqual((one[1]!.before as { conditions: unknown }).conditions, curlExample.conditions);
        assert.equal((await rules.audit('globex')).length, 2);
        assert.deepEqual(await rules.audit('nobody'), []);
      });

      await t.test('ingest: a binary flagged mid-stream gets its earlier suppressions released', async () => {
        const T = 'initech';
        await ingest(c, T, [{ run: 1, ip: '100.64.0.1', port: 41641, proc: LATE }]);
        const byName = await rules.create(T, { detection_id: NOC, conditions: { process: 'tailscaled' } }, 't');
        assert.equal(byName.suppressed, 1);
        const first = await ingest(c, T, [2, 3, 4].map((run) => ({ run, ip: `100.64.0.${run}`, port: 41641, proc: LATE })));
        assert.equal(first.suppressedOnIngest, 3);
        const second = await ingest(c, T, [
          { run: 9, domain: 'evil.example.com', proc: LATE },
          { run: 9, ip: '100.64.0.9', port: 41641, t: 1, proc: LATE },
        ]);
        assert.equal(second.suppressedOnIngest, 0);
        assert.equal(await count(c, T, 'suppressed'), 0, 'every suppression of the impostor released');
        assert.equal(await count(c, T, 'new'), 6);
        const third = await ingest(c, T, [{ run: 12, ip: '100.64.0.12', port: 41641, proc: LATE }]);
        assert.equal(third.suppressedOnIngest, 0, 'the flag is stored: the next ingest knows it');
        await inStep(c, T);
      });

      await t.test('ingest --strict: a binary flagged mid-source gets its suppressions released when the source commits', async () => {
        const T = 'umbrella';
        await ingest(c, T, [{ run: 1, ip: '100.64.0.1', port: 41641, proc: LATE }]);
        assert.equal((await rules.create(T, { detection_id: NOC, conditions: { process: 'tailscaled' } }, 't')).suppressed, 1);
        const r = await ingest(
          c,
          T,
          [
            { run: 1, ip: '100.64.0.2', port: 41641, t: 1, proc: LATE },
            { run: 2, ip: '100.64.0.3', port: 41641, proc: LATE },
            { run: 3, domain: 'evil.example.com', proc: LATE },
          ],
          true,
        );
        assert.equal(r.detections, 3);
        assert.equal(await count(c, T, 'suppressed'), 0, 'the earlier source and this one: nothing of the impostor stays suppressed');
        assert.equal(await count(c, T, 'new'), 4);
        await inStep(c, T);
      });
    } finally {
      await c.close();
    }
  });
}
