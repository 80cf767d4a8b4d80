import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers.js';
import { usePostgres } from '../helpers/postgres.js';
import { openPolicyState } from '../../src/storage/open-policy-state.js';
import { freePort } from '../helpers/free-port.js';

/** `approvals`, `audit` and `gateway` take the policy state's store as --db postgres://... (built CLI, real server). */

const tmp = tempDir();
after(() => tmp.cleanup());
const pg = usePostgres();

describe('policy state commands on a PostgreSQL store', () => {
  it('approvals list / approve and audit read and decide what a gateway filed', async () => {
    const url = await (await pg()).createDatabase('policy_cli');
    const gw = openPolicyState({ dbPath: url, auditFile: false });
    try {
      await gw.ready();
      const { row } = await gw.approvals.request({
        session: 's1', identity: 'alice', tool: 'write', argsHash: 'h1', argsPreview: '{"a":1}', rule: 'tools.write', timeoutMs: 60_000,
      });
      await gw.audit.append({ ts: '2026-12-01T12:00:00.000Z', session: 's1', identity: 'alice', tool: 'write', args_hash: 'h1', decision: 'deny', rule: 'tools.write', reason: 'no', latency_ms: 1, upstream: 'not_forwarded' }, true);
      await gw.audit.append({ ts: '2026-12-01T12:00:01.000Z', session: 's1', identity: 'alice', tool: 'read', args_hash: 'h2', decision: 'allow', rule: 'tools.read', latency_ms: 1, upstream: 'ok' }, true);

      const list = runCli(['approvals', 'list', '--db', url, '--json']);
      assert.equal(list.status, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout).map((r: { id: string }) => r.id), [row.id]);
      const approve = runCli(['approvals', 'approve', row.id, '--db', url]);
      assert.equal(approve.status, 0, approve.stderr);
      assert.equal(approve.stdout, `${row.id} approved (write)\n`);
      assert.equal((await gw.approvals.get(row.id))?.status, 'approved');

      const audit = runCli(['audit', '--db', url, '--jsonl', '--decision', 'deny']);
      assert.equal(audit.status, 0, audit.stderr);
      assert.deepEqual(audit.stdout.trim().split('\n').map((l) => JSON.parse(l).tool), ['write']);
    } finally {
      await gw.close();
    }
  });

  it('a gateway whose PostgreSQL store is unreachable refuses to start (exit 5), without printing the password', async () => {
    const port = await freePort();
    const policy = join(tmp.dir, 'policy.yaml');
    writeFileSync(policy, 'version: 1\ndefault: allow\n');
    const r = runCli(['gateway', '--policy', policy, '--db', `postgres://u:hunter2@127.0.0.1:${port}/x`, '--', process.execPath, '-e', '']);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /--db: policy state: PostgreSQL store postgres:\/\/u:\*\*\*@127\.0\.0\.1:\d+\/x: cannot reach the server/);
    assert.doesNotMatch(r.stderr, /hunter2|\n\s+at /);
  });
});
