import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { counterNamespaces } from '../../src/gateway/runtime.js';
import { CLI, FIXTURE, kill, spawnUntil, text, tmpDir } from './helpers.js';

test('counter names: the base name when it is unique, else the shortest path ending that tells the files apart', () => {
  const names = counterNamespaces(['/srv/gw/a/policy.yaml', '/srv/gw/b/policy.yaml', '/srv/gw/triage.yaml', '/x/a/policy.yaml']);
  assert.deepEqual(Object.fromEntries(names), {
    '/srv/gw/a/policy.yaml': 'gw/a/policy.yaml',
    '/srv/gw/b/policy.yaml': 'b/policy.yaml',
    '/srv/gw/triage.yaml': 'triage.yaml',
    '/x/a/policy.yaml': 'x/a/policy.yaml',
  });
  assert.equal(new Set(names.values()).size, names.size, 'no two files share a name');
  assert.deepEqual(Object.fromEntries(counterNamespaces(['/etc/egress-triage/policy.yaml'])), { '/etc/egress-triage/policy.yaml': 'policy.yaml' });
});

test('gateway --config: two upstreams whose policy files share a base name keep their own rate-limit counters', async () => {
  const t = tmpDir('gw-counters-');
  mkdirSync(join(t.dir, 'a'));
  mkdirSync(join(t.dir, 'b'));
  const limit = 'version: 1\ndefault: allow\ntools:\n  write_thing:\n    rate_limit: { max: 2, window: 3600, scope: global }\n';
  t.file('a/policy.yaml', limit);
  t.file('b/policy.yaml', limit);
  const upstream = (name: string) => `  - name: ${name}\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]\n    policy: ${name}/policy.yaml\n`;
  const config = t.file('gateway.yaml', `upstreams:\n${upstream('a')}${upstream('b')}`);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', t.db, '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+)\/s\/b\/mcp/);
  const clients: Client[] = [];
  try {
    const connect = async (name: string) => {
      const c = new Client({ name: 'counters-test', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.match[1]}/s/${name}/mcp`)));
      clients.push(c);
      return c;
    };
    const a = await connect('a');
    const b = await connect('b');
    const write = async (c: Client) => text(await c.callTool({ name: 'write_thing', arguments: { owner: 'x' } }));
    assert.equal(await write(a), 'write_thing ok {"owner":"x"}');
    assert.equal(await write(a), 'write_thing ok {"owner":"x"}');
    assert.match(await write(a), /^\[POLICY DENIED\] .*rate limit/);
    // a's quota is a's: b still has its own two calls, and then its own denial
    assert.equal(await write(b), 'write_thing ok {"owner":"x"}');
    assert.equal(await write(b), 'write_thing ok {"owner":"x"}');
    assert.match(await write(b), /^\[POLICY DENIED\] .*rate limit/);
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await kill(gw.child);
    t.cleanup();
  }
});
