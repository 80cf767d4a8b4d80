import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, tempDir } from '../helpers.js';

/**
 * `--grants` given with an empty or blank path is a usage error (src/cli/grants-option.ts), not "no
 * grants": `--grants "$GRANTS"` with the variable unset started a loopback server open to every
 * local process, its dashboard with full rights (found by review).
 */
const tmp = tempDir('egress-triage-grants-empty-');
after(() => tmp.cleanup());

test('an empty --grants is a usage error for serve, dashboard and the HTTP gateway; no server starts', () => {
  const db = tmp.file('store.db', '');
  assert.equal(runCli(['db', 'migrate', '--db', db]).status, 0);
  const policy = tmp.file('policy.yaml', 'version: 1\n');
  for (const args of [
    ['serve', '--db', db, '--listen', '127.0.0.1:0', '--grants', ''],
    ['dashboard', '--db', db, '--listen', '127.0.0.1:0', '--grants', ' '],
    ['gateway', '--policy', policy, '--db', db, '--upstream', 'http://127.0.0.1:9/mcp', '--listen', '127.0.0.1:0', '--grants', ''],
  ]) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /^egress-triage: --grants: the path is empty; give the grants file/m, args[0]);
    assert.doesNotMatch(r.stderr, /listening on/);
  }
});
