import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/detection/engine.js';
import { AllowedEndpoints, parseAllowedEndpoints } from '../../src/detection/allowed-endpoints.js';
import { RiskyDestinations } from '../../src/analysis/risky-destinations.js';
import { nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;

async function ingest(store: SqliteStore, events: EventSpec[], cfg: Partial<EngineConfig> = {}) {
  const file = join(tmp.dir, `in${n++}.ndjson`);
  writeFileSync(file, ndjson(events.map(nativeEvent)));
  const p = new IngestPipeline(store, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, ...cfg } });
  return p.ingest(file);
}

function newOutbound(store: SqliteStore, host: string): number {
  return store.db
    .prepare(
      `SELECT count(*) FROM detections d JOIN endpoints e ON e.id = d.endpoint_id JOIN detection_types t ON t.id = d.type_id
       WHERE e.host = ? AND t.name = 'New-Outbound-Network-Call'`,
    )
    .pluck()
    .get(host) as number;
}

function inBaseline(store: SqliteStore, endpoint: string): number {
  return store.db
    .prepare('SELECT count(*) FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.endpoint = ? AND b.in_baseline = 1')
    .pluck()
    .get(endpoint) as number;
}

test('coveredBy: every pattern that could match a risky host names it; patterns that cannot are accepted', () => {
  const r = new RiskyDestinations();
  const covering: [string, string][] = [
    ['webhook.site', 'webhook.site'],
    ['WEBHOOK.SITE.', 'webhook.site'],
    ['x.webhook.site', 'webhook.site'],
    ['*.githubusercontent.com', 'gist.githubusercontent.com'],
    ['*', ''],
    ['*.site', ''],
    ['gist.*', ''],
    ['abc*.webhook.site', 'webhook.site'],
    ['*.webhook.site', 'webhook.site'],
    ['?ebhook.site', 'webhook.site'],
    ['*.com', ''],
    // Harden-Runner's usual example covers gist.github.com, so it is refused too
    ['*.github.com', 'gist.github.com'],
    // an IP-looking glob also matches host names such as 140.82.webhook.site
    ['140.82.*', ''],
  ];
  for (const [p, want] of covering) {
    const got = r.coveredBy(p);
    assert.ok(got, `${p} must be refused`);
    if (want) assert.equal(got, want, p);
  }
  for (const p of ['objects.githubusercontent.com', 'api.github.com', 'registry.npmjs.org', 'github.com', '*.npmjs.org', 'site.example.com', '140.82.112.3', '*.corp.example']) {
    assert.equal(r.coveredBy(p), null, `${p} covers no risky destination`);
  }
  const withCidr = new RiskyDestinations(['45.0.0.0/8']);
  assert.equal(withCidr.coveredBy('45.1.2.3'), '45.0.0.0/8');
  assert.ok(withCidr.coveredBy('45.*'));
});

test('allowed endpoints: a list naming or covering a risky destination is refused with the reason', () => {
  assert.throws(() => parseAllowedEndpoints('github.com:443 webhook.site:443', '--allowed-endpoints'), /--allowed-endpoints: entry "webhook\.site:443" covers the risky destination webhook\.site/);
  assert.throws(() => parseAllowedEndpoints('*.githubusercontent.com'), /"\*\.githubusercontent\.com" covers the risky destination gist\.githubusercontent\.com/);
  assert.throws(() => parseAllowedEndpoints('*:443'), /covers the risky destination/);
  assert.throws(() => parseAllowedEndpoints(['*.site:*']), /covers the risky destination/);
  assert.equal(parseAllowedEndpoints('github.com:443 objects.githubusercontent.com:443 *.npmjs.org').length, 3);
});

test('CLI ingest and config: --allowed-endpoints / allowed_endpoints with a risky pattern exit non-zero and store nothing', () => {
  const db = join(tmp.dir, 'cli-allowed.db');
  const file = join(tmp.dir, 'cli-allowed.ndjson');
  writeFileSync(file, ndjson([nativeEvent({ run: 0, domain: 'webhook.site' })]));
  const r = runCli(['ingest', file, '--db', db, '--allowed-endpoints', 'webhook.site:443 *.githubusercontent.com']);
  assert.equal(r.status, 4, r.stderr); // REFUSED: a safety guard, not a typo
  assert.match(r.stderr, /webhook\.site/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const cfg = join(tmp.dir, 'egress-triage.yaml');
  writeFileSync(cfg, 'learning_runs: 1\nallowed_endpoints: "github.com:443 *.githubusercontent.com"\n');
  const c = runCli(['ingest', file, '--db', db, '--config', cfg]);
  assert.notEqual(c.status, 0);
  assert.match(c.stderr, /egress-triage\.yaml:2: allowed_endpoints: entry "\*\.githubusercontent\.com" covers the risky destination gist\.githubusercontent\.com/);
});

test('a risky destination raises a detection even when a store, an allowed list or a learning run would let it in', async () => {
  const store = SqliteStore.open(join(tmp.dir, 'defence.db'));
  // learning run: calls to webhook.site are flagged although nothing else is
  await ingest(store, [{ run: 0, domain: 'github.com' }, { run: 0, domain: 'webhook.site' }], { learningRuns: 2 });
  assert.equal(newOutbound(store, 'github.com'), 0);
  assert.equal(newOutbound(store, 'webhook.site'), 1);
  // a store written before the check: webhook.site expected in the job's baseline
  const job = store.db.prepare('SELECT id FROM jobs').pluck().get() as number;
  const ep = store.db.prepare("INSERT INTO endpoints (endpoint, host, port, is_ip) VALUES ('gist.githubusercontent.com:443', 'gist.githubusercontent.com', 443, 0) RETURNING id").pluck().get() as number;
  store.db.prepare("INSERT INTO baseline VALUES (?, ?, 0, 0, 0, 1, 'expected')").run(job, ep);
  // an allowed list built without the parser's check
  const allowed = new AllowedEndpoints([{ raw: '*', host: () => true, port: '*' }]);
  await ingest(
    store,
    [{ run: 1, domain: 'github.com' }, { run: 2, domain: 'github.com' }, { run: 3, domain: 'gist.githubusercontent.com' }, { run: 3, domain: 'webhook.site' }, { run: 3, domain: 'new.example.com' }],
    { learningRuns: 2, allowed },
  );
  assert.equal(newOutbound(store, 'gist.githubusercontent.com'), 1);
  assert.equal(newOutbound(store, 'webhook.site'), 2);
  assert.equal(newOutbound(store, 'new.example.com'), 0, 'the allow-all list still allows ordinary hosts');
  assert.equal(inBaseline(store, 'webhook.site:443'), 0, 'learning never adds a risky destination');
  store.close();
});

test('CLI baseline expect refuses risky endpoints and changes nothing; unexpect removes an expected endpoint', async () => {
  const db = join(tmp.dir, 'expect.db');
  const store = SqliteStore.open(db);
  const runs: EventSpec[] = [];
  for (let r = 0; r < 3; r++) runs.push({ run: r, domain: 'github.com' });
  await ingest(store, runs, { learningRuns: 2 });
  store.close();
  const base = ['--db', db, '--owner', 'acme', '--repo', 'api'];
  for (const ep of ['webhook.site:443', 'gist.githubusercontent.com:443', 'a.b.webhook.site:8443']) {
    const r = runCli(['baseline', 'expect', ...base, '--endpoint', ep]);
    assert.equal(r.status, 4, `${ep}: ${r.stderr}`);
    assert.match(r.stderr, /risky destination (webhook\.site|gist\.githubusercontent\.com)/);
  }
  const s1 = SqliteStore.open(db);
  assert.equal(s1.db.prepare("SELECT count(*) FROM baseline WHERE source = 'expected'").pluck().get(), 0);
  s1.close();

  assert.equal(runCli(['baseline', 'expect', ...base, '--endpoint', 'api.example.com:443']).status, 0);
  const again = SqliteStore.open(db);
  assert.equal(inBaseline(again, 'api.example.com:443'), 1);
  again.close();
  const u = runCli(['baseline', 'unexpect', ...base, '--endpoint', 'api.example.com:443', '--json']);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(JSON.parse(u.stdout).jobs.length, 1);
  const s2 = SqliteStore.open(db);
  assert.equal(inBaseline(s2, 'api.example.com:443'), 0);
  // the endpoint is flagged again on the next run
  await ingest(s2, [{ run: 3, domain: 'api.example.com' }], { learningRuns: 2 });
  assert.equal(newOutbound(s2, 'api.example.com'), 1);
  s2.close();
  const none = runCli(['baseline', 'unexpect', ...base, '--endpoint', 'api.example.com:443']);
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /is not expected in any job/);
});
