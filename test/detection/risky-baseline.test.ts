import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/detection/engine.js';
import { AllowedEndpoints, parseAllowedEndpoints } from '../../src/detection/allowed-endpoints.js';
import { RiskyDestinations } from '../../src/analysis/risky-destinations.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { cliResult, nativeEvent, ndjson, type EventSpec } from '../helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();
let n = 0;

async function ingest(at: StoreUnderTest, store: OpenStore, events: EventSpec[], cfg: Partial<EngineConfig> = {}) {
  const file = join(at.dir, `in${n++}.ndjson`);
  writeFileSync(file, ndjson(events.map(nativeEvent)));
  const p = new IngestPipeline(store, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, ...cfg } });
  return p.ingest(file);
}

/** `?` on SQLite, `$1` on PostgreSQL */
const param = (at: StoreUnderTest) => (at.backend === 'sqlite' ? '?' : '$1');

async function newOutbound(at: StoreUnderTest, host: string): Promise<number> {
  const [r] = await at.rows<{ n: number }>(
    `SELECT count(*) AS n FROM detections d JOIN endpoints e ON e.id = d.endpoint_id JOIN detection_types t ON t.id = d.type_id
     WHERE e.host = ${param(at)} AND t.name = 'New-Outbound-Network-Call'`,
    [host],
  );
  return Number(r!.n);
}

async function inBaseline(at: StoreUnderTest, endpoint: string): Promise<number> {
  const [r] = await at.rows<{ n: number }>(
    `SELECT count(*) AS n FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.endpoint = ${param(at)} AND CAST(b.in_baseline AS integer) = 1`,
    [endpoint],
  );
  return Number(r!.n);
}

/** A store written before the check: `endpoint` expected in the baseline of the (only) job. */
async function plantExpected(at: StoreUnderTest, endpoint: string, host: string): Promise<void> {
  if (at.backend === 'sqlite') {
    const [job] = await at.rows<{ id: number }>('SELECT id FROM jobs');
    const [ep] = await at.rows<{ id: number }>('INSERT INTO endpoints (endpoint, host, port, is_ip) VALUES (?, ?, 443, 0) RETURNING id', [endpoint, host]);
    await at.rows("INSERT INTO baseline VALUES (?, ?, 0, 0, 0, 1, 'expected')", [job!.id, ep!.id]);
    return;
  }
  await at.rows(
    `WITH ep AS (INSERT INTO endpoints (tenant_id, endpoint, host, port, is_ip) SELECT tenant_id, $1, $2, 443, false FROM jobs RETURNING tenant_id, id)
     INSERT INTO baseline (tenant_id, job_ref, endpoint_id, runs_seen, first_ts, last_ts, in_baseline, source)
     SELECT j.tenant_id, j.id, ep.id, 0, 0, 0, true, 'expected' FROM jobs j JOIN ep ON ep.tenant_id = j.tenant_id`,
    [endpoint, host],
  );
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
    // fixed-length patterns: each `?` one character, so no sample fill hits the subdomain they match
    ['???????????.site', 'webhook.site'],
    ['a??????????.site', 'webhook.site'],
    ['??????.oastify.c?m', 'oastify.com'],
    ['*?.webhook.site', 'webhook.site'],
    ['*.com', ''],
    // Harden-Runner's usual example covers gist.github.com, so it is refused too
    ['*.github.com', 'gist.github.com'],
    // named by the entry they reach, not by a filled candidate under another entry (discordgist.github.com)
    ['discord*', 'discord.com'],
    ['requestbin.ne*', 'requestbin.net'],
    // an IP-looking glob also matches host names such as 140.82.webhook.site
    ['140.82.*', ''],
  ];
  for (const [p, want] of covering) {
    const got = r.coveredBy(p);
    assert.ok(got, `${p} must be refused`);
    if (want) assert.equal(got, want, p);
  }
  for (const p of ['objects.githubusercontent.com', 'api.github.com', 'registry.npmjs.org', 'github.com', '*.npmjs.org', 'site.example.com', '140.82.112.3', '*.corp.example', '??????????.sitex', 'a???.example.com', '???.sit?.example']) {
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

storeTest('CLI ingest and config: --allowed-endpoints / allowed_endpoints with a risky pattern exit non-zero and store nothing', async (at) => {
  const db = at.db;
  const file = join(at.dir, 'cli-allowed.ndjson');
  writeFileSync(file, ndjson([nativeEvent({ run: 0, domain: 'webhook.site' })]));
  const r = await cliResult(['ingest', file, '--db', db, '--allowed-endpoints', 'webhook.site:443 *.githubusercontent.com']);
  assert.equal(r.status, 4, r.stderr); // REFUSED: a safety guard, not a typo
  assert.match(r.stderr, /webhook\.site/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const cfg = join(at.dir, 'egress-triage.yaml');
  writeFileSync(cfg, 'learning_runs: 1\nallowed_endpoints: "github.com:443 *.githubusercontent.com"\n');
  const c = await cliResult(['ingest', file, '--db', db, '--config', cfg]);
  assert.equal(c.status, 4, 'the same refusal, and the same exit code, as by flag');
  assert.match(c.stderr, /egress-triage\.yaml:2: allowed_endpoints: entry "\*\.githubusercontent\.com" covers the risky destination gist\.githubusercontent\.com/);
});

storeTest('a risky destination raises a detection even when a store, an allowed list or a learning run would let it in', async (at) => {
  const store = await at.open();
  // learning run: calls to webhook.site are flagged although nothing else is
  await ingest(at, store, [{ run: 0, domain: 'github.com' }, { run: 0, domain: 'webhook.site' }], { learningRuns: 2 });
  assert.equal(await newOutbound(at, 'github.com'), 0);
  assert.equal(await newOutbound(at, 'webhook.site'), 1);
  // a store written before the check: webhook.site expected in the job's baseline
  await plantExpected(at, 'gist.githubusercontent.com:443', 'gist.githubusercontent.com');
  // an allowed list built without the parser's check
  const allowed = new AllowedEndpoints([{ raw: '*', host: () => true, port: '*' }]);
  await ingest(
    at,
    store,
    [{ run: 1, domain: 'github.com' }, { run: 2, domain: 'github.com' }, { run: 3, domain: 'gist.githubusercontent.com' }, { run: 3, domain: 'webhook.site' }, { run: 3, domain: 'new.example.com' }],
    { learningRuns: 2, allowed },
  );
  assert.equal(await newOutbound(at, 'gist.githubusercontent.com'), 1);
  assert.equal(await newOutbound(at, 'webhook.site'), 2);
  assert.equal(await newOutbound(at, 'new.example.com'), 0, 'the allow-all list still allows ordinary hosts');
  assert.equal(await inBaseline(at, 'webhook.site:443'), 0, 'learning never adds a risky destination');
  await store.close();
});

storeTest('CLI baseline expect refuses risky endpoints and changes nothing; unexpect removes an expected endpoint', async (at) => {
  const db = at.db;
  const store = await at.open();
  const runs: EventSpec[] = [];
  for (let r = 0; r < 3; r++) runs.push({ run: r, domain: 'github.com' });
  await ingest(at, store, runs, { learningRuns: 2 });
  await store.close();
  const base = ['--db', db, '--owner', 'acme', '--repo', 'api'];
  for (const ep of ['webhook.site:443', 'gist.githubusercontent.com:443', 'a.b.webhook.site:8443']) {
    const r = await cliResult(['baseline', 'expect', ...base, '--endpoint', ep]);
    assert.equal(r.status, 4, `${ep}: ${r.stderr}`);
    assert.match(r.stderr, /risky destination (webhook\.site|gist\.githubusercontent\.com)/);
  }
  assert.deepEqual(await at.rows("SELECT source FROM baseline WHERE source = 'expected'"), []);

  assert.equal((await cliResult(['baseline', 'expect', ...base, '--endpoint', 'api.example.com:443'])).status, 0);
  assert.equal(await inBaseline(at, 'api.example.com:443'), 1);
  const u = await cliResult(['baseline', 'unexpect', ...base, '--endpoint', 'api.example.com:443', '--json']);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(JSON.parse(u.stdout).jobs.length, 1);
  assert.equal(await inBaseline(at, 'api.example.com:443'), 0);
  // the endpoint is flagged again on the next run
  const s2 = await at.open();
  await ingest(at, s2, [{ run: 3, domain: 'api.example.com' }], { learningRuns: 2 });
  assert.equal(await newOutbound(at, 'api.example.com'), 1);
  await s2.close();
  const none = await cliResult(['baseline', 'unexpect', ...base, '--endpoint', 'api.example.com:443']);
  assert.notEqual(none.status, 0);
  assert.match(none.stderr, /is not expected in any job/);
});
