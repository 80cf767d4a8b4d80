import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CLI, FIXTURE, cli, kill, spawnUntil, text, tmpDir } from '../gateway/helpers.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** Three real gateway processes (the built CLI) on one upstream and one Redis, each with its own store. */
export interface Replicas {
  redis: TestRedis;
  urls: string[];
  dbs: string[];
  tokens: string[];
  admin: string;
  connect(replica: number, token: string): Promise<Client>;
  /** The `audit --json` records of one replica's store. */
  audit(replica: number): Promise<{ decision: string; tool: string; reason?: string; identity: string }[]>;
  close(): Promise<void>;
}

export const ADMIN_TOKEN = 'ops-admin-token-0123456789abcdef';
export const tokenOf = (i: number) => `client-${i}-token-0123456789abcdef`;

export async function startReplicas(policyText: string, identities: number): Promise<Replicas> {
  const t = tmpDir('et-replicas-');
  const redis = await startRedis();
  const children: ChildProcess[] = [];
  const clients: Client[] = [];
  try {
    const policy = t.file('policy.yaml', policyText);
    const grants = t.file(
      'grants.yaml',
      `grants:\n${Array.from({ length: identities }, (_, i) => `  - { identity: client-${i}, token: ${tokenOf(i)} }\n`).join('')}  - { identity: ops, token: ${ADMIN_TOKEN}, admin: true }\n`,
    );
    const up = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
    children.push(up.child);
    const upstreamUrl = `http://127.0.0.1:${up.match[1]}/mcp`;
    const dbs = [0, 1, 2].map((i) => join(t.dir, `replica-${i}.db`));
    const gws = await Promise.all(
      dbs.map((db) =>
        spawnUntil(
          process.execPath,
          [CLI, 'gateway', '--policy', policy, '--db', db, '--state', redis.url, '--upstream', upstreamUrl, '--listen', '127.0.0.1:0', '--grants', grants],
          /listening on (http:\/\/\S+)/,
          30_000,
        ),
      ),
    );
    children.push(...gws.map((g) => g.child));
    const urls = gws.map((g) => g.match[1]!);
    return {
      redis,
      urls,
      dbs,
      tokens: Array.from({ length: identities }, (_, i) => tokenOf(i)),
      admin: ADMIN_TOKEN,
      async connect(replica, token) {
        const c = new Client({ name: 'replica-test', version: '1' });
        await c.connect(new StreamableHTTPClientTransport(new URL(urls[replica]!), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
        clients.push(c);
        return c;
      },
      async audit(replica) {
        const r = await cli(['audit', '--db', dbs[replica]!, '--jsonl', '--limit', '100000']);
        if (r.code !== 0) throw new Error(`audit failed: ${r.stderr}`);
        return r.stdout.trim() ? r.stdout.trim().split('\n').map((l) => JSON.parse(l)) : [];
      },
      async close() {
        await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
        await Promise.all(children.map(kill));
        await redis.stop();
        t.cleanup();
      },
    };
  } catch (e) {
    await Promise.all(children.map(kill));
    await redis.stop();
    t.cleanup();
    throw e;
  }
}

/**
 * After Redis lost its data: calls each replica until one is admitted (denials meanwhile must be
 * policy-state errors, never a rate limit), then makes three more calls on each. Returns how many of
 * those 3 × replicas calls were admitted: what the rebuilt counts still allowed.
 */
export async function recoverThenCount(cs: readonly Client[], tool: string): Promise<{ recovered: number; rest: number }> {
  let recovered = 0;
  for (const [i, c] of cs.entries()) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const reasons: string[] = [];
      if (await admitted(c, tool, { text: `back-${i}` }, reasons)) {
        recovered++;
        break;
      }
      // denied while reconnecting or while the replicas put their charges back; a rate-limit denial fails here
      if (!/policy state error: Redis at /.test(reasons[0]!)) throw new Error(`replica ${i} was denied for another reason: ${reasons[0]}`);
      if (Date.now() >= deadline) throw new Error(`replica ${i} did not recover: ${reasons[0]}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  const rest = await Promise.all(cs.flatMap((c, i) => [0, 1, 2].map((k) => admitted(c, tool, { text: `rest-${i}-${k}` }))));
  return { recovered, rest: rest.filter(Boolean).length };
}

/** True when the upstream answered the call, false when the policy denied it (the reason goes to `reasons`). */
export async function admitted(c: Client, tool: string, args: Record<string, unknown>, reasons?: string[]): Promise<boolean> {
  const r = await c.callTool({ name: tool, arguments: args });
  const s = text(r);
  if (s.startsWith('[POLICY DENIED]')) {
    reasons?.push(s);
    return false;
  }
  if (r.isError) throw new Error(`unexpected error answer ${JSON.stringify(s)} for ${tool}`);
  return true;
}

export { text };
