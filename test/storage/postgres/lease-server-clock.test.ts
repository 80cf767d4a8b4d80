import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from '../../helpers/postgres.js';
import { PgStore } from '../../../src/storage/postgres/pg-store.js';
import type { IngestLeaseEvent } from '../../../src/storage/store.js';

const server = usePostgres();

test("without an injected clock, lease times are the PostgreSQL server's, and a dead holder is taken over once they say it expired", async () => {
  const url = await (await server()).createDatabase('lease');
  const [a, b] = [PgStore.connect(url), PgStore.connect(url)];
  try {
    await a.migrate();
    const serverNow = async () => (await a.pool.query<{ now: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now')).rows[0]!.now;
    const before = await serverNow();
    await a.leases.acquireIngestLease('acme', { source: 'dead.ndjson', pid: 1, host: 'gone' }, { ttlMs: 1_000 });
    const after = await serverNow();
    const row = (await a.pool.query<{ since: number; expires_at: number }>('SELECT since, expires_at FROM ingest_leases')).rows[0]!;
    assert.ok(row.since >= before && row.since <= after, 'since is the server time of the acquisition');
    assert.equal(row.expires_at, row.since + 1_000);
    const events: IngestLeaseEvent[] = [];
    // the holder never renews: the waiter polls until the server's clock passes expires_at
    const lb = await b.leases.acquireIngestLease('acme', { source: 'b.ndjson', pid: 2, host: 'alive' }, { ttlMs: 1_000, onWait: (e) => events.push(e) });
    assert.deepEqual(events.map((e) => e.kind), ['waiting', 'takeover']);
    const takeover = events[1]!;
    assert.ok(takeover.kind === 'takeover' && takeover.now >= row.expires_at, 'taken over no earlier than the expiry on the server clock');
    await lb.release();
  } finally {
    await a.close();
    await b.close();
  }
});
