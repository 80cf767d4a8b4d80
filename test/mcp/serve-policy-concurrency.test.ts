import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { call, httpClient, killChild, startServe, textOf } from './helpers.js';

const tmp = tempDir('egress-serve-concurrency-');
after(() => tmp.cleanup());

const SESSIONS = 50;
const CALLS_PER_SESSION = 5;

// One process, one policy runtime: a global limit holds across every HTTP session, even when the
// sessions all connect at the same moment (each new session used to build its own runtime).
const POLICY = `version: 1
default: allow
tools:
  ping:
    rate_limit: { max: 100, window: 3600, scope: global }
  list_suppression_rules:
    rate_limit: { max: 2, window: 3600 }
`;

function emptyStore(name: string): string {
  const db = join(tmp.dir, name);
  SqliteStore.open(db).close();
  return db;
}

function tally(results: CallToolResult[]): { admitted: number; denied: number; other: string[] } {
  let admitted = 0;
  let denied = 0;
  const other: string[] = [];
  for (const r of results) {
    if (!r.isError) admitted++;
    else if (textOf(r).startsWith('[POLICY DENIED] rate limit exceeded')) denied++;
    else other.push(textOf(r));
  }
  return { admitted, denied, other };
}

test(`serve --policy: ${SESSIONS} sessions connecting at once share one global limit and keep exact per-session limits`, async () => {
  const db = emptyStore('egress.db');
  const policy = join(tmp.dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  const { child, url } = await startServe(db, ['--policy', policy]);
  try {
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => httpClient(url)));
    try {
      const perSession = await Promise.all(
        clients.map(({ client }) =>
          Promise.all([
            ...Array.from({ length: CALLS_PER_SESSION }, () => call(client, 'ping')),
            ...Array.from({ length: 3 }, () => call(client, 'list_suppression_rules')),
          ]),
        ),
      );
      const pings = tally(perSession.flatMap((r) => r.slice(0, CALLS_PER_SESSION)));
      assert.deepEqual(pings.other, []);
      assert.equal(pings.admitted, 100, 'a global max: 100 admits exactly 100 calls across all sessions');
      assert.equal(pings.denied, SESSIONS * CALLS_PER_SESSION - 100);
      for (const r of perSession) {
        const lists = tally(r.slice(CALLS_PER_SESSION));
        assert.deepEqual(lists, { admitted: 2, denied: 1, other: [] }, 'each session gets exactly its own max: 2');
      }
    } finally {
      await Promise.all(clients.map(({ client }) => client.close().catch(() => undefined)));
    }
  } finally {
    await killChild(child);
  }
});
