import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli, tmpDir } from '../gateway/helpers.js';

test('stdio gateway: an upstream command that cannot start is a clear error, not a stack trace', async () => {
  const t = tmpDir('adv-start-');
  try {
    const r = await cli(['gateway', '--policy', t.file('p.yaml', 'version: 1\n'), '--db', t.db, '--', '/nonexistent/mcp-server']);
    assert.equal(r.code, 3, r.stderr); // NOT_FOUND: the command named does not exist
    assert.match(r.stderr, /cannot start the upstream command "\/nonexistent\/mcp-server": ENOENT/);
    assert.ok(!/\n\s+at /.test(r.stderr), r.stderr);
  } finally {
    t.cleanup();
  }
});
