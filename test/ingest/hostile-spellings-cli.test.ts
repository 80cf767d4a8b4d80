import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';

/**
 * The attacker's spellings of this session's fixes, through the built CLI into each store, asserting
 * what was stored: a risky name written as URL parsers still read it, a risky name asked of a resolver,
 * and a binary whose name ends in a path separator. Each was stored so that a rule on an address, a
 * resolver or the Unknown tool could hide it (the adapter-level tests hold the same per format).
 */

const { storeTest } = eachStore();

interface Listed {
  endpoint: string;
  status: string;
  tool: { normalized_name: string };
}

async function stored(db: string): Promise<string[]> {
  const l = await cliResult(['detections', 'list', '--db', db, '--json', '--limit', '100']);
  assert.equal(l.status, 0, l.stderr);
  return (JSON.parse(l.stdout) as { detections: Listed[] }).detections.map((d) => `${d.tool.normalized_name} ${d.endpoint} ${d.status}`).sort();
}

storeTest('hostile spellings reach the store as the calls they are: webhook.site in URL-parser forms, a risky lookup sent to a resolver, a name ending in a separator', async (at) => {
  const ctx = { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_attempt: 1 };
  const native = join(at.dir, 'spellings.ndjson');
  writeFileSync(native, ['webhook\u3002site', 'web\u00adhook.site', 'webhook%2esite', 'x!y.webhook%e3%80%82site/x'].map((domain, i) =>
    JSON.stringify({ ...ctx, run_id: String(100 + i), timestamp: `2026-11-02T10:0${i}:00Z`, domain, ip: '46.4.105.116', port: 443, process: { name: 'curl' } }),
  ).join('\n') + '\n');
  const ecs = join(at.dir, 'dns.ndjson');
  writeFileSync(ecs, JSON.stringify({
    '@timestamp': '2026-11-02T12:00:00Z', event: { category: ['network'], type: ['protocol'] }, network: { protocol: 'dns', direction: 'egress', transport: 'udp' },
    destination: { ip: '8.8.8.8', port: 53 }, dns: { question: { name: 'c2exfil.oastify.com' } }, process: { name: 'node', executable: '/usr/bin/node', pid: 7 },
    labels: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: '200' },
  }) + '\n');
  const hr = join(at.dir, 'agent.log');
  writeFileSync(hr, [
    { context: { ...ctx, run_id: '300' } },
    { ipAddress: '45.61.136.14', port: '443', domainName: '', timestamp: '2026-11-02T11:00:02Z', tool: { name: 'stage2\\', sha256: '9'.repeat(64), parent: null }, status: 'Allowed' },
  ].map((l) => JSON.stringify(l)).join('\n') + '\n');
  for (const [file, format] of [[native, 'native'], [ecs, 'ecs'], [hr, 'harden-runner']] as const) {
    const r = await cliResult(['ingest', file, '--db', at.db, '--format', format, '--learning-runs', '0', '--json']);
    assert.equal(r.status, 0, `${format}: ${r.stderr}`);
  }
  assert.deepEqual(await stored(at.db), [
    'curl webhook.site:443 new', 'curl webhook.site:443 new', 'curl webhook.site:443 new', 'curl webhook.site:443 new',
    'node c2exfil.oastify.com:53 new',
    'stage2 45.61.136.14:443 new',
  ]);
  // none of them is an address, a resolver or the Unknown tool a rule could name to hide it
  for (const cond of ['ip_address=46.4.105.0/24', 'endpoint=8.8.8.8:53', 'process=Unknown']) {
    const c = await cliResult(['rules', 'create', '--db', at.db, '--condition', cond, '--yes', '--json']);
    const after = await stored(at.db);
    assert.equal(after.filter((d) => d.endsWith(' new')).length, 6, `${cond}: ${c.stdout}${c.stderr}`);
  }
});
