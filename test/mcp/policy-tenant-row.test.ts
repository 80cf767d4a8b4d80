import { after } from 'node:test';
import assert from 'node:assert/strict';
import { nativeEvent, ndjson, runCli, tempDir } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { EXIT } from '../../src/cli/exit-codes.js';

/**
 * Approvals and the policy audit carry no tenant, so a dashboard refuses those pages on a store that
 * holds another tenant (src/dashboard/policy-tenants.ts). A tenant whose agent used the store's
 * policy before any of its data was ingested had no row, and the refusal did not see it (found by
 * review). `mcp` and `serve` with --policy record their tenant on the store as they start.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest } = eachStore();

storeTest('mcp --policy records its tenant on the store before the agent files anything; without --policy nothing is written', async (at) => {
  const source = tmp.file(`acme-${at.backend}.ndjson`, ndjson([nativeEvent({ run: 1, domain: 'github.com' })]));
  const ingested = runCli(['ingest', source, '--db', at.db]);
  assert.equal(ingested.status, EXIT.OK, ingested.stderr);
  const tenants = async () => ((await at.rows<{ name: string }>('SELECT name FROM tenants ORDER BY name')).map((r) => r.name));
  assert.deepEqual(await tenants(), ['default']);
  const policy = tmp.file('p.yaml', 'version: 1\ndefault: allow\n');
  const plain = runCli(['mcp', '--tenant', 'initech', '--db', at.db], { input: '' });
  assert.equal(plain.status, EXIT.OK, plain.stderr);
  assert.deepEqual(await tenants(), ['default'], 'a server without --policy writes nothing');
  const governed = runCli(['mcp', '--tenant', 'globex', '--policy', policy, '--db', at.db], { input: '' });
  assert.equal(governed.status, EXIT.OK, governed.stderr);
  assert.deepEqual(await tenants(), ['default', 'globex']);
});
