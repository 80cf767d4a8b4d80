import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { CLI, FIXTURE, cli, kill, spawnUntil, text, tmpDir } from '../gateway/helpers.js';
import { startRedis } from '../helpers/redis.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { freePort } from '../helpers/free-port.js';

const childEnv = () => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));

test('--state: a URL that is not redis:// is a usage error; an unreachable Redis refuses to start (exit 5)', async () => {
  const t = tmpDir();
  try {
    const policy = t.file('p.yaml', 'version: 1\n');
    const bad = await cli(['gateway', '--policy', policy, '--db', t.db, '--state', 'http://127.0.0.1:6379', '--', process.execPath, FIXTURE]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^egress-triage: --state "http:\/\/127\.0\.0\.1:6379": only redis:\/\/host:port\[\/db\] is supported/m);
    const port = await freePort();
    const down = await cli(['gateway', '--policy', policy, '--db', t.db, '--state', `redis://127.0.0.1:${port}/0`, '--', process.execPath, FIXTURE]);
    assert.equal(down.code, 5, down.stderr);
    assert.match(down.stderr, new RegExp(`^egress-triage: --state: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0`, 'm'));
    assert.doesNotMatch(down.stderr, /\n\s+at /, 'no stack trace');
    const approvals = await cli(['approvals', 'list', '--state', 'redis://127.0.0.1:6379/x']);
    assert.equal(approvals.code, 2);
    assert.match(approvals.stderr, /the database must be a number/);
    // refused, and its password never echoed
    for (const url of ['redis://:S3cret@127.0.0.1:6379/0', 'redis://user:S3cret@127.0.0.1:6379/0', 'redis://:S3cret@[::1/0', 'redis://:S3cret/x@10.0.0.5:6379/0', 'redis://user:p#S3cret@10.0.0.5:6379/0']) {
      const creds = await cli(['approvals', 'list', '--state', url]);
      assert.equal(creds.code, 2, url);
      assert.match(creds.stderr, /:\*\*\*@/, url);
      assert.ok(!creds.stderr.includes('S3cret'), `${url}: ${creds.stderr}`);
    }
  } finally {
    t.cleanup();
  }
});

test('mcp --policy and serve --policy with --state share one global limit through Redis', async () => {
  const t = tmpDir();
  const redis = await startRedis();
  SqliteStore.open(t.db).close();
  const policy = t.file('p.yaml', 'version: 1\ntools:\n  ping: { rate_limit: { max: 3, window: 3600, scope: global } }\n');
  const stdio = new Client({ name: 'state-flag', version: '1' });
  const http = new Client({ name: 'state-flag', version: '1' });
  const serve = await spawnUntil(
    process.execPath,
    [CLI, 'serve', '--db', t.db, '--policy', policy, '--state', redis.url, '--listen', '127.0.0.1:0'],
    /listening on (http:\/\/\S+)/,
    30_000,
  );
  try {
    await stdio.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', t.db, '--policy', policy, '--state', redis.url], env: childEnv(), stderr: 'pipe' }));
    await http.connect(new StreamableHTTPClientTransport(new URL(serve.match[1]!)));
    const answers = await Promise.all([stdio, http].flatMap((c) => [0, 1, 2].map(() => c.callTool({ name: 'ping', arguments: {} }))));
    const denied = answers.filter((a) => text(a).startsWith('[POLICY DENIED]'));
    assert.equal(answers.length - denied.length, 3, 'the two processes admit 3 calls in all');
    assert.ok(denied.every((a) => /rate limit exceeded for "ping": max 3 per 3600s \(scope global\)/.test(text(a))));
  } finally {
    await stdio.close().catch(() => undefined);
    await http.close().catch(() => undefined);
    await kill(serve.child);
    await redis.stop();
    t.cleanup();
  }
});
