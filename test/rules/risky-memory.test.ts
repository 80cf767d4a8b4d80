import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { ForgetRiskyError, forgetRiskyDestination, rememberRiskyDestinations } from '../../src/rules/risky-memory.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { riskyRefreshing } from '../../src/cli/commands/ingest.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import type { RulesStore } from '../../src/storage/rules-port.js';
import { call, ingestCalls, nativeLine, proc, rollupMismatchesOf, TS0 } from '../analysis/helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { eachStore, statusByHost } from '../helpers/each-store.js';
import { runCli, tempDir } from '../helpers.js';
import { EXIT } from '../../src/cli/exit-codes.js';

const { storeTest } = eachStore();

/**
 * The risky destinations a config names are remembered by the store: a command that does not find
 * that config (another working directory, an MCP server started elsewhere) still judges by them.
 * When an entry is first remembered, what rules suppressed of it comes back as new.
 */

const T = 'memory';
const NOC = 'New-Outbound-Network-Call';

function calls(): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  for (let run = 1; run <= 3; run++) {
    const ts = TS0 + run * 3_600_000;
    evs.push(call(T, 'api', run, ts, proc('curl'), { domain: 'drop.exfil.example', ip: '198.51.100.20', port: 443 }));
    evs.push(call(T, 'api', run, ts + 1, proc('curl'), { domain: 'api.example.com', ip: '198.51.100.1', port: 443 }));
  }
  return evs;
}

storeTest('a configured risky destination is remembered by the store: its rule suppressions come back new once, and a command without the config refuses to hide it', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, calls());
    // a rule made before anyone configured the destination hides all of curl's calls
    const before = await new RulesService(store).create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    assert.equal(before.suppressed, 6);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '3x1', 'drop.exfil.example': '3x1' });
    const v0 = Number(await at.value("SELECT value FROM meta WHERE key = 'rules_version'"));

    // the first command with the config: remembered (normalised), and the hidden calls are new again
    const first = await rememberRiskyDestinations(store, [' *.Exfil.example ']);
    assert.deepEqual(first, { list: ['*.exfil.example'], added: ['*.exfil.example'], released: 3, unremembered: [], rejudged: 0 });
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '3x1', 'drop.exfil.example': '3x0' });
    assert.equal(await rollupMismatchesOf(at), 0);
    // ingest processes are told to rebuild their suppressor
    assert.equal(Number(await at.value("SELECT value FROM meta WHERE key = 'rules_version'")), v0 + 1);

    // once remembered, nothing more: the same config again, or none at all
    assert.deepEqual(await rememberRiskyDestinations(store, ['*.exfil.example']), { list: ['*.exfil.example'], added: [], released: 0, unremembered: [], rejudged: 0 });
    const without = await rememberRiskyDestinations(store);
    assert.deepEqual(without, { list: ['*.exfil.example'], added: [], released: 0, unremembered: [], rejudged: 0 });
    assert.equal(Number(await at.value("SELECT value FROM meta WHERE key = 'rules_version'")), v0 + 1);

    // a service judging by the remembered list (no config of its own) refuses rules that would hide it
    const svc = new RulesService(store, { extraRiskyDestinations: without.list });
    for (const conditions of [{ process: 'curl' }, { host: 'drop.exfil.example' }]) {
      await assert.rejects(svc.create(T, { detection_id: NOC, conditions }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'refused_risky');
    }
    // and a restore re-applies the older rule without hiding them again
    const restored = await svc.delete(T, before.rule.rule_id, { restore: true }, 't');
    assert.equal(restored.restored, 3);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '3x0', 'drop.exfil.example': '3x0' });

    // a later config adds to the list; it never drops an entry
    assert.deepEqual((await rememberRiskyDestinations(store, ['203.0.113.0/24'])).list, ['*.exfil.example', '203.0.113.0/24']);
    assert.deepEqual((await rememberRiskyDestinations(store, [])).list, ['*.exfil.example', '203.0.113.0/24']);
  } finally {
    await store.close();
  }
});

storeTest('every change to the risky list has its audit row, written in the change\'s own transaction: who, what, when; a forget that changes nothing writes none', async (at) => {
  const store = await at.open();
  try {
    const riskyAudit = () => store.rulesPort(riskyDestinations()).riskyAudit();
    const t1 = new Date('2026-12-05T10:00:00.000Z');
    await rememberRiskyDestinations(store, ['*.exfil.example', '203.0.113.0/24'], 'cli:ana with config /srv/egress-triage.yaml', t1);
    // already remembered: no second row
    await rememberRiskyDestinations(store, ['*.exfil.example'], 'cli:bob', new Date('2026-12-05T10:30:00.000Z'));
    await forgetRiskyDestination(store, ' 203.0.113.0/24 ', ' cli:carol ', new Date('2026-12-05T11:00:00.000Z'));
    await assert.rejects(forgetRiskyDestination(store, '203.0.113.0/24', 'cli:carol'), (e: unknown) => e instanceof ForgetRiskyError && e.reason === 'not-remembered');
    await assert.rejects(forgetRiskyDestination(store, 'webhook.site', 'cli:carol'), (e: unknown) => e instanceof ForgetRiskyError && e.reason === 'built-in');
    // an actor that cannot be shown as it is refused before anything is written
    await assert.rejects(forgetRiskyDestination(store, '*.exfil.example', '  '), (e: unknown) => e instanceof RuleError && e.code === 'invalid_input');
    await assert.rejects(forgetRiskyDestination(store, '*.exfil.example', 'cli:x\u202e'), (e: unknown) => e instanceof RuleError && e.code === 'invalid_input');
    assert.deepEqual(await riskyAudit(), [
      { entry: '203.0.113.0/24', action: 'forget', actor: 'cli:carol', at: '2026-12-05T11:00:00.000Z' },
      { entry: '203.0.113.0/24', action: 'remember', actor: 'cli:ana with config /srv/egress-triage.yaml', at: '2026-12-05T10:00:00.000Z' },
      { entry: '*.exfil.example', action: 'remember', actor: 'cli:ana with config /srv/egress-triage.yaml', at: '2026-12-05T10:00:00.000Z' },
    ]);

    // no change without its row: when the row cannot be written, the entry stays remembered
    await at.rows('DROP TABLE risky_audit');
    await assert.rejects(forgetRiskyDestination(store, '*.exfil.example', 'cli:dave'));
    assert.deepEqual(await store.rulesPort(riskyDestinations()).riskyEntries(), ['*.exfil.example']);
    // nor an entry remembered without its row
    await assert.rejects(rememberRiskyDestinations(store, ['drop.example'], 'cli:dave'));
    assert.deepEqual(await store.rulesPort(riskyDestinations()).riskyEntries(), ['*.exfil.example']);
  } finally {
    await store.close();
  }
});

test('CLI: a rule created in a directory without the config is refused when the store remembers the destination the config named', () => {
  const t = tempDir();
  try {
    const withConfig = join(t.dir, 'repo');
    const elsewhere = join(t.dir, 'elsewhere');
    mkdirSync(withConfig);
    mkdirSync(elsewhere);
    writeFileSync(join(withConfig, 'egress-triage.yaml'), 'risky_destinations: ["*.exfil.example"]\n');
    const file = join(withConfig, 'calls.ndjson');
    writeFileSync(file, calls().map(nativeLine).join('\n') + '\n');
    const db = join(t.dir, 'store.db');

    const ingest = runCli(['ingest', file, '--db', db, '--tenant', T, '--learning-runs', '0'], { cwd: withConfig });
    assert.equal(ingest.status, 0, ingest.stderr);
    assert.match(ingest.stderr, /the store now remembers the risky destination\(s\) \*\.exfil\.example for every command/);

    const create = runCli(['rules', 'create', '--db', db, '--tenant', T, '--yes', '--condition', 'process=curl'], { cwd: elsewhere });
    assert.equal(create.status, EXIT.REFUSED, create.stderr);
    assert.match(create.stderr, /rule refused: the rule would also suppress 3 detection\(s\) to risky destinations \(drop\.exfil\.example:443\)/);
    assert.doesNotMatch(create.stderr, /now remembers/);
    const list = runCli(['detections', 'list', '--db', db, '--tenant', T, '--status', 'suppressed', '--json'], { cwd: elsewhere });
    assert.equal(list.status, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as { detections: unknown[] }).detections.length, 0);
  } finally {
    t.cleanup();
  }
});

storeTest('an ingest already running judges by an entry another command makes the store remember, from its next write on', async (at) => {
  const store = await at.open();
  try {
    const file = (from: number, to: number) => {
      const f = join(at.dir, `run-${from}.ndjson`);
      writeFileSync(f, calls().filter((e) => Number(e.ctx.runId) >= from && Number(e.ctx.runId) <= to).map(nativeLine).join('\n') + '\n');
      return f;
    };
    await new RulesService(store).create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    // one pipeline, as one `ingest` of several files, with no risky_destinations of its own
    const pipeline = new IngestPipeline(store, { tenant: T, format: 'native', strict: false, defaults: {}, ...riskyRefreshing({ ...DEFAULT_ENGINE_CONFIG, learningRuns: 0 }, []) });
    await pipeline.ingest(file(1, 1));
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '1x1', 'drop.exfil.example': '1x1' });
    // meanwhile another command's config names the destination
    assert.equal((await rememberRiskyDestinations(store, ['*.exfil.example'])).released, 1);
    await pipeline.ingest(file(2, 3));
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '3x1', 'drop.exfil.example': '3x0' });
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('a newly remembered entry also releases what an imported export had suppressed or resolved upstream', async (at) => {
  const store = await at.open();
  try {
    const record = (id: string, endpoint: string, over: Record<string, unknown>) => ({
      id, detection_id: NOC, owner: 'acme', repo: 'web', run_id: 7, run_attempt: 1, job: 'build', job_id: 70,
      workflow_path: '.github/workflows/build.yml', timestamp: '2026-11-02T10:00:00Z', tool: { name: 'curl', sha256: 'a'.repeat(64), parent: 'bash' },
      endpoint, direct_ip_address: '', expected_outbound_connections: [], is_resolved: false, is_suppressed: false, suppress_rule_id: '', ...over,
    });
    const f = join(at.dir, 'export.json');
    writeFileSync(f, JSON.stringify({ data: { detections: [
      record('x1', 'drop.exfil.example:443', { is_suppressed: true, suppress_rule_id: 'upstream-rule' }),
      record('x2', 'up.exfil.example:443', { is_resolved: true }),
      record('x3', 'api.example.com:443', { is_suppressed: true, suppress_rule_id: 'upstream-rule' }),
    ] } }));
    await new IngestPipeline(store, { tenant: T, format: 'stepsecurity', strict: true, defaults: {}, ...riskyRefreshing(DEFAULT_ENGINE_CONFIG, []) }).ingest(f);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '1x1', 'drop.exfil.example': '1x1', 'up.exfil.example': '1x2' });
    assert.deepEqual((await rememberRiskyDestinations(store, ['*.exfil.example'])).released, 2);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '1x1', 'drop.exfil.example': '1x0', 'up.exfil.example': '1x0' });
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

test('a store that cannot be written judges by the configured entries all the same, and says it could not remember them', async () => {
  const readOnly = Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' });
  const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
  const storeFailing = (err: Error): RulesStore => ({
    // judged by an older verdict, so the command tries to judge it again too (rules/verdict-revision.ts)
    rulesPort: () => ({ riskyEntries: async () => ['webhook.example'], verdictRevision: async () => 0, write: async () => { throw err; } }) as unknown as ReturnType<RulesStore['rulesPort']>,
  });
  assert.deepEqual(await rememberRiskyDestinations(storeFailing(readOnly), ['*.exfil.example']), {
    list: ['webhook.example', '*.exfil.example'], added: [], released: 0, unremembered: ['*.exfil.example'], rejudged: 0,
  });
  // any other failure is the command's failure
  await assert.rejects(rememberRiskyDestinations(storeFailing(busy), ['*.exfil.example']), /database is locked/);
  // but judging the store again by a newer verdict waits for a later command when it is busy, or the role may only read
  const denied = Object.assign(new Error('permission denied for table meta'), { code: '42501' });
  for (const err of [busy, denied]) {
    assert.deepEqual(await rememberRiskyDestinations(storeFailing(err), []), { list: ['webhook.example'], added: [], released: 0, unremembered: [], rejudged: 0 });
  }
});

test('CLI: risky list shows the built-in and remembered entries; risky forget asks for --yes, refuses built-in and unknown entries, and warns when the config brings one back', () => {
  const t = tempDir();
  try {
    const db = join(t.dir, 'store.db');
    const cfg = join(t.dir, 'cfg.yaml');
    writeFileSync(join(t.dir, 'calls.ndjson'), calls().map(nativeLine).join('\n') + '\n');
    assert.equal(runCli(['ingest', join(t.dir, 'calls.ndjson'), '--db', db, '--tenant', T]).status, 0);
    writeFileSync(cfg, 'risky_destinations: ["*.exfil.example", "203.0.113.0/24"]\n');
    const list = (config?: string) => {
      const r = runCli(['risky', 'list', '--db', db, '--json', ...(config ? ['--config', config] : [])]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { built_in: string[]; remembered: string[] };
    };
    const first = list(cfg);
    assert.deepEqual(first.remembered, ['*.exfil.example', '203.0.113.0/24']);
    assert.ok(first.built_in.includes('webhook.site') && first.built_in.includes('gist.githubusercontent.com'));
    // without the config, the store still has them
    assert.deepEqual(list().remembered, ['*.exfil.example', '203.0.113.0/24']);
    const table = runCli(['risky', 'list', '--db', db]);
    assert.match(table.stdout, /^built in \(\d+\): gist\.github\.com, /m);
    assert.match(table.stdout, /^remembered by the store \(2\): \*\.exfil\.example, 203\.0\.113\.0\/24$/m);

    const forget = (entry: string, ...more: string[]) => runCli(['risky', 'forget', entry, '--db', db, ...more]);
    const noYes = forget('203.0.113.0/24');
    assert.equal(noYes.status, EXIT.USAGE);
    assert.match(noYes.stderr, /lets rules of every tenant in this store hide calls to it again: re-run with --yes to confirm \(nothing was changed\)/);
    assert.equal(forget('webhook.site', '--yes').status, EXIT.REFUSED);
    assert.equal(forget('*.WEBHOOK.site', '--yes').status, EXIT.REFUSED);
    const unknown = forget('nothing.example', '--yes');
    assert.equal(unknown.status, EXIT.NOT_FOUND);
    assert.match(unknown.stderr, /the store does not remember nothing\.example/);
    assert.deepEqual(list().remembered, ['*.exfil.example', '203.0.113.0/24']);

    const done = forget(' 203.0.113.0/24 ', '--yes', '--json');
    assert.equal(done.status, 0, done.stderr);
    assert.deepEqual(JSON.parse(done.stdout), { forgotten: '203.0.113.0/24', named_by_config: false });
    assert.deepEqual(list().remembered, ['*.exfil.example']);
    // run with the config that names it: forgotten now, and said to come back with that config
    const back = forget('*.exfil.example', '--yes', '--config', cfg);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(back.stdout, 'forgot *.exfil.example (for every tenant in this store)\n');
    assert.match(back.stderr, /the config this command read names \*\.exfil\.example: the next command run with it remembers it again/);
    // no list change lifts a flag (one may rest on more than the contradiction it records): said
    assert.match(back.stderr, /binaries it showed to be suspected impostors stay flagged, and detections it made new stay new; to judge without them, ingest the telemetry again into a new store/);
    // (that run remembered the config's other entry again first)
    assert.deepEqual(list().remembered, ['203.0.113.0/24']);
    assert.deepEqual(list(cfg).remembered, ['203.0.113.0/24', '*.exfil.example']);

    // every change above is in the risky audit, newest first: the config that brought each entry in
    // (by the full path), the forgets by their actor; the refused and unknown forgets left nothing
    const user = userInfo().username;
    assert.equal(forget('203.0.113.0/24', '--yes', '--actor', ' ').status, EXIT.USAGE);
    const named = forget('203.0.113.0/24', '--yes', '--actor', 'ticket SEC-12 (ana)');
    assert.equal(named.status, 0, named.stderr);
    const audit = runCli(['risky', 'audit', '--db', db, '--json']);
    assert.equal(audit.status, 0, audit.stderr);
    const rows = JSON.parse(audit.stdout) as { entry: string; action: string; actor: string; at: string }[];
    assert.deepEqual(
      rows.map(({ entry, action, actor }) => [action, entry, actor]),
      [
        ['forget', '203.0.113.0/24', 'ticket SEC-12 (ana)'],
        ['remember', '*.exfil.example', `cli:${user} with config ${cfg}`],
        ['forget', '*.exfil.example', `cli:${user}`],
        ['remember', '203.0.113.0/24', `cli:${user} with config ${cfg}`],
        ['forget', '203.0.113.0/24', `cli:${user}`],
        ['remember', '203.0.113.0/24', `cli:${user} with config ${cfg}`],
        ['remember', '*.exfil.example', `cli:${user} with config ${cfg}`],
      ],
    );
    for (const r of rows) assert.ok(!Number.isNaN(Date.parse(r.at)) && r.at.endsWith('Z'), r.at);
    const auditTable = runCli(['risky', 'audit', '--db', db]);
    assert.equal(auditTable.status, 0, auditTable.stderr);
    assert.match(auditTable.stdout, /^at +action +entry +actor\n/);
    assert.match(auditTable.stdout, /\n\S+Z +forget +203\.0\.113\.0\/24 +ticket SEC-12 \(ana\)\n/);
  } finally {
    t.cleanup();
  }
});

test('CLI: a configured entry with a root dot or a port guards its destination; one an earlier version stored in a spelling now refused fails closed and can still be forgotten', async () => {
  const t = tempDir();
  try {
    const db = join(t.dir, 'store.db');
    const evs: NetworkCallEvent[] = [];
    for (let run = 1; run <= 2; run++) {
      const ts = TS0 + run * 3_600_000;
      evs.push(call(T, 'api', run, ts, proc('curl'), { domain: 'exfil.example.net', ip: '198.51.100.7', port: 443 }));
      evs.push(call(T, 'api', run, ts + 1, proc('curl'), { ip: '203.0.113.7', port: 443 }));
      // a benign-looking name at the risky address is reached there all the same
      evs.push(call(T, 'api', run, ts + 2, proc('curl'), { domain: 'cdn.attacker.example', ip: '203.0.113.7', port: 443 }));
    }
    writeFileSync(join(t.dir, 'calls.ndjson'), evs.map(nativeLine).join('\n') + '\n');
    writeFileSync(join(t.dir, 'egress-triage.yaml'), 'risky_destinations: ["exfil.example.net.", "203.0.113.7:443"]\n');
    const inDir = (args: string[]) => runCli(args, { cwd: t.dir });
    assert.equal(inDir(['ingest', 'calls.ndjson', '--db', db, '--tenant', T, '--learning-runs', '0']).status, 0);
    const create = inDir(['rules', 'create', '--db', db, '--tenant', T, '--yes', '--condition', 'process=curl']);
    assert.equal(create.status, EXIT.REFUSED, create.stderr);
    assert.match(create.stderr, /203\.0\.113\.7:443, cdn\.attacker\.example:443 at 203\.0\.113\.7 \(in a risky range\), exfil\.example\.net:443/);
    const expect = inDir(['baseline', 'expect', '--db', db, '--tenant', T, '--owner', 'acme', '--repo', 'api', '--endpoint', 'exfil.example.net:443']);
    assert.equal(expect.status, EXIT.REFUSED, expect.stderr);
    assert.match(expect.stderr, /risky/, 'a remembered risky destination never joins a baseline');

    // A store an earlier version wrote an entry into that this one refuses: every command that
    // judges fails closed and names the way out, which still works.
    const { default: Database } = await import('better-sqlite3');
    const raw = new Database(db);
    raw.prepare('INSERT INTO risky_destinations (entry, added_at) VALUES (?, ?)').run('203.0.113.9.', '2026-11-01T00:00:00.000Z');
    raw.close();
    const stats = runCli(['stats', '--db', db]);
    assert.equal(stats.status, EXIT.REJECTED);
    assert.match(stats.stderr, /^egress-triage: the risky destinations the store remembers: risky_destinations: "203\.0\.113\.9\." is not a host name, IP or CIDR range; remove it with `egress-triage risky forget '203\.0\.113\.9\.' --yes`/m);
    assert.equal(runCli(['risky', 'audit', '--db', db]).status, 0);
    const forget = runCli(['risky', 'forget', '203.0.113.9.', '--db', db, '--yes']);
    assert.equal(forget.status, 0, forget.stderr);
    assert.equal(runCli(['stats', '--db', db]).status, 0);
  } finally {
    t.cleanup();
  }
});
