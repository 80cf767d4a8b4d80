import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EcsAdapter } from '../../src/ingest/adapters/ecs.js';
import { HardenRunnerAdapter } from '../../src/ingest/adapters/harden-runner.js';
import { NativeAdapter } from '../../src/ingest/adapters/native.js';
import { RecordError, type AdapterOutput, type RecordContext } from '../../src/ingest/adapters/types.js';
import { runCli, tempDir } from '../helpers.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';

/**
 * A call whose destination name is no valid DNS name, beside a valid address: kept as a direct-IP
 * call to the address and noted `domain-unusable`, in every format. Refusing the record dropped the
 * call, so a process could keep its call out of every detection by asking for an odd name (a
 * resolver passes any bytes). Without an address the record is still refused; a Harden-Runner
 * DNSRecord with such a name names nothing and is skipped as `dns-unusable`.
 */

const tmp = tempDir();
after(() => tmp.cleanup());

const CTX = { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', runId: '7', runAttempt: 1 };
const UNUSABLE = ['exfil data.evil.example', `${'a'.repeat(64)}.evil.example`, 'wé bhook.example', 'evil.example/x', 'bad..example', 'evil%2', 'evil%00.example'];

function rc(): RecordContext {
  return { source: 'odd.ndjson', line: 1, tenant: 'default', defaults: CTX, notes: {} };
}

const formats: Record<string, (domain: string, ip: string | undefined, ctx: RecordContext) => AdapterOutput> = {
  native: (domain, ip, ctx) =>
    new NativeAdapter().parse({ ...CTX, run_id: '7', timestamp: '2026-11-02T10:00:00Z', domain, ...(ip ? { ip } : {}), port: 443, process: { name: 'curl' } }, ctx),
  'harden-runner': (domain, ip, ctx) =>
    new HardenRunnerAdapter().parse({ domainName: domain, ...(ip ? { ipAddress: ip } : {}), port: '443', timestamp: '2026-11-02T10:00:00Z', tool: { name: 'curl', sha256: '' }, status: 'Allowed' }, ctx),
  ecs: (domain, ip, ctx) =>
    new EcsAdapter().parse(
      { '@timestamp': '2026-11-02T10:00:00Z', event: { category: ['network'], type: ['connection', 'start'] }, network: { direction: 'egress' }, destination: { domain, ...(ip ? { ip } : {}), port: 443 }, process: { name: 'curl' } },
      ctx,
    ),
};

for (const [format, parse] of Object.entries(formats)) {
  test(`${format}: an unusable destination name beside a valid address is a direct-IP call to the address, noted; without one it is refused`, () => {
    for (const domain of UNUSABLE) {
      const ctx = rc();
      const out = parse(domain, '203.0.113.9', ctx);
      assert.equal(out.kind, 'call', `${domain}: ${JSON.stringify(out)}`);
      const ev = (out as Extract<AdapterOutput, { kind: 'call' }>).event;
      assert.equal(ev.domain, undefined, domain);
      assert.equal(ev.ip, '203.0.113.9');
      assert.deepEqual(ctx.notes, { 'domain-unusable': 1 }, domain);
      assert.throws(() => parse(domain, undefined, rc()), (e: unknown) => e instanceof RecordError && e.reason === 'invalid-value' && /not a valid domain name/.test(e.message), domain);
    }
    // a valid name is untouched, and notes nothing
    const ctx = rc();
    const ok = parse('api.example.com', '203.0.113.9', ctx) as Extract<AdapterOutput, { kind: 'call' }>;
    assert.equal(ok.event.domain, 'api.example.com');
    assert.deepEqual(ctx.notes, {});
  });
}

const RISKY_UNUSABLE = [
  'x!y.webhook.site', 'webhook.site\u0000', 'exfil data.webhook.site', 'webhook.site/x', 'webhook.site:443', 'https://webhook.site/token',
  // fullwidth, beside a character no host holds (alone, it is a host: URL_SPELLINGS)
  '\uff57\uff45\uff42\uff48\uff4f\uff4f\uff4b\uff0e\uff53\uff49\uff54\uff45/',
  // what URL parsers fold in a host, inside text that is no host
  'https://webhook\u3002site/x', 'x!y.web\u00adhook.site', 'webhook%2esite/x', 'x!y.webhook\uff61site', 'https://web\u200bhook.site/',
  // escapes of a full stop outside ASCII, and ignorable code points outside the BMP (found by the diff review)
  'webhook%e3%80%82site/x', 'webhook%EF%BC%8Esite/x', 'web\u{E0100}hook.site/x', 'web\u{1BCA0}hook.site/x',
  // the first time it appears inside another name, then on its own
  'xwebhook.site x.webhook.site',
  // padding before or after, of any length, hides nothing
  `${'a'.repeat(1100)}.webhook.site`, `${'a.'.repeat(200)}x!y.webhook.site`, `webhook.site/${'x'.repeat(100_000)}`, `${'\u3382'.repeat(64)}.webhook.site`,
];

for (const [format, parse] of Object.entries(formats)) {
  test(`${format}: an unusable destination name that holds a risky one is a call to the risky destination, with or without an address`, () => {
    for (const domain of RISKY_UNUSABLE) {
      for (const ip of ['203.0.113.9', undefined]) {
        const ctx = rc();
        const out = parse(domain, ip, ctx);
        assert.equal(out.kind, 'call', `${JSON.stringify(domain)}: ${JSON.stringify(out)}`);
        const ev = (out as Extract<AdapterOutput, { kind: 'call' }>).event;
        assert.equal(ev.domain, 'webhook.site', JSON.stringify(domain));
        assert.equal(ev.ip, ip);
        assert.deepEqual(ctx.notes, { 'domain-unusable': 1 }, JSON.stringify(domain));
      }
    }
  });
}

test('an unusable lookup name that holds a risky one is a risky lookup, and names its answer: Harden-Runner DNSRecord, ECS DNS event', () => {
  const hr = rc();
  const out = new HardenRunnerAdapter().parse({ domainName: 'ZXhmaWw!.abc123.oastify.com', ipAddress: '203.0.113.9', timestamp: '2026-11-02T10:00:00Z' }, hr);
  assert.equal(out.kind, 'call');
  const call = out as Extract<AdapterOutput, { kind: 'call' }>;
  assert.deepEqual([call.event.domain, call.event.port, call.event.process.name], ['oastify.com', 53, 'Unknown']);
  assert.deepEqual(call.names?.ips, ['203.0.113.9']);
  assert.equal(call.names?.domain, 'oastify.com');
  assert.deepEqual(hr.notes, { 'domain-unusable': 1, 'risky-lookup': 1 });

  const ecs = rc();
  // Sysmon event 22, its shape as in test/ingest/risky-lookups.test.ts
  const doc = {
    '@timestamp': '2026-11-02T10:00:00Z', labels: { github_repository: 'acme/api', github_workflow: 'ci.yml', github_job: 'build', github_run_id: '7' },
    event: { code: '22', provider: 'Microsoft-Windows-Sysmon', category: ['network'] },
    dns: { question: { name: 'ZXhmaWw!.abc123.oastify.com' }, resolved_ip: ['203.0.113.9'] }, process: { pid: 7, name: 'curl' },
  };
  const e = new EcsAdapter().parse(doc, ecs);
  assert.equal(e.kind, 'call', JSON.stringify(e));
  const ec = e as Extract<AdapterOutput, { kind: 'call' }>;
  assert.deepEqual([ec.event.domain, ec.event.port, ec.event.process.name], ['oastify.com', 53, 'curl']);
  assert.equal(ec.names?.domain, 'oastify.com');
  assert.equal(ecs.notes['risky-lookup'], 1);
});

/**
 * Names as URL parsers read a host (WHATWG, UTS #46), which is how the client that made the call
 * resolved them: an ideographic full stop is a dot, a soft hyphen or zero-width space is nothing, a
 * percent-escape is its character, and a name outside ASCII is its punycode form. Read as written,
 * these were unusable, and a call to webhook.site was stored as a call to its address alone.
 */
const URL_SPELLINGS: [string, string][] = [
  ['webhook\u3002site', 'webhook.site'], ['webhook\uff61site', 'webhook.site'], ['web\u00adhook.site', 'webhook.site'],
  ['webhook%2esite', 'webhook.site'], ['%77ebhook.site', 'webhook.site'], ['web\u200bhook.site', 'webhook.site'],
  ['\uff37\uff25\uff22\uff28\uff2f\uff2f\uff2b\uff0esite', 'webhook.site'], ['gist\u3002githubusercontent.com', 'gist.githubusercontent.com'],
  ['m\u00fcnchen.example', 'xn--mnchen-3ya.example'], ['w\u00e9bhook.example', 'xn--wbhook-bva.example'],
];

for (const [format, parse] of Object.entries(formats)) {
  test(`${format}: a destination name is read as URL parsers read a host: IDNA's dots and invisible characters, percent-escapes, punycode`, () => {
    for (const [written, read] of URL_SPELLINGS) {
      for (const ip of ['46.4.105.116', undefined]) {
        const ctx = rc();
        const out = parse(written, ip, ctx);
        assert.equal(out.kind, 'call', `${JSON.stringify(written)}: ${JSON.stringify(out)}`);
        assert.equal((out as Extract<AdapterOutput, { kind: 'call' }>).event.domain, read, JSON.stringify(written));
        assert.deepEqual(ctx.notes, {}, JSON.stringify(written));
      }
    }
  });
}

test('a risky destination configured by its Unicode name or its punycode is the same one, however the call spells it', () => {
  for (const entry of ['m\u00fcnchen.example', 'xn--mnchen-3ya.example']) {
    const ctx = { ...rc(), risky: riskyDestinations([entry]) };
    for (const written of ['m\u00fcnchen.example', 'xn--mnchen-3ya.example', 'M\u00dcNCHEN.example']) {
      const out = formats.native!(written, '203.0.113.9', ctx) as Extract<AdapterOutput, { kind: 'call' }>;
      assert.equal(out.event.domain, 'xn--mnchen-3ya.example', `${entry} / ${written}`);
      assert.equal(ctx.risky.matchHost(out.event.domain), 'xn--mnchen-3ya.example', `${entry} / ${written}`);
    }
  }
});

test('a risky name inside another name is no risky name: notwebhook.site, webhook.sites', () => {
  for (const domain of ['x!notwebhook.site', 'webhook.sites/x', 'x!webhook.site-x']) {
    const ctx = rc();
    const out = formats.native!(domain, '203.0.113.9', ctx) as Extract<AdapterOutput, { kind: 'call' }>;
    assert.deepEqual([out.event.domain, out.event.ip], [undefined, '203.0.113.9'], domain);
  }
});

test('an unusable name holding an address in a configured risky range is no risky name: the address is judged as an address', () => {
  const ranged = { ...rc(), risky: riskyDestinations(['203.0.113.0/24']) };
  assert.throws(() => formats.native!('203.0.113.7/x', undefined, ranged), RecordError, 'no name and no address: refused as before');
  const ctx = { ...rc(), risky: riskyDestinations(['203.0.113.0/24']) };
  const out = formats.native!('203.0.113.7/x', '203.0.113.7', ctx) as Extract<AdapterOutput, { kind: 'call' }>;
  assert.deepEqual([out.event.domain, out.event.ip], [undefined, '203.0.113.7']);
});

test('harden-runner: a DNSRecord whose name is unusable names no address: skipped, noted', () => {
  const ctx = rc();
  const out = new HardenRunnerAdapter().parse({ domainName: 'exfil data.evil.example', ipAddress: '203.0.113.9', timestamp: '2026-11-02T10:00:00Z' }, ctx);
  assert.equal(out.kind, 'skip');
  assert.deepEqual(ctx.notes, { 'dns-unusable': 1 });
});

test('the built CLI raises the call of an unusable name at its address once the job has learned, and one holding a risky name at once, and says so in the summary', () => {
  const lines: string[] = [];
  // five learning runs of the job call the registry; the sixth also asks for an odd name
  for (let run = 1; run <= 6; run++) {
    const at = `2026-11-0${run}T10:00:00Z`;
    const base = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: String(run), run_attempt: 1, timestamp: at, port: 443, process: { name: 'curl' } };
    lines.push(JSON.stringify({ ...base, domain: 'registry.npmjs.org' }));
    if (run === 6) lines.push(JSON.stringify({ ...base, domain: 'exfil data.evil.example', ip: '203.0.113.9' }));
    // a risky name in an unusable one, while the job still learns: raised at once
    if (run === 1) lines.push(JSON.stringify({ ...base, domain: 'x!y.webhook.site' }));
  }
  const file = tmp.file('odd-name.ndjson', lines.join('\n') + '\n');
  const db = join(tmp.dir, 'odd.db');
  const ingest = runCli(['ingest', file, '--db', db, '--json']);
  assert.equal(ingest.status, 0, ingest.stderr);
  const source = (JSON.parse(ingest.stdout) as { sources: { accepted: number; rejected: number; notes: Record<string, number> }[] }).sources[0]!;
  assert.equal(source.accepted, 8);
  assert.equal(source.rejected, 0);
  assert.deepEqual(source.notes, { 'domain-unusable': 2 });
  const list = runCli(['detections', 'list', '--db', db, '--json']);
  assert.equal(list.status, 0, list.stderr);
  const found = (JSON.parse(list.stdout) as { detections: { endpoint: string; is_direct_ip: boolean; tool: { name: string } }[] }).detections;
  assert.deepEqual(found.map((d) => [d.tool.name, d.endpoint]).sort(), [['curl', '203.0.113.9:443'], ['curl', 'webhook.site:443']]);
});
