import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { call as callTool, stdioClient, textOf } from '../mcp/helpers.js';

/**
 * Values no store can key or hold the same way: a NUL character (PostgreSQL text cannot hold one),
 * and job identity values longer than a PostgreSQL index entry (about 2.7 kB). One such record
 * stopped a PostgreSQL ingest with an internal error (exit 70), so every call after it, the
 * webhook.site one here too, was never stored, while SQLite stored the record. Now each is a bad
 * record on both stores, refused with its field, and the ingest goes on to the same result.
 */

const { storeTest } = eachStore();

const base = { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_attempt: 1, port: 443, process: { name: 'curl', path: '/usr/bin/curl' } };
const call = (run: number, extra: Record<string, unknown>) => JSON.stringify({ ...base, run_id: String(run), timestamp: `2026-11-02T10:0${run % 10}:00Z`, domain: 'github.com', ...extra });

storeTest('a NUL character or an over-long job key is a bad record on both stores, and the calls after it are stored', async (at) => {
  const lines = [
    call(1, {}),
    call(2, { owner: 'ac\u0000me' }),
    call(3, { process: { name: 'git', path: '/usr/bin/g\u0000it' } }),
    call(4, { process: { name: 'g\u0000it' } }),
    call(5, { job: 'build\u0000' }),
    call(6, { run_id: '6\u0000' }),
    call(7, { owner: 'o'.repeat(257) }),
    // 334 characters of three UTF-8 bytes each: 1,002 bytes
    call(8, { job: '\u20ac'.repeat(334) }),
    call(9, { workflow: `.github/workflows/${'w'.repeat(4000)}.yml` }),
    // the longest values allowed are stored
    call(1, { owner: 'o'.repeat(256), repo: 'r'.repeat(256), workflow: 'w'.repeat(1000), job: '\u20ac'.repeat(333) }),
    call(1, { domain: 'webhook.site' }),
  ];
  const file = join(at.dir, 'unstorable.ndjson');
  writeFileSync(file, lines.join('\n') + '\n');
  const r = await cliResult(['ingest', file, '--db', at.db, '--json']);
  assert.equal(r.status, 1, 'records were rejected (exit 1), and the others stored');
  const s = (JSON.parse(r.stdout) as { sources: { accepted: number; rejected: number; errors: { location: string; reason: string; field: string; message: string }[] }[] }).sources[0]!;
  assert.equal(s.accepted, 3);
  assert.equal(s.rejected, 8);
  assert.deepEqual(
    s.errors.map((e) => [e.location.replace(/^.*:/, ''), e.reason, e.field, e.message]),
    [
      ['2', 'invalid-value', 'owner', 'owner: holds a NUL character (U+0000) at character 3: no name, path or id holds one'],
      ['3', 'invalid-value', 'process path', 'process path: holds a NUL character (U+0000) at character 11: no name, path or id holds one'],
      ['4', 'invalid-value', 'process name', 'process name: holds a NUL character (U+0000) at character 2: no name, path or id holds one'],
      ['5', 'invalid-value', 'job', 'job: holds a NUL character (U+0000) at character 6: no name, path or id holds one'],
      ['6', 'invalid-value', 'run_id', 'run_id: holds a NUL character (U+0000) at character 2: no name, path or id holds one'],
      ['7', 'invalid-value', 'owner', "owner: is 257 bytes long; a job's owner may be at most 256 bytes (UTF-8)"],
      ['8', 'invalid-value', 'job', "job: is 1002 bytes long; a job's job may be at most 1000 bytes (UTF-8)"],
      ['9', 'invalid-value', 'workflow', "workflow: is 4022 bytes long; a job's workflow may be at most 1000 bytes (UTF-8)"],
    ],
  );
  const l = await cliResult(['detections', 'list', '--db', at.db, '--json', '--limit', '100']);
  assert.equal(l.status, 0, l.stderr);
  const ds = (JSON.parse(l.stdout) as { detections: { endpoint: string; owner: string }[] }).detections;
  assert.deepEqual(ds.map((d) => d.endpoint), ['webhook.site:443'], 'the risky call after the bad records is stored and raised');
});

storeTest('a NUL character in a read tool argument is a clear error on both stores, not an internal one', async (at) => {
  const file = join(at.dir, 'calls.ndjson');
  writeFileSync(file, call(1, { domain: 'webhook.site' }) + '\n');
  assert.equal((await cliResult(['ingest', file, '--db', at.db])).status, 0);
  const { client } = await stdioClient(at.db, {});
  try {
    for (const [tool, args, says] of [
      ['find_endpoint_calls_in_tenant', { endpoint: 'web\u0000hook.site' }, /the indicator holds a NUL character \(U\+0000\), which no endpoint holds/],
      ['list_anomalous_network_calls', { workflow: 'a\u0000' }, /workflow: holds a NUL character \(U\+0000\) at character 2, which no stored value holds/],
      ['analyze_anomalous_calls_by_process', { job: 'b\u0000uild' }, /job: holds a NUL character \(U\+0000\) at character 2, which no stored value holds/],
    ] as const) {
      const r = await callTool(client, tool, args);
      assert.equal(r.isError, true, tool);
      assert.match(textOf(r), says, tool);
      assert.doesNotMatch(textOf(r), /internal error/i, tool);
    }
  } finally {
    await client.close();
  }
});
