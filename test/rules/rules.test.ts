import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { compileRule, matchSubject, validateDetectionType } from '../../src/rules/matcher.js';
import { call, ingestCalls, proc, rollupMismatchesOf, tailscaled, TS0 } from '../analysis/helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import type { DetectionSubject } from '../../src/domain/subject.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

const T = 'rules';
const NOC = 'New-Outbound-Network-Call';

function subject(over: Partial<DetectionSubject>): DetectionSubject {
  return {
    type: NOC, owner: 'acme', repo: 'web', workflow: '.github/workflows/ci.yml', job: 'build',
    endpoint: 'relay.twingate.com:443', host: 'relay.twingate.com', port: 443, ip: '203.0.113.7',
    process: 'twingated', processSha256: 'c'.repeat(64), processPath: '/usr/bin/twingated', ...over,
  };
}

test('matcher: globs, CIDR, normalised process names, validation errors', () => {
  const m = (c: Record<string, string>, s: Partial<DetectionSubject> = {}) => matchSubject(compileRule(NOC, c), subject(s));
  assert.equal(m({ endpoint: '*.twingate.com:443' }), true);
  assert.equal(m({ endpoint: '*.twingate.com:443' }, { endpoint: 'relay.twingate.com:30001' }), false);
  assert.equal(m({ endpoint: '*.twingate.com' }, { endpoint: 'relay.twingate.com:30001' }), true, 'no port in pattern = any port');
  assert.equal(m({ endpoint: '*.TWINGATE.com:*' }), true);
  assert.equal(m({ host: '*.twingate.com' }), true);
  assert.equal(m({ host: 'twingate.com' }), false);
  assert.equal(m({ process: '*twingate*' }), true);
  assert.equal(m({ process: 'TwinGated.exe' }), true);
  assert.equal(m({ process: 'tailscaled' }), false);
  assert.equal(m({ process_sha256: 'C'.repeat(64) }), true);
  assert.equal(m({ process_sha256: 'd'.repeat(64) }), false);
  assert.equal(m({ ip_address: '100.64.0.0/10' }, { ip: '100.127.255.1' }), true);
  assert.equal(m({ ip_address: '100.64.0.0/10' }, { ip: '100.128.0.1' }), false);
  assert.equal(m({ ip_address: '100.64.0.0/10' }, { ip: null }), false);
  assert.equal(m({ ip_address: '192.168.*.1' }, { ip: '192.168.7.1' }), true);
  assert.equal(m({ ip_address: '2001:db8::/32' }, { ip: '2001:db8::5' }), true);
  assert.equal(m({ endpoint: '192.168.*.1:443' }, { endpoint: '192.168.3.1:443' }), true);
  assert.equal(m({ owner: 'ACME', repo: 'w*', workflow: '.github/workflows/*' }), true);
  assert.equal(m({ repo: 'api' }), false);
  assert.equal(m({ file: 'x' }), false, 'file never matches a network detection');
  assert.equal(m({ process: 'twingated' }, { type: 'Domain-Blocked' }), false);
  const err = (c: Record<string, string>, re: RegExp, code?: string) =>
    assert.throws(() => compileRule(NOC, c), (e: unknown) => e instanceof RuleError && re.test(e.message) && (!code || e.code === code));
  err({ proces: 'x' }, /unknown condition key "proces"/, 'unknown_condition');
  err({ ip_address: '100.64.0.0/33' }, /ip_address="100.64.0.0\/33": malformed CIDR/, 'invalid_condition');
  err({ host: '' }, /host: value is empty/);
  err({ endpoint: 'a b:443' }, /whitespace/);
  err({ owner: 'ac me' }, /condition owner="ac me": whitespace and control characters are not allowed/);
  // a GitHub job or workflow name holds spaces (matrix legs: `test (3.11)`); no other blank passes for one
  assert.equal(m({ job: 'test (3.11)' }, { job: 'Test (3.11)' }), true);
  assert.equal(m({ job: 'test (3.11)' }, { job: 'test (3.12)' }), false);
  assert.equal(m({ job: 'test (3.1?)' }, { job: 'test (3.12)' }), true);
  assert.equal(m({ workflow: '.github/workflows/ci test.yml' }, { workflow: '.github/workflows/ci test.yml' }), true);
  // a process name too (macOS runners): exactly that name, and never the daemon it may look like
  assert.equal(m({ process: 'Google Chrome Helper' }, { process: 'google chrome helper' }), true);
  assert.equal(m({ process: 'tail scaled' }, { process: 'tailscaled' }), false);
  for (const [blank, name] of [['\t', 'U+0009'], ['\u00a0', 'U+00A0'], ['\u2009', 'U+2009'], ['\u3000', 'U+3000']]) {
    err({ job: `test${blank}(3.11)` }, new RegExp(`condition job=".*": control characters and blanks other than a space are not allowed \\(${name.replace('+', '\\+')} at character 5\\)$`), 'invalid_condition');
  }
  err({ host: 'foo[bar' }, /host="foo\[bar": bad glob/);
  err({ endpoint: 'x.com:99999' }, /out of range/);
  err({ process: '/usr/bin/curl' }, /not a path/);
  // names are compared without .exe, so a pattern ending in it would have matched every process
  for (const p of ['*.exe', '*.EXE', 'tailscale?.exe', '[a-z]*.exe']) err({ process: p }, /a pattern cannot pick out \.exe binaries/, 'invalid_condition');
  assert.equal(m({ process: 'TwinGated.EXE' }), true, 'a name with .exe is still that name');
  // a store keeps whole digests only: a shortened one (as tables print it) would match nothing in silence
  err({ process_sha256: 'c'.repeat(12) }, /process_sha256="c{12}": expected the whole sha256 digest \(64 hex characters\), got 12/, 'invalid_condition');
  err({ process_sha256: `${'c'.repeat(64)}|d` }, /expected the whole sha256 digest \(64 hex characters\), got 1: .*; several are separated by "\|"/);
  err({ process_sha256: 'sha-curl' }, /expected a sha256 digest \(64 hex characters\)/);
  assert.equal(m({ process_sha256: `sha256:${'C'.repeat(64)}` }), true, 'the sha256: prefix a digest may carry');
  // the detection type reads as every filter reads it, without case
  assert.equal(validateDetectionType('domain-BLOCKED'), 'Domain-Blocked');
  assert.throws(() => validateDetectionType('Domain Blocked'), /unknown detection type "Domain Blocked"/);
});

function fixture(): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  for (let i = 0; i < 8; i++) {
    const ts = TS0 + i * 7_200_000;
    const repo = ['web', 'api', 'lib'][i % 3]!;
    evs.push(call(T, repo, 500 + i, ts, tailscaled(true), { ip: `100.64.1.${i}`, port: 41641 }));
    // the control plane at one of its own addresses: the default one is in the documentation range some tests configure as risky
    evs.push(call(T, repo, 500 + i, ts + 1, tailscaled(true), { domain: 'controlplane.tailscale.com', ip: '192.200.0.101', port: 443 }));
    evs.push(call(T, repo, 500 + i, ts + 2, proc('curl'), { domain: 'api.example.com', port: 443 }));
    evs.push(call(T, repo, 500 + i, ts + 3, proc('node'), { domain: i % 4 === 0 ? 'webhook.site' : 'registry.example.com', port: 443 }));
  }
  return evs;
}

async function statusCounts(at: StoreUnderTest): Promise<Record<string, number>> {
  const rows = (await at.rows(`SELECT status, rule_id <> 0 AS r, count(*) AS n FROM ${detectionsView(at.backend)} AS detections GROUP BY 1, 2`)) as { status: number; r: number; n: number }[];
  return Object.fromEntries(rows.map((x) => [`${x.status}/${x.r}`, x.n]));
}

storeTest('preview == create, delete with and without restore, audit, rollup in step', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store);
    const input = { detection_id: NOC, conditions: { process: 'tailscaled', ip_address: '100.64.0.0/10' } };
    const p = await svc.preview(T, input);
    assert.equal(p.would_suppress, 8);
    assert.equal(p.risky_matches, 0);
    assert.equal(p.refused_reason, null);
    assert.deepEqual(p.by_process, [{ process: 'tailscaled', count: 8 }]);
    const v0 = Number(await at.value("SELECT value FROM meta WHERE key = 'rules_version'"));
    const c = await svc.create(T, { ...input, name: 'ts peers' }, 'tester');
    assert.equal(c.suppressed, p.would_suppress);
    assert.equal(Number(await at.value("SELECT value FROM meta WHERE key = 'rules_version'")), v0 + 1);
    assert.equal(await rollupMismatchesOf(at), 0);
    assert.equal((await svc.preview(T, input)).would_suppress, 0);
    const list = await svc.list(T);
    assert.equal(list.length, 1);
    assert.equal(list[0]!.created_by, 'tester');
    assert.equal((await svc.get(T, c.rule.rule_id)).name, 'ts peers');

    // the second rule (glob endpoint) suppresses only what is still new
    const c2in = { detection_id: NOC, conditions: { endpoint: '*.tailscale.com:443', repo: 'web' } };
    const p2 = await svc.preview(T, c2in);
    const c2 = await svc.create(T, c2in, 'tester');
    assert.equal(c2.suppressed, p2.would_suppress);
    assert.equal(c2.suppressed, 3);
    assert.equal(await rollupMismatchesOf(at), 0);

    // delete without restore keeps past suppressions
    const before = (await statusCounts(at));
    const d1 = await svc.delete(T, c2.rule.rule_id, {}, 'tester');
    assert.equal(d1.restored, 0);
    assert.deepEqual((await statusCounts(at)), before);
    // delete with restore turns them back into new
    const d2 = await svc.delete(T, c.rule.rule_id, { restore: true }, 'tester');
    assert.equal(d2.restored, 8);
    assert.equal(await rollupMismatchesOf(at), 0);
    assert.equal((await statusCounts(at))['1/1'], 3);
    assert.equal((await svc.list(T)).length, 0);
    await assert.rejects(svc.get(T, c.rule.rule_id), (e: unknown) => e instanceof RuleError && e.code === 'not_found');

    const audit = await svc.audit(T);
    assert.deepEqual(audit.map((a) => a.action), ['delete+restore', 'delete', 'create', 'create']);
    assert.ok(audit.every((a) => a.actor === 'tester'));
    assert.equal(audit[0]!.affected, 8);
    assert.equal((audit[3]!.after as { name: string }).name, 'ts peers');
    assert.equal(audit[0]!.after, null);

    // update: new conditions apply retroactively
    const c3 = await svc.create(T, { detection_id: NOC, conditions: { process: 'curl', repo: 'web' } }, 'tester');
    assert.equal(c3.suppressed, 3);
    const u = await svc.update(T, c3.rule.rule_id, { conditions: { process: 'curl' } }, 'tester');
    assert.equal(u.suppressed, 5);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('never-suppress: rules targeting or covering risky destinations are refused; nothing changes', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store);
    const snapshot = (await statusCounts(at));
    for (const conditions of [
      { host: 'gist.githubusercontent.com' },
      { endpoint: '*.webhook.site:443' },
      { host: 'webhook.site', repo: 'web' },
      { endpoint: 'x.oastify.com:443' },
      { process: 'node' },
      { endpoint: '*:443' },
    ]) {
      await assert.rejects(svc.create(T, { detection_id: NOC, conditions }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'refused_risky', JSON.stringify(conditions));
    }
    // and every pattern that names no owner, alone or beside other conditions that name nothing
    for (const conditions of [{ owner: '*' }, { owner: '?*' }, { owner: '*?' }, { process: '*?', host: '*.*' }, { repo: '???' }, { ip_address: '0.0.0.0/0' }, { endpoint: '*:*' }]) {
      await assert.rejects(svc.create(T, { detection_id: NOC, conditions }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'too_broad', JSON.stringify(conditions));
      assert.equal((await svc.preview(T, { detection_id: NOC, conditions })).refused_reason?.startsWith('the rule has no condition'), true, JSON.stringify(conditions));
    }
    await assert.rejects(svc.create(T, { detection_id: 'Nope', conditions: { process: 'x' } }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'invalid_detection_type');
    const p = await svc.preview(T, { detection_id: NOC, conditions: { process: 'node' } });
    assert.equal(p.risky_matches, 2);
    assert.deepEqual(p.risky_samples, [{ endpoint: 'webhook.site:443', process: 'node', count: 2 }]);
    assert.ok(p.warnings.some((w) => w.includes('risky')));
    assert.deepEqual((await statusCounts(at)), snapshot);
    assert.equal((await svc.list(T)).length, 0);
    assert.equal((await at.value('SELECT count(*) FROM rule_audit')), 0);
    // narrowed so that it excludes the risky host: accepted
    const ok = await svc.create(T, { detection_id: NOC, conditions: { process: 'node', host: 'registry.example.com' } }, 't');
    assert.equal(ok.suppressed, 6);
  } finally {
    await store.close();
  }
});

storeTest('never-suppress ranges: a rule address, range or glob sharing any address with one is refused, whatever the data', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store, { extraRiskyDestinations: ['203.0.113.0/24', '2001:db8:bad::/48'] });
    const snapshot = await statusCounts(at);
    // ...and the same addresses through a transition prefix, as ingest reads them: NAT64 (well-known and
    // local-use), IPv4-compatible, 6to4, a range or glob over them
    const transition = ['64:ff9b::cb00:7107', '64:ff9b::/96', '64:ff9b:1::cb00:7109', '::cb00:7107', '::ffff:0:cb00:7107', '2002:cb00:7107::1', '2002::/16', '64:ff9b::cb00:71*'];
    for (const ip_address of ['203.0.113.7', '203.0.113.128/25', '203.0.0.0/16', '203.0.113.1?', '::ffff:203.0.113.9', '2001:db8:bad::1', '2001:db8::/32', ...transition]) {
      for (const conditions of [{ process: 'tailscaled', ip_address }, { ip_address, repo: 'web' }]) {
        await assert.rejects(
          svc.preview(T, { detection_id: NOC, conditions }).then(() => svc.create(T, { detection_id: NOC, conditions }, 't')),
          (e: unknown) => e instanceof RuleError && e.code === 'refused_risky' && /covers addresses of the never-suppress range/.test(e.message),
          JSON.stringify(conditions),
        );
      }
    }
    assert.deepEqual(await statusCounts(at), snapshot);
    assert.equal((await svc.list(T)).length, 0);
    // next to the ranges but outside them: accepted
    for (const ip_address of ['203.0.114.0/24', '203.0.112.*', '100.64.0.0/10', '2001:db8:bae::/48', '64:ff9b::cb00:7207', '2002:cb00:7207::/48']) {
      await svc.create(T, { detection_id: NOC, conditions: { process: 'tailscaled', ip_address } }, 't');
    }
    // with IPv4 entries only, an IPv6 glob elsewhere is no transition spelling of them: a 6to4 image
    // is a /48, too wide to enumerate, and "it may match" would refuse every IPv6 glob
    const v4Only = new RulesService(store, { extraRiskyDestinations: ['203.0.113.9'] });
    for (const ip_address of ['2606:4700:*', 'fe80::*']) {
      assert.equal((await v4Only.preview(T, { detection_id: NOC, conditions: { process: 'curl', ip_address } })).refused_reason, null, ip_address);
    }
    assert.match((await v4Only.preview(T, { detection_id: NOC, conditions: { process: 'curl', ip_address: '64:ff9b::cb00:71*' } })).refused_reason ?? '', /never-suppress range 203\.0\.113\.9 \(as 64:ff9b::cb00:7109\/128\)/);
  } finally {
    await store.close();
  }
});

storeTest('newly ingested detections matching a rule are stored suppressed; risky ones never', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store);
    const r = await svc.create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    const more: NetworkCallEvent[] = [
      call(T, 'web', 900, TS0 + 86_400_000 * 2, proc('curl'), { domain: 'api.example.com', port: 443 }),
      call(T, 'web', 900, TS0 + 86_400_000 * 2 + 5, proc('curl'), { domain: 'other.example.com', port: 8443 }),
      call(T, 'web', 900, TS0 + 86_400_000 * 2 + 9, proc('curl'), { domain: 'webhook.site', port: 443 }),
      call(T, 'web', 900, TS0 + 86_400_000 * 2 + 9, proc('wget'), { domain: 'api.example.com', port: 443 }),
    ];
    const res = await ingestCalls(at, store, T, more);
    assert.equal(res.detections, 4);
    assert.equal(res.suppressedOnIngest, 2);
    const rows = (await at.rows(`SELECT e.endpoint, p.norm_name, d.status, ru.rule_uid FROM ${detectionsView(at.backend)} d JOIN endpoints e ON e.id = d.endpoint_id
         JOIN processes p ON p.id = d.process_id LEFT JOIN rules ru ON ru.id = d.rule_id JOIN runs r ON r.id = d.run_ref
         WHERE r.run_id = '900' ORDER BY e.endpoint, p.norm_name`)) as { endpoint: string; norm_name: string; status: number; rule_uid: string | null }[];
    assert.deepEqual(
      rows.map((x) => [x.endpoint, x.norm_name, x.status, x.rule_uid]),
      [
        ['api.example.com:443', 'curl', 1, r.rule.rule_id],
        ['api.example.com:443', 'wget', 0, null],
        ['other.example.com:8443', 'curl', 1, r.rule.rule_id],
        ['webhook.site:443', 'curl', 0, null],
      ],
    );
    assert.equal(await rollupMismatchesOf(at), 0);
    // restore also moves ingest-time suppressions back
    const d = await svc.delete(T, r.rule.rule_id, { restore: true }, 't');
    assert.equal(d.restored, 8 + 2);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('delete --restore hands restored detections to other active rules, never risky ones', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store);
    // A: tailscaled peers everywhere; B (created later, so it suppresses nothing at first): tailscaled in repo web
    const a = await svc.create(T, { detection_id: NOC, conditions: { process: 'tailscaled', ip_address: '100.64.0.0/10' } });
    assert.equal(a.suppressed, 8);
    const b = await svc.create(T, { detection_id: NOC, conditions: { process: 'tailscaled', repo: 'web' } });
    assert.equal(b.suppressed, 3, 'controlplane calls in web');
    const c = await svc.create(T, { detection_id: NOC, conditions: { process: 'node', repo: 'lib' } });
    // risky webhook.site detections of node in lib arrive later and stay new at ingest
    await ingestCalls(at, store, T, [call(T, 'lib', 900, TS0 + 90 * 7_200_000, proc('node'), { domain: 'webhook.site', port: 443 })]);
    const del = await svc.delete(T, a.rule.rule_id, { restore: true });
    // 8 restored; the 3 in repo web are taken over by B: 5 end up new
    assert.equal(del.restored, 5);
    const byRule = (await at.rows(`SELECT rule_id, count(*) AS n FROM ${detectionsView(at.backend)} AS detections WHERE status = 1 GROUP BY rule_id ORDER BY rule_id`)) as { rule_id: number; n: number }[];
    const ruleId = async (uid: string) => (await at.value('SELECT id FROM rules WHERE rule_uid = ?', [uid])) as number;
    const bId = await ruleId(b.rule.rule_id);
    assert.deepEqual(byRule.find((r) => r.rule_id === bId)?.n, 6);
    const risky = (await at.column(`SELECT d.status FROM ${detectionsView(at.backend)} d JOIN endpoints e ON e.id = d.endpoint_id WHERE e.endpoint = 'webhook.site:443' AND d.job_ref IN (SELECT id FROM jobs WHERE repo = 'lib')`)) as number[];
    assert.ok(risky.length > 0 && risky.every((s) => s === 0), 'risky detections stay new');
    assert.equal(c.suppressed, 2);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('rule text shown to people refuses control, bidirectional and line-separator characters: name, description and actor', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store);
    const input = { detection_id: NOC, conditions: { process: 'tailscaled' } };
    const refusedText = (field: string, code: string) => (e: unknown) =>
      e instanceof RuleError && e.code === 'invalid_input' && e.message.startsWith(`${field} contains the unprintable character ${code} at character`);
    await assert.rejects(svc.create(T, { ...input, name: 'evil\u001b[2J\u001b[31mRED' }, 't'), refusedText('name', 'U+001B'));
    await assert.rejects(svc.create(T, { ...input, name: 'two\nlines' }, 't'), refusedText('name', 'U+000A'));
    await assert.rejects(svc.create(T, { ...input, description: 'ring\u0007' }, 't'), refusedText('description', 'U+0007'));
    await assert.rejects(svc.create(T, { ...input, description: 'safe \u202Eexe.hsab' }, 't'), refusedText('description', 'U+202E'));
    // a line or paragraph separator breaks the line of a confirmation question
    await assert.rejects(svc.create(T, { ...input, name: 'pinned"\u2028\u2028real text below' }, 't'), refusedText('name', 'U+2028'));
    await assert.rejects(svc.create(T, { ...input, description: 'a\u2029b' }, 't'), refusedText('description', 'U+2029'));
    await assert.rejects(svc.create(T, input, 'me\u001b[1m'), refusedText('actor', 'U+001B'));
    await assert.rejects(svc.create(T, input, '  '), (e: unknown) => e instanceof RuleError && /actor is empty/.test(e.message));
    assert.equal((await svc.list(T)).length, 0, 'nothing was created');
    const ok = await svc.create(T, { ...input, name: 'Tailscale mesh — ünïcode is fine', description: 'tab\tin the middle is not' }, 't').catch((e: Error) => e);
    assert.ok(ok instanceof RuleError && /U\+0009/.test(ok.message), 'a tab is a control character too');
    const created = await svc.create(T, { ...input, name: 'Tailscale mesh — ünïcode is fine 👩‍👩‍👧' }, 'mcp:alice');
    await assert.rejects(svc.update(T, created.rule.rule_id, { name: 'x\u009bm' }, 't'), refusedText('name', 'U+009B'));
    await assert.rejects(svc.delete(T, created.rule.rule_id, {}, 'x\u0000'), refusedText('actor', 'U+0000'));
    assert.equal((await svc.get(T, created.rule.rule_id)).name, 'Tailscale mesh — ünïcode is fine 👩‍👩‍👧');
    // a blank name keeps the rule's name (on create: the default one); an update that changes nothing is refused, and audits nothing
    const kept = await svc.update(T, created.rule.rule_id, { name: '  ', description: 'mesh' }, 't');
    assert.deepEqual([kept.rule.name, kept.rule.description], ['Tailscale mesh — ünïcode is fine 👩‍👩‍👧', 'mesh']);
    const audits = (await svc.audit(T, created.rule.rule_id)).length;
    for (const nothing of [{}, { name: ' ' }]) {
      await assert.rejects(svc.update(T, created.rule.rule_id, nothing, 't'), (e: unknown) => e instanceof RuleError && e.code === 'invalid_input' && /nothing to change/.test(e.message));
    }
    assert.equal((await svc.audit(T, created.rule.rule_id)).length, audits, 'a refused update audits nothing');
    const blank = await svc.create(T, { ...input, conditions: { ...input.conditions, owner: 'acme-corp' }, name: ' ' }, 't');
    assert.match(blank.rule.name, /^suppress /);
  } finally {
    await store.close();
  }
});

storeTest('a stored rule that no longer compiles matches nothing, and blocks neither another rule\'s delete and update nor its own rename', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const svc = new RulesService(store);
    const curl = await svc.create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    const legacy = await svc.create(T, { detection_id: NOC, conditions: { process: 'tailscaled', owner: 'acme-corp' } }, 't');
    // as an older version stored it: a bracketed host that is no IP address, refused since
    await at.rows('UPDATE rules SET conditions = ? WHERE rule_uid = ?', [JSON.stringify({ endpoint: '[abc]:443', process: 'tailscaled' }), legacy.rule.rule_id]);
    const renamed = await svc.update(T, legacy.rule.rule_id, { name: 'old mesh rule' }, 't');
    assert.equal(renamed.rule.name, 'old mesh rule');
    assert.deepEqual(renamed.rule.conditions, { endpoint: '[abc]:443', process: 'tailscaled' });
    // re-applying the active rules (delete --restore) and handing detections over (update) skip it
    const narrowed = await svc.update(T, curl.rule.rule_id, { conditions: { process: 'curl', repo: 'web' } }, 't');
    assert.ok(curl.suppressed > 0);
    assert.equal(narrowed.kept! + narrowed.restored, curl.suppressed);
    const deleted = await svc.delete(T, curl.rule.rule_id, { restore: true }, 't');
    assert.equal(deleted.restored, narrowed.kept);
    assert.equal(await rollupMismatchesOf(at), 0);
    // a catch-all stored before the guard knew it (owner=?*) suppresses nothing from then on
    const catchAll = await svc.create(T, { detection_id: NOC, conditions: { process: 'node', owner: 'acme-corp' } }, 't');
    await at.rows('UPDATE rules SET conditions = ? WHERE rule_uid = ?', [JSON.stringify({ owner: '?*' }), catchAll.rule.rule_id]);
    const before = await statusCounts(at);
    await ingestCalls(at, store, T, [call(T, 'web', 900, TS0 + 100 * 7_200_000, proc('curl'), { domain: 'new.example.com', port: 443 })]);
    const after = await statusCounts(at);
    assert.equal((after['0/0'] ?? 0) - (before['0/0'] ?? 0), 1, 'the new detection stays new');
    assert.equal(after['1/1'], before['1/1']);
  } finally {
    await store.close();
  }
});
