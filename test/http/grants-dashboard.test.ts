import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../helpers.js';
import { dashboardPermissions, loadGrants } from '../../src/http/grants.js';

describe('grants: dashboard permissions', () => {
  it('defaults to read, keeps admin meaning approve, and lets a grant list its own or none', () => {
    const t = tempDir();
    try {
      const path = t.file(
        'grants.yaml',
        [
          'grants:',
          '  - { identity: agent, token: agent-token-0123456789 }',
          '  - { identity: ops, token: ops-token-0123456789ab, admin: true }',
          '  - { identity: editor, token: editor-token-012345678, dashboard: [write] }',
          '  - { identity: bot, token: bot-token-0123456789ab, dashboard: [] , admin: true }',
          // a policy of its own governs the MCP calls only: no dashboard unless listed
          '  - { identity: ci-agent, token: ci-agent-token-01234567, policy: ./agent.yaml }',
          '  - { identity: ci-ops, token: ci-ops-token-0123456789, policy: ./agent.yaml, admin: true }',
          '  - { identity: viewer, token: viewer-token-01234567, policy: ./agent.yaml, dashboard: [read] }',
        ].join('\n'),
      );
      const byId = Object.fromEntries(loadGrants(path).map((g) => [g.identity, g.dashboard]));
      assert.deepEqual(byId, {
        agent: ['read'], ops: ['read', 'approve'], editor: ['read', 'write'], bot: [], 'ci-agent': [], 'ci-ops': [], viewer: ['read'],
      });
    } finally {
      t.cleanup();
    }
  });

  it('names the grant and the value of an unknown permission', () => {
    const t = tempDir();
    try {
      const path = t.file('grants.yaml', 'grants:\n  - { identity: a, token: a-token-0123456789abcd, dashboard: [read, admin] }\n');
      assert.throws(() => loadGrants(path), /grants\.yaml:2: invalid grants file: grants\[0\]\.dashboard\[1\]: use read, write or approve/);
    } finally {
      t.cleanup();
    }
  });

  it('write and approve imply read', () => {
    assert.deepEqual(dashboardPermissions(['approve'], false), ['read', 'approve']);
    assert.deepEqual(dashboardPermissions(undefined, false), ['read']);
  });
});
