import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * Through the real CLI into a real store: the ECS records that used to slip past the risky-destination
 * check (a direction other than egress, a shared address named by another process's lookup, a
 * Sysmon reverse name, a Sysmon event read before any pipeline) end as detections of the calling process, at the risky name;
 * so do their lookups of a risky name.
 */
test('the built CLI stores the risky calls of the ECS fixtures as detections of the process that made them', () => {
  const db = join(tmp.dir, 'ecs-risky.db');
  const ingest = runCli(['ingest', 'test/fixtures/ecs/sysmon-shared-cdn.ndjson', 'test/fixtures/ecs/flow-directions.ndjson', 'test/fixtures/ecs/sysmon-raw.ndjson', '--db', db, '--json']);
  assert.equal(ingest.status, 0, ingest.stderr);
  const list = runCli(['detections', 'list', '--db', db, '--json', '--limit', '100']);
  assert.equal(list.status, 0, list.stderr);
  const found = (JSON.parse(list.stdout) as { detections: { tool: { name: string }; endpoint: string; ip_address: string | null }[] }).detections
    .map((d) => `${d.tool.name} ${d.endpoint} ${d.ip_address}`)
    .sort();
  assert.deepEqual(found, [
    // direction "unknown": a call, not skipped
    'node webhook.site:443 46.4.105.116',
    // Sysmon's reverse name is risky: it names the call
    'curl.exe webhook.site:443 46.4.105.116',
    // it looked up gist, then raw: gist
    'upd.exe gist.githubusercontent.com:443 185.199.108.133',
    // it looked up nothing; the run's risky answer for the address names it
    'pwsh.exe gist.githubusercontent.com:443 185.199.110.133',
    // raw Sysmon (no pipeline): its own event 22 names its event 3 connection
    'curl.exe gist.githubusercontent.com:443 185.199.108.133',
    // and each lookup of gist is a contact of its own (test/ingest/risky-lookups.test.ts)
    'upd.exe gist.githubusercontent.com:53 null',
    'curl.exe gist.githubusercontent.com:53 null',
  ].sort());
});
