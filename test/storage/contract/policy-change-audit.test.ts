import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';
import { openPolicyState } from '../../../src/storage/open-policy-state.js';
import { parseAuditFilter } from '../../../src/policy/audit-filter.js';
import type { AuditRecord, PolicyStateBackend } from '../../../src/storage/policy-state.js';

/**
 * The `policy_change` audit record (the policy in force was replaced), identical on SQLite and
 * PostgreSQL: it keeps both hashes (policy_hash and previous_policy_hash, SQLite policy migration
 * 104, PostgreSQL migration 12), goes to the JSONL file as written, and the query and page filters
 * find it by decision, identity and tool next to call records. Redis state keeps no audit (it stays
 * in the store), so these two backends cover every deployment.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const pg = usePostgres();
const T = Date.UTC(2026, 11, 2, 9);

const CALL: AuditRecord = {
  ts: new Date(T).toISOString(),
  session: 's1',
  identity: 'ci-agent',
  tool: 'find_repos_using_endpoint',
  args_hash: 'h1',
  decision: 'allow',
  rule: 'tools.find_repos_using_endpoint',
  latency_ms: 3,
  upstream: 'ok',
  policy_hash: 'a'.repeat(64),
};
const CHANGE: AuditRecord = {
  ts: new Date(T + 60_000).toISOString(),
  session: '',
  identity: 'dashboard:alice',
  tool: 'find_repos_using_endpoint',
  args_hash: '',
  decision: 'policy_change',
  rule: '/etc/egress-triage/policy.yaml',
  reason: 'find_repos_using_endpoint: allow → approval',
  latency_ms: 0,
  upstream: 'not_forwarded',
  policy_hash: 'b'.repeat(64),
  previous_policy_hash: 'a'.repeat(64),
};
const RELOAD: AuditRecord = { ...CHANGE, ts: new Date(T + 120_000).toISOString(), identity: 'file', tool: '', reason: 'default allow → deny', policy_hash: 'c'.repeat(64), previous_policy_hash: 'b'.repeat(64) };

const stores = [
  { name: 'sqlite', create: async () => join(tmp.dir, 'change.db') },
  { name: 'postgres', create: async () => (await pg()).createDatabase('change') },
];

for (const backend of stores) {
  describe(`policy_change audit records on ${backend.name}`, () => {
    let st: PolicyStateBackend;
    after(async () => st?.close());

    it('keep both hashes and the summary, and filter by decision, identity and tool beside call records', async () => {
      const file = join(tmp.dir, `${backend.name}-audit.jsonl`);
      st = openPolicyState({ dbPath: await backend.create(), auditFile: file });
      await st.ready();
      for (const r of [CALL, CHANGE, RELOAD]) await st.audit.append(r, true);

      assert.deepEqual(await st.audit.query({}), [CALL, CHANGE, RELOAD]);
      assert.deepEqual(await st.audit.query({ decision: 'policy_change' }), [CHANGE, RELOAD]);
      assert.deepEqual(await st.audit.query({ decision: 'policy_change', identity: 'dashboard:alice' }), [CHANGE]);
      assert.deepEqual(await st.audit.query({ tool: 'find_repos_using_endpoint' }), [CALL, CHANGE]);

      const page = await st.audit.page(parseAuditFilter({ decision: 'policy_change' }, { now: T + 3_600_000 }), 10);
      assert.deepEqual(
        page.records.map(({ seq: _seq, ...r }) => r),
        [RELOAD, CHANGE],
      );
      assert.equal(page.nextCursor, null);
      // the JSONL line is the record as written
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
      assert.deepEqual(lines.filter((l) => l.decision === 'policy_change'), [CHANGE, RELOAD]);
    });

    it('the filter parser takes policy_change as a decision', () => {
      assert.deepEqual(parseAuditFilter({ decision: 'policy_change' }, { now: T }), { decision: 'policy_change' });
    });
  });
}
