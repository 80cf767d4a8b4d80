import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { createPolicyRuntime } from '../../src/gateway/runtime.js';
import { PolicyConflictError, sha256 } from '../../src/policy/holder.js';
import { PolicyLoadError } from '../../src/policy/load.js';

/**
 * The holder's replace() (the dashboard's save) and the runtime's audit of every new policy version:
 * a save is checked against the hash the editor saw, validated, written atomically with the file's
 * mode, in force at once and audited as its editor; a change found on disk is audited as `file`.
 */

const tmp = tempDir('egress-triage-reload-audit-');
after(() => tmp.cleanup());

const V1 = 'version: 1\n# who may do what\ntools:\n  read_me: { action: allow }   # open\n';
const V2 = 'version: 1\n# who may do what\ntools:\n  read_me: { action: require_approval }   # open\n';
const V3 = 'version: 1\ndefault: deny\ntools:\n  read_me: { action: require_approval }\n';

function runtime(name: string) {
  const policy = tmp.file(`${name}.yaml`, V1);
  chmodSync(policy, 0o640);
  const rt = createPolicyRuntime({ policyPath: policy, dbPath: join(tmp.dir, `${name}.db`), auditFile: false, watch: false, log: () => undefined });
  after(() => rt.close());
  return { rt, policy };
}

describe('PolicyHolder.replace and the reload audit', () => {
  it('saves atomically with the file mode, puts the new version in force and audits it as its editor', async () => {
    const { rt, policy } = runtime('save');
    const before = rt.holder.current.hash;
    const ev = rt.holder.replace(V2, sha256(V1), 'dashboard:alice');
    assert.equal(ev?.by, 'dashboard:alice');
    assert.equal(readFileSync(policy, 'utf8'), V2);
    assert.equal(statSync(policy).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file is left');
    assert.equal(rt.holder.current.hash, sha256(V2));
    assert.equal(rt.holder.current.engine.decide('read_me', {}).action, 'require_approval');
    const audit = await rt.state.audit.query({ decision: 'policy_change' });
    assert.deepEqual(
      audit.map((r) => [r.identity, r.tool, r.reason, r.previous_policy_hash, r.policy_hash, r.rule]),
      [['dashboard:alice', 'read_me', 'read_me: allow → approval', before, sha256(V2), rt.holder.path]],
    );
  });

  it('refuses a save over a file that changed since it was read (nothing written, nothing audited)', async () => {
    const { rt, policy } = runtime('stale');
    writeFileSync(policy, V3); // another editor, not yet reloaded
    assert.throws(() => rt.holder.replace(V2, sha256(V1), 'dashboard:alice'), (e) => e instanceof PolicyConflictError && e.actualHash === sha256(V3));
    assert.equal(readFileSync(policy, 'utf8'), V3);
    assert.deepEqual(await rt.state.audit.query({ decision: 'policy_change' }), []);
  });

  it('refuses an invalid policy before writing it', async () => {
    const { rt, policy } = runtime('invalid');
    assert.throws(() => rt.holder.replace('version: 1\ntools:\n  x: { action: deny }\n', sha256(V1), 'dashboard:alice'), PolicyLoadError);
    assert.equal(readFileSync(policy, 'utf8'), V1);
    assert.equal(rt.holder.current.hash, sha256(V1));
  });

  it('a change found on disk is audited as `file`, with what it changed', async () => {
    const { rt, policy } = runtime('file');
    writeFileSync(policy, V3);
    assert.equal(rt.holder.reload(), true);
    const [r] = await rt.state.audit.query({ decision: 'policy_change' });
    assert.equal(r?.identity, 'file');
    assert.equal(r?.reason, 'default allow → deny; read_me: allow → approval');
    assert.equal(r?.tool, 'read_me');
    assert.equal(r?.previous_policy_hash, sha256(V1));
    assert.equal(r?.policy_hash, sha256(V3));
  });
});
