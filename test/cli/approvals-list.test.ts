import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers.js';
import { openPolicyState } from '../../src/storage/open-policy-state.js';
import { APPROVALS_LIST_MAX } from '../../src/storage/policy-state.js';

const tmp = tempDir('egress-triage-approvals-list-');
after(() => tmp.cleanup());

test('approvals list says when it shows only the newest approvals, so older held calls are not missed unseen', async () => {
  const db = join(tmp.dir, 'state.db');
  const st = openPolicyState({ dbPath: db, auditFile: false });
  await st.ready();
  try {
    for (let i = 0; i <= APPROVALS_LIST_MAX; i++) {
      await st.approvals.request({ session: 's', identity: 'agent', tool: 'write_thing', argsHash: `h${i}`, argsPreview: `{"owner":"o${i}"}`, rule: 'tools.write_thing', timeoutMs: 600_000 });
    }
  } finally {
    await st.close();
  }
  const full = runCli(['approvals', 'list', '--db', db, '--json']);
  assert.equal(full.status, 0, full.stderr);
  assert.equal((JSON.parse(full.stdout) as unknown[]).length, APPROVALS_LIST_MAX);
  assert.equal(full.stderr, `egress-triage: only the newest ${APPROVALS_LIST_MAX} are shown; older ones may be pending too (each expires at its approval_timeout)\n`);
});
