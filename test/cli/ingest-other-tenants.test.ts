import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cliResult, tempDir } from '../helpers.js';

/**
 * A record may name its own tenant (native `tenant`, and the like in every format). A source meant
 * for one tenant then writes into another: the summary says so, in text and JSON (found by review:
 * it was silent).
 */

const record = (o: Record<string, unknown>) =>
  JSON.stringify({ owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: '1', timestamp: '2026-11-01T00:00:00Z', domain: 'registry.npmjs.org', port: 443, process: { name: 'npm' }, ...o });

test('ingest names the other tenants records wrote into; none when every record is the ingest\'s own', async () => {
  const t = tempDir();
  try {
    const db = `${t.dir}/egress.db`;
    const mixed = t.file('mixed.ndjson', [record({}), record({ tenant: 'shadow', domain: 'webhook.site' }), record({ tenant: 'zeta' })].join('\n') + '\n');
    const text = await cliResult(['ingest', mixed, '--db', db, '--tenant', 'acme']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /other tenants {5}shadow zeta {2}\(written there: named by the records' own "tenant" field\)/);
    const json = await cliResult(['ingest', mixed, '--db', db, '--tenant', 'acme', '--json']);
    assert.deepEqual((JSON.parse(json.stdout) as { sources: { otherTenants: string[] }[] }).sources[0]!.otherTenants, ['shadow', 'zeta']);
    const own = t.file('own.ndjson', record({ tenant: 'acme' }) + '\n');
    const plain = await cliResult(['ingest', own, '--db', db, '--tenant', 'acme']);
    assert.doesNotMatch(plain.stdout, /other tenants/);
  } finally {
    t.cleanup();
  }
});
