import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers.js';
import { EXIT } from '../../src/cli/exit-codes.js';

/** `egress-triage dashboard`: bad input is a clear error with its documented exit code, never a stack trace. */

const t = tempDir();
let db: string;

before(() => {
  db = join(t.dir, 'demo.db');
  const r = runCli(['demo', '--db', db, '--runs', '6', '--events', '1000', '--json']);
  assert.equal(r.status, 0, r.stderr);
});
after(() => t.cleanup());

describe('egress-triage dashboard', () => {
  it('refuses a non-loopback address without grants (REFUSED)', () => {
    const r = runCli(['dashboard', '--db', db, '--listen', '0.0.0.0:0']);
    assert.equal(r.status, EXIT.REFUSED);
    assert.match(r.stderr, /^egress-triage: --listen: refusing to listen on non-loopback address 0\.0\.0\.0 without bearer tokens/);
  });

  it('names the grant and value of an unknown dashboard permission (REJECTED, as any invalid file)', () => {
    const grants = t.file('grants.yaml', 'grants:\n  - { identity: a, token: aaaaaaaaaaaaaaaaaaaa, dashboard: [read, root] }\n');
    const r = runCli(['dashboard', '--db', db, '--grants', grants]);
    assert.equal(r.status, EXIT.REJECTED);
    assert.equal(r.stderr, `egress-triage: --grants ${grants}:2: invalid grants file: grants[0].dashboard[1]: use read, write or approve\n`);
  });

  it('says when there is no store (NOT_FOUND)', () => {
    const r = runCli(['dashboard', '--db', join(t.dir, 'none.db')]);
    assert.equal(r.status, EXIT.NOT_FOUND);
    assert.match(r.stderr, /no store at .*none\.db/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
