import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cliResult, ndjson, nativeEvent, tempDir } from '../helpers.js';
import { startServer } from './server.js';

/*
 * A configured risky range judges the destinations and baselines pages by address too: a host whose
 * calls reached 203.0.113.0/24 is marked where it is listed, though its name is on no list and no
 * detection holds the address (the range came after the ingest, when the host was baselined).
 * The real CLI ingests, the real built server answers, plain HTTP reads the pages.
 */

const t = tempDir('egress-triage-ranges-');
const db = join(t.dir, 'ranges.db');
const spec = { owner: 'acme', repo: 'api', job: 'build', domain: 'cdn.attacker.example', process: 'curl' };
const JOB_PAGE = '/baselines?owner=acme&repo=api&workflow=.github%2Fworkflows%2Fci.yml&job=build';

before(async () => {
  // learning runs: no detection at all; the host resolves into the range from run 3 on
  const events = [1, 2, 3, 4].map((run) => nativeEvent({ ...spec, run, ip: run <= 2 ? '198.51.100.9' : '203.0.113.5' }));
  const r = await cliResult(['ingest', t.file('calls.ndjson', ndjson(events)), '--db', db, '--format', 'native']);
  assert.equal(r.status, 0, r.stderr);
});

after(() => t.cleanup());

async function pageOf(base: string, path: string): Promise<string> {
  const res = await fetch(base + path);
  assert.equal(res.status, 200, path);
  return res.text();
}

describe('risky range on the destinations and baselines pages', () => {
  it('without the range the host is ordinary; with it, both pages mark it at the address it reached', async () => {
    // first without: a server with the range would make the store remember it (rules/risky-memory.ts)
    const plain = await startServer('serve', ['--db', db]);
    try {
      const dests = await pageOf(plain.base, '/destinations');
      assert.match(dests, /data-endpoint="cdn\.attacker\.example:443" data-risky="no"/);
      assert.doesNotMatch(await pageOf(plain.base, JOB_PAGE), /data-risky-at=/);
    } finally {
      await plain.stop();
    }
    const config = t.file('egress-triage.yaml', 'risky_destinations:\n  - 203.0.113.0/24\n');
    const ranged = await startServer('serve', ['--db', db, '--config', config]);
    try {
      const dests = await pageOf(ranged.base, '/destinations');
      assert.match(dests, /data-endpoint="cdn\.attacker\.example:443" data-risky="yes"/);
      assert.match(dests, /reached at 203\.0\.113\.5, in the risky range 203\.0\.113\.0\/24/);
      const job = await pageOf(ranged.base, JOB_PAGE);
      assert.match(job, /data-risky-at="203\.0\.113\.5"/);
      assert.match(job, /reached at 203\.0\.113\.5, in the risky range 203\.0\.113\.0\/24/);
      // the paged list of jobs says the same
      assert.match(await pageOf(ranged.base, '/baselines'), /data-risky-at="203\.0\.113\.5"/);
    } finally {
      await ranged.stop();
    }
  });
});
