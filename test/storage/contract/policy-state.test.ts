import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers.js';
import { PostgresServer, usePostgres } from '../../helpers/postgres.js';
import { openPolicyState } from '../../../src/storage/open-policy-state.js';
import { PgPolicyState } from '../../../src/storage/postgres/policy-state.js';
import type { ApprovalBinding, AuditRecord, PolicyStateBackend } from '../../../src/storage/policy-state.js';
import { waitFor } from '../../helpers/wait.js';
import { freePort } from '../../helpers/free-port.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { migrate, openSqlite } from '../../../src/storage/sqlite/db.js';
import { POLICY_MIGRATIONS } from '../../../src/storage/sqlite/policy-migrations.js';
import { RedisPolicyState } from '../../../src/state/redis/state.js';
import { createPool } from '../../../src/storage/postgres/pool.js';
import { migratePostgres, PG_MIGRATIONS } from '../../../src/storage/postgres/migrations.js';

/**
 * The policy-state port (approvals and audit) with identical assertions on SQLite and on
 * PostgreSQL. Each "connection" is a separate openPolicyState(), as a gateway and the
 * `approvals` CLI are separate processes on one store.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const pg = usePostgres();
let n = 0;

class Clock {
  t = Date.UTC(2026, 11, 1, 12);
  now = () => this.t;
}

const stores = [
  { name: 'sqlite', create: async () => join(tmp.dir, `policy-${n++}.db`) },
  { name: 'postgres', create: async () => (await pg()).createDatabase('policy') },
];

const binding = (over: Partial<ApprovalBinding> = {}): ApprovalBinding => ({
  session: 's1', identity: 'alice', tool: 'write', argsHash: 'h1', argsPreview: '{"a":1}', rule: 'tools.write', timeoutMs: 60_000, ...over,
});

const record = (over: Partial<AuditRecord>): AuditRecord => ({
  ts: '2026-12-01T12:00:00.000Z', session: 's1', identity: 'alice', tool: 'read', args_hash: 'h', decision: 'allow', rule: 'tools.read',
  latency_ms: 1.5, upstream: 'ok', ...over,
});

/** Polls a condition until a bounded deadline (no sleep before an assertion). */

for (const backend of stores) {
  describe(`policy state on ${backend.name}`, () => {
    const open: PolicyStateBackend[] = [];
    after(async () => {
      for (const s of open) await s.close();
    });
    async function connect(location: string, clock = new Clock(), auditFile: string | false = false): Promise<PolicyStateBackend> {
      const s = openPolicyState({ dbPath: location, auditFile, clock: clock.now });
      open.push(s);
      await s.ready();
      return s;
    }

    it('files, finds, decides and uses an approval exactly once', async () => {
      const st = await connect(await backend.create());
      const first = await st.approvals.request(binding());
      assert.equal(first.state, 'new');
      assert.equal(first.row.status, 'pending');
      assert.match(first.row.id, /^apr_[0-9a-f]{12}$/);
      const again = await st.approvals.request(binding());
      assert.deepEqual([again.state, again.row.id], ['pending', first.row.id]);
      assert.deepEqual((await st.approvals.list()).map((r) => r.id), [first.row.id]);
      assert.deepEqual(await st.approvals.get(first.row.id), first.row);

      const decided = await st.approvals.decide(first.row.id, 'approved', 'cli:bob', 'looks fine');
      assert.deepEqual([decided.status, decided.decided_by, decided.reason], ['approved', 'cli:bob', 'looks fine']);
      assert.deepEqual(await st.approvals.list(), []);
      const found = await st.approvals.request(binding());
      assert.deepEqual([found.state, found.row.id], ['approved', first.row.id]);
      assert.equal(await st.approvals.consume(first.row.id), true);
      assert.equal(await st.approvals.consume(first.row.id), false, 'single use');
      assert.equal((await st.approvals.get(first.row.id))?.status, 'consumed');
      assert.equal((await st.approvals.request(binding())).state, 'new', 'a used approval lets nothing else through');
      await assert.rejects(st.approvals.decide(first.row.id, 'denied', 'cli:bob'), /is consumed, not pending/);
      await assert.rejects(st.approvals.decide('apr_000000000000', 'approved', 'cli:bob'), /no approval with id apr_000000000000/);
      assert.equal(await st.approvals.get('apr_000000000000'), undefined);
      assert.deepEqual((await st.approvals.list({ status: 'all' })).map((r) => r.status).sort(), ['consumed', 'pending']);
    });

    it('binds session, identity, tool and argument hash: any other call files its own approval', async () => {
      const st = await connect(await backend.create());
      const { row } = await st.approvals.request(binding());
      await st.approvals.decide(row.id, 'approved', 'cli:bob');
      for (const other of [{ tool: 'delete' }, { argsHash: 'h2' }, { identity: 'mallory' }, { session: 's2' }]) {
        const r = await st.approvals.request(binding(other));
        assert.equal(r.state, 'new', `other ${Object.keys(other)[0]}`);
        assert.notEqual(r.row.id, row.id);
      }
      assert.equal((await st.approvals.get(row.id))?.status, 'approved', 'still unused');
      assert.deepEqual([(await st.approvals.request(binding())).row.id], [row.id]);
    });

    it('expires by the clock: pending and approved-but-unused approvals', async () => {
      const clock = new Clock();
      const st = await connect(await backend.create(), clock);
      const a = (await st.approvals.request(binding({ timeoutMs: 1000 }))).row;
      clock.t += 1000;
      assert.deepEqual(await st.approvals.list(), []);
      assert.equal((await st.approvals.get(a.id))?.status, 'expired');
      await assert.rejects(st.approvals.decide(a.id, 'approved', 'cli:bob'), /is expired, not pending/);
      const b = await st.approvals.request(binding({ timeoutMs: 1000 }));
      assert.equal(b.state, 'new');
      assert.deepEqual(await st.approvals.wait(a.id), { status: 'expired' });

      await st.approvals.decide(b.row.id, 'approved', 'cli:bob');
      clock.t += 10 * 60_000 + 1; // past the grace an approved approval keeps
      assert.equal((await st.approvals.request(binding())).state, 'new');
      assert.equal((await st.approvals.get(b.row.id))?.status, 'expired');
      assert.equal(await st.approvals.consume(b.row.id), false);

      const c = (await st.approvals.request(binding({ tool: 'other', timeoutMs: 500 }))).row;
      const waiting = st.approvals.wait(c.id);
      clock.t += 500;
      assert.deepEqual(await waiting, { status: 'expired' });
    });

    it('a decision by another connection wakes the waiter', async () => {
      const location = await backend.create();
      const gateway = await connect(location);
      const cli = await connect(location);
      const { row } = await gateway.approvals.request(binding());
      let outcome: unknown;
      const waiting = gateway.approvals.wait(row.id).then((o) => (outcome = o));
      const denied = await gateway.approvals.request(binding({ tool: 'other' }));
      const waitingDenied = gateway.approvals.wait(denied.row.id);
      await cli.approvals.decide(row.id, 'approved', 'cli:bob');
      await waitFor(() => outcome !== undefined, 20_000, 10, 'the waiter to wake');
      assert.deepEqual(await waiting, { status: 'approved', decidedBy: 'cli:bob' });
      assert.equal(await gateway.approvals.consume(row.id), true);
      await cli.approvals.decide(denied.row.id, 'denied', 'cli:bob', 'not today');
      assert.deepEqual(await waitingDenied, { status: 'denied', reason: 'not today', decidedBy: 'cli:bob' });

      const ctl = new AbortController();
      const third = (await gateway.approvals.request(binding({ tool: 'third' }))).row;
      const cancelled = gateway.approvals.wait(third.id, ctl.signal);
      ctl.abort();
      assert.deepEqual(await cancelled, { status: 'cancelled' });
    });

    it('appends audit records and queries them with the same filters', async () => {
      const location = await backend.create();
      const jsonl = join(tmp.dir, `audit-${n++}.jsonl`);
      const gateway = await connect(location, new Clock(), jsonl);
      const cli = await connect(location);
      const recs = [
        record({ ts: '2026-12-01T10:00:00.000Z', tool: 'read', decision: 'allow' }),
        record({ ts: '2026-12-01T11:00:00.000Z', tool: 'write', decision: 'deny', reason: 'not allowed', upstream: 'not_forwarded', session: 's2', identity: 'bob' }),
        record({ ts: '2026-12-01T12:00:00.000Z', tool: 'write', decision: 'approved', args: { path: '/tmp/x' }, policy_hash: 'abc', approval_id: 'apr_1' }),
      ];
      await gateway.audit.append(recs[0]!, true);
      gateway.audit.append(recs[1]!);
      gateway.audit.append(recs[2]!);
      await gateway.audit.flush();
      assert.deepEqual(await cli.audit.query({}), recs);
      assert.deepEqual(await cli.audit.query({ tool: 'write' }), recs.slice(1));
      assert.deepEqual(await cli.audit.query({ decision: 'deny' }), [recs[1]]);
      assert.deepEqual(await cli.audit.query({ session: 's2' }), [recs[1]]);
      assert.deepEqual(await cli.audit.query({ since: '2026-12-01T11:00:00.000Z' }), recs.slice(1));
      assert.deepEqual(await cli.audit.query({ limit: 2 }), recs.slice(1), 'the most recent, oldest first');
      assert.deepEqual(await cli.audit.query({ tool: 'write', decision: 'allow' }), []);
      assert.deepEqual(await cli.audit.query({ identity: 'bob' }), [recs[1]]);
      assert.deepEqual(await cli.audit.query({ until: '2026-12-01T12:00:00.000Z' }), recs.slice(0, 2), 'until is exclusive');
      assert.deepEqual(await cli.audit.query({ limit: 1, offset: 1 }), [recs[1]], 'the second most recent');
      assert.deepEqual(await cli.audit.query({ limit: 2, offset: 2 }), [recs[0]]);
      assert.deepEqual(await cli.audit.query({ offset: 3 }), []);
      assert.deepEqual(readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l)), recs);
    });

    it("a tenant's server stamps its tenant on every record it audits; query and page filter by it", async () => {
      const location = await backend.create();
      const alpha = openPolicyState({ dbPath: location, auditFile: false, tenant: 'alpha' });
      const beta = openPolicyState({ dbPath: location, auditFile: false, tenant: 'beta' });
      open.push(alpha, beta);
      await Promise.all([alpha.ready(), beta.ready()]);
      const gateway = await connect(location);
      await alpha.audit.append(record({ ts: '2026-12-01T10:00:00.000Z', tool: 'a1' }), true);
      await beta.audit.append(record({ ts: '2026-12-01T10:01:00.000Z', tool: 'b1' }), true);
      // a stand-alone gateway has no tenant; a record that names its tenant keeps it
      await gateway.audit.append(record({ ts: '2026-12-01T10:02:00.000Z', tool: 'g1' }), true);
      alpha.audit.append(record({ ts: '2026-12-01T10:03:00.000Z', tool: 'a2', tenant: 'named' }));
      await alpha.audit.flush();
      const tools = (rows: AuditRecord[]) => rows.map((r) => `${r.tool}:${r.tenant ?? '-'}`);
      assert.deepEqual(tools(await gateway.audit.query({})), ['a1:alpha', 'b1:beta', 'g1:-', 'a2:named']);
      assert.deepEqual(tools(await gateway.audit.query({ tenant: 'alpha' })), ['a1:alpha']);
      assert.deepEqual(tools(await gateway.audit.query({ tenant: 'beta', tool: 'b1' })), ['b1:beta']);
      assert.deepEqual(tools((await gateway.audit.page({ tenant: 'beta' }, 10)).records), ['b1:beta']);
      assert.deepEqual(tools((await gateway.audit.page({ tenant: 'nobody' }, 10)).records), []);
    });

    it('a sync append is written before it returns (or resolves)', async () => {
      const location = await backend.create();
      const gateway = await connect(location);
      const cli = await connect(location);
      const r = record({ tool: 'sync-one' });
      await gateway.audit.append(r, true);
      assert.deepEqual(await cli.audit.query({ tool: 'sync-one' }), [r]);
    });

    it('keeps one argument-hash key for every connection to the store', async () => {
      const location = await backend.create();
      const a = await connect(location);
      const b = await connect(location);
      assert.equal(a.hashKey.length, 32);
      assert.deepEqual(b.hashKey, a.hashKey);
    });
  });
}

describe('policy state on an unreachable PostgreSQL server fails closed', () => {
  it('refuses to start with a readable reason', async () => {
    const url = `postgres://nobody:secret@127.0.0.1:${await freePort()}/policy`;
    const st = openPolicyState({ dbPath: url, auditFile: false });
    try {
      await assert.rejects(st.ready(), (e: Error) => {
        assert.equal(e.name, 'PolicyStateUnavailableError');
        assert.match(e.message, /^policy state: PostgreSQL store postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:\d+\/policy: cannot reach the server \(ECONNREFUSED/);
        assert.doesNotMatch(e.message, /secret/);
        return true;
      });
      assert.throws(() => st.hashKey, /not loaded/);
    } finally {
      await st.close();
    }
  });

  it('denies approvals with the reason once the server has gone away, and a waiter is denied, never approved', async () => {
    // a server of its own: the other tests keep theirs
    const server = await PostgresServer.start();
    after(() => server.stop());
    const location = await server.createDatabase('policy');
    const clock = new Clock();
    const st = openPolicyState({ dbPath: location, auditFile: false, clock: clock.now });
    try {
      await st.ready();
      const { row } = await st.approvals.request(binding());
      const waiting = st.approvals.wait(row.id);
      await server.stop();
      const outcome = await waiting;
      assert.equal(outcome.status, 'denied');
      assert.match(outcome.reason ?? '', /^policy state error: PostgreSQL store postgres:\/\/.*: (cannot reach the server|the server refused work)/);
      await assert.rejects(st.approvals.request(binding({ tool: 'x' })), /^Error: PostgreSQL store postgres:\/\/.*: (cannot reach the server|the server refused work)/);
      await assert.rejects(st.approvals.consume(row.id), /PostgreSQL store/);
    } finally {
      await st.close();
    }
  });
});

describe('policy state on PostgreSQL: LISTEN/NOTIFY', () => {
  it('wakes a waiter by NOTIFY alone when another process decides (polling effectively off)', async () => {
    const location = await (await pg()).createDatabase('policy_notify');
    const gateway = new PgPolicyState({ url: location, auditFile: false, approvalPollMs: 2_000_000_000 });
    const cli = openPolicyState({ dbPath: location, auditFile: false });
    try {
      await gateway.ready();
      await cli.ready();
      const { row } = await gateway.approvals.request(binding());
      let outcome: unknown;
      const waiting = gateway.approvals.wait(row.id).then((o) => (outcome = o));
      assert.equal(await gateway.approvals.listenerReady(), true);
      assert.equal(outcome, undefined, 'still pending');
      await cli.approvals.decide(row.id, 'denied', 'cli:bob', 'no');
      await waitFor(() => outcome !== undefined, 20_000, 10, 'NOTIFY to wake the waiter');
      assert.deepEqual(await waiting, { status: 'denied', reason: 'no', decidedBy: 'cli:bob' });
    } finally {
      await gateway.close();
      await cli.close();
    }
  });
});

/**
 * Session handles and the audit's upstream name on every policy-state backend: the SQLite store, the
 * PostgreSQL store, and Redis (with a SQLite store for the audit, as `--state redis://` runs).
 */
let redis: TestRedis | undefined;
let redisDb = 0;
after(async () => redis?.stop());
const everyBackend = [
  { name: 'sqlite', create: async () => ({ dbPath: join(tmp.dir, `handles-${n++}.db`) }) },
  { name: 'postgres', create: async () => ({ dbPath: await (await pg()).createDatabase('handles') }) },
  {
    name: 'redis',
    async create() {
      redis ??= await startRedis();
      if (redisDb > 15) throw new Error('the test Redis has 16 databases; use fewer Redis tests or flush one');
      return { dbPath: join(tmp.dir, `handles-${n++}.db`), stateUrl: redis.url.replace(/\/0$/, `/${redisDb++}`) };
    },
  },
];

for (const backend of everyBackend) {
  describe(`session handles and audit upstream on ${backend.name}`, () => {
    const open: PolicyStateBackend[] = [];
    after(async () => {
      for (const s of open) await s.close();
    });
    async function connect(location: { dbPath: string; stateUrl?: string }, clock = new Clock(), auditFile: string | false = false): Promise<PolicyStateBackend> {
      // Redis as openPolicyState builds it, without the 2 s recovery hold a fresh database starts with.
      const store = openPolicyState({ dbPath: location.dbPath, auditFile, clock: clock.now });
      const s = location.stateUrl
        ? new RedisPolicyState({ url: location.stateUrl, audit: store.audit, closeAudit: () => store.close(), clock: clock.now, recoveryHoldMs: 0 })
        : store;
      open.push(s);
      await s.ready();
      return s;
    }
    const limits = { maxLive: 2, ttlMs: 60_000 };

    it('admits up to maxLive live handles per identity, renews a held one, and refuses the next without changing anything', async () => {
      const clock = new Clock();
      const st = await connect(await backend.create(), clock);
      const h = st.sessionHandles;
      assert.deepEqual(await h.touch('alice', 'a', limits), { ok: true, fresh: true, live: 1 });
      clock.t += 10_000;
      assert.deepEqual(await h.touch('alice', 'b', limits), { ok: true, fresh: true, live: 2 });
      assert.deepEqual(await h.touch('alice', 'a', limits), { ok: true, fresh: false, live: 2 }, 'a held handle is renewed');
      clock.t += 5_000;
      // Oldest use is b at t+10s; a was renewed at t+10s as well, so the first slot frees 60s after that.
      assert.deepEqual(await h.touch('alice', 'c', limits), { ok: false, live: 2, retryAfterMs: 55_000 });
      assert.deepEqual(await h.live('alice', limits.ttlMs), ['a', 'b'].sort(), 'the refused handle was not registered');
      assert.deepEqual(await h.touch('bob', 'c', limits), { ok: true, fresh: true, live: 1 }, "another identity's handles are its own");
      assert.deepEqual(await h.touch('bob', 'a', limits), { ok: true, fresh: true, live: 2 }, 'the same handle under another identity is another handle');
    });

    it('a handle stays live until ttl after its last use, then frees its slot', async () => {
      const clock = new Clock();
      const st = await connect(await backend.create(), clock);
      const h = st.sessionHandles;
      await h.touch('alice', 'a', limits);
      clock.t += 30_000;
      await h.touch('alice', 'b', limits);
      clock.t += 29_999; // a: 59.999 s since its use, still live
      assert.equal((await h.touch('alice', 'c', limits)).ok, false);
      clock.t += 1; // a: exactly ttl since its use: gone
      assert.deepEqual(await h.live('alice', limits.ttlMs), ['b']);
      assert.deepEqual(await h.touch('alice', 'c', limits), { ok: true, fresh: true, live: 2 });
      assert.deepEqual(await h.live('alice', limits.ttlMs), ['b', 'c']);
      clock.t += 60_000;
      assert.deepEqual(await h.touch('alice', 'a', limits), { ok: true, fresh: true, live: 1 }, 'an expired handle comes back as a new one');
    });

    it('two connections (replicas) share one cap, and concurrent touches never admit more than maxLive', async () => {
      const location = await backend.create();
      const clock = new Clock();
      const a = await connect(location, clock);
      const b = await connect(location, clock);
      assert.equal((await a.sessionHandles.touch('alice', 'x', limits)).ok, true);
      assert.deepEqual(await b.sessionHandles.touch('alice', 'x', limits), { ok: true, fresh: false, live: 1 }, 'the other replica sees the handle');
      const wide = { maxLive: 5, ttlMs: 60_000 };
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).sessionHandles.touch('carol', `h${i}`, wide)),
      );
      assert.equal(results.filter((r) => r.ok).length, 5);
      assert.equal((await a.sessionHandles.live('carol', wide.ttlMs)).length, 5);
    });

    it('audit records keep upstreamName, in the table, in the JSONL file, and as a filter', async () => {
      const location = await backend.create();
      const jsonl = join(tmp.dir, `audit-upstream-${n++}.jsonl`);
      const gateway = await connect(location, new Clock(), jsonl);
      const recs = [
        record({ ts: '2026-12-01T10:00:00.000Z', tool: 'read', upstreamName: 'triage' }),
        record({ ts: '2026-12-01T11:00:00.000Z', tool: 'write', upstreamName: 'github', decision: 'deny', upstream: 'not_forwarded', reason: 'no' }),
        record({ ts: '2026-12-01T12:00:00.000Z', tool: 'read' }),
      ];
      await gateway.audit.append(recs[0]!, true);
      await gateway.audit.append(recs[1]!, true);
      gateway.audit.append(recs[2]!);
      await gateway.audit.flush();
      assert.deepEqual(await gateway.audit.query({}), recs);
      assert.deepEqual(await gateway.audit.query({ upstreamName: 'github' }), [recs[1]]);
      assert.deepEqual(readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l)), recs);
    });

    it('approvals record the upstream they are for, and the upstream is part of the binding', async () => {
      const location = await backend.create();
      const gateway = await connect(location);
      const cli = await connect(location);
      const github = await gateway.approvals.request(binding({ upstreamName: 'github' }));
      assert.equal(github.state, 'new');
      assert.equal(github.row.upstream_name, 'github');
      assert.equal((await cli.approvals.get(github.row.id))?.upstream_name, 'github', 'read back by another connection');
      const single = await gateway.approvals.request(binding());
      assert.equal(single.state, 'new', 'a call without an upstream name is another binding');
      assert.equal(single.row.upstream_name, null);
      await cli.approvals.decide(github.row.id, 'approved', 'cli:bob');
      const other = await gateway.approvals.request(binding({ upstreamName: 'gitlab' }));
      assert.equal(other.state, 'new', "an approval for one upstream's tool never lets another upstream's same-named tool through");
      assert.deepEqual([(await gateway.approvals.request(binding({ upstreamName: 'github' }))).state], ['approved']);
      const listed = await cli.approvals.list({ status: 'all' });
      assert.deepEqual(
        listed.map((r) => [r.id, r.upstream_name]).sort(),
        [[github.row.id, 'github'], [single.row.id, null], [other.row.id, 'gitlab']].sort(),
      );
    });

    it('approvals record the tenant whose server held them; the tenant is part of the binding, and list() filters by it', async () => {
      const location = await backend.create();
      const alphaServer = await connect(location);
      const betaServer = await connect(location);
      const cli = await connect(location);
      const alpha = await alphaServer.approvals.request(binding({ tenant: 'alpha' }));
      assert.deepEqual([alpha.state, alpha.row.tenant], ['new', 'alpha']);
      assert.equal((await cli.approvals.get(alpha.row.id))?.tenant, 'alpha', 'read back by another connection');
      const beta = await betaServer.approvals.request(binding({ tenant: 'beta' }));
      assert.equal(beta.state, 'new', "the same call in another tenant is another binding: it never shares alpha's approval");
      const gateway = await cli.approvals.request(binding());
      assert.deepEqual([gateway.state, gateway.row.tenant], ['new', null], 'a stand-alone gateway records no tenant');
      await cli.approvals.decide(alpha.row.id, 'approved', 'cli:bob');
      assert.equal((await betaServer.approvals.request(binding({ tenant: 'beta' }))).state, 'pending', "alpha's approval lets no beta call through");
      assert.equal((await alphaServer.approvals.request(binding({ tenant: 'alpha' }))).state, 'approved');
      const ids = async (opts: Parameters<typeof cli.approvals.list>[0]) => (await cli.approvals.list(opts)).map((r) => r.id).sort();
      assert.deepEqual(await ids({ status: 'pending', tenant: 'beta' }), [beta.row.id]);
      assert.deepEqual(await ids({ status: 'all', tenant: 'alpha' }), [alpha.row.id]);
      assert.deepEqual(await ids({ status: 'pending', tenant: 'alpha' }), [], "alpha's only call is approved");
      assert.deepEqual(await ids({ status: 'all', tenant: 'gamma' }), []);
      assert.deepEqual(await ids({ status: 'all' }), [alpha.row.id, beta.row.id, gateway.row.id].sort(), 'no tenant given: every row (the administrator\'s view)');
    });

    it("a tenant's older approval is listed however many newer ones other tenants filed", async () => {
      const clock = new Clock();
      const st = await connect(await backend.create(), clock);
      const own = await st.approvals.request(binding({ tenant: 'alpha', argsHash: 'alpha-call' }));
      // more than the 2,000 newest ids Redis's shared index was read for before, all newer than alpha's
      for (let i = 0; i < 2_100; i++) {
        clock.t += 1;
        await st.approvals.request(binding({ tenant: 'beta', argsHash: `beta-${i}` }));
      }
      assert.deepEqual((await st.approvals.list({ status: 'pending', tenant: 'alpha' })).map((r) => r.id), [own.row.id]);
      assert.equal((await st.approvals.list({ status: 'pending', tenant: 'beta' })).length, 500, 'at most 500, as before');
    });

    it('withdraws a pending approval once: no one can decide it, it is not found again, and a waiter on another connection learns it', async () => {
      const location = await backend.create();
      const gateway = await connect(location);
      const cli = await connect(location);
      const { row } = await gateway.approvals.request(binding({ tool: 'withdrawn' }));
      const waiting = cli.approvals.wait(row.id);
      assert.equal(await gateway.approvals.withdraw(row.id, 'withdrawn: the client cancelled the call'), true);
      assert.equal((await waiting).status, 'expired');
      assert.equal(await gateway.approvals.withdraw(row.id, 'again'), false, 'once');
      await assert.rejects(cli.approvals.decide(row.id, 'approved', 'cli:bob'), /is expired, not pending/);
      const read = await cli.approvals.get(row.id);
      assert.deepEqual([read?.status, read?.reason], ['expired', 'withdrawn: the client cancelled the call']);
      const again = await gateway.approvals.request(binding({ tool: 'withdrawn' }));
      assert.equal(again.state, 'new');
      assert.notEqual(again.row.id, row.id);
      // approved between the cancel and the withdrawal: withdrawn all the same, so no later call spends it
      await cli.approvals.decide(again.row.id, 'approved', 'cli:bob');
      assert.equal(await gateway.approvals.withdraw(again.row.id, 'withdrawn: the client cancelled the call'), true);
      assert.equal(await gateway.approvals.consume(again.row.id), false);
      assert.equal((await gateway.approvals.request(binding({ tool: 'withdrawn' }))).state, 'new');
      // used or denied: nothing to withdraw
      const third = (await gateway.approvals.request(binding({ tool: 'used' }))).row;
      await cli.approvals.decide(third.id, 'approved', 'cli:bob');
      assert.equal(await gateway.approvals.consume(third.id), true);
      assert.equal(await gateway.approvals.withdraw(third.id, 'late'), false);
      const fourth = (await gateway.approvals.request(binding({ tool: 'denied' }))).row;
      await cli.approvals.decide(fourth.id, 'denied', 'cli:bob');
      assert.equal(await gateway.approvals.withdraw(fourth.id, 'late'), false);
      assert.equal((await cli.approvals.get(fourth.id))?.status, 'denied');
      assert.equal(await gateway.approvals.withdraw('apr_0000000000000000', 'none'), false, 'an unknown id');
    });

    it('an approved approval past its deadline is used by nobody, even with nothing in between to mark it expired', async () => {
      const clock = new Clock();
      const st = await connect(await backend.create(), clock);
      const a = (await st.approvals.request(binding({ tool: 'late', timeoutMs: 1000 }))).row;
      const decided = await st.approvals.decide(a.id, 'approved', 'cli:bob');
      clock.t = decided.expires_at;
      assert.equal(await st.approvals.consume(a.id), false);
      clock.t = decided.expires_at - 1;
      assert.equal(await st.approvals.consume(a.id), true, 'a millisecond before its deadline it is used once');
      assert.equal(await st.approvals.consume(a.id), false);
    });

    it('fails closed: a touch on a backend that cannot be reached throws its reason', async () => {
      const st = await connect(await backend.create());
      await st.close();
      open.splice(open.indexOf(st), 1);
      await assert.rejects(async () => st.sessionHandles.touch('alice', 'a', limits));
    });
  });
}

describe('SQLite store from before upstream names and session handles', () => {
  it('migrates: old audit rows read without upstreamName, new ones keep it, handles work', async () => {
    const dbPath = join(tmp.dir, `old-policy-${n++}.db`);
    const old = openSqlite(dbPath);
    migrate(old, POLICY_MIGRATIONS.filter((m) => m.version === 100));
    old.prepare(`INSERT INTO policy_audit(ts, session, identity, tool, args_hash, decision, rule, latency_ms, upstream) VALUES ('2026-12-01T09:00:00.000Z', 's', 'i', 'old', 'h', 'allow', 'r', 1, 'ok')`).run();
    old.close();
    const st = openPolicyState({ dbPath, auditFile: false });
    try {
      await st.audit.append(record({ tool: 'new', upstreamName: 'triage' }), true);
      assert.deepEqual((await st.audit.query({})).map((r) => [r.tool, r.upstreamName]), [['old', undefined], ['new', 'triage']]);
      assert.equal((await st.sessionHandles.touch('i', 'h', { maxLive: 1, ttlMs: 1000 })).ok, true);
    } finally {
      await st.close();
    }
  });
});

/** An approval row as the policy state wrote it before upstream names: no upstream_name column. */
const OLD_APPROVAL = `INSERT INTO policy_approvals (id, created_at, expires_at, status, session, identity, tool, args_hash, args_preview, rule)
  VALUES ('apr_0123456789ab', ${Date.UTC(2026, 11, 1, 12)}, ${Date.UTC(2026, 11, 1, 13)}, 'pending', 's1', 'alice', 'write', 'h1', '{"a":1}', 'tools.write')`;

/** Reads the old row, finds it again for the same single-upstream call, and decides it. */
async function oldApprovalStaysUsable(st: PolicyStateBackend): Promise<void> {
  const old = await st.approvals.get('apr_0123456789ab');
  assert.deepEqual([old?.status, old?.tool, old?.upstream_name], ['pending', 'write', null]);
  assert.deepEqual((await st.approvals.list()).map((r) => [r.id, r.upstream_name]), [['apr_0123456789ab', null]]);
  const again = await st.approvals.request(binding());
  assert.deepEqual([again.state, again.row.id], ['pending', 'apr_0123456789ab'], 'a single-upstream call still finds its old approval');
  assert.equal((await st.approvals.request(binding({ upstreamName: 'github' }))).state, 'new');
  assert.equal((await st.approvals.decide('apr_0123456789ab', 'approved', 'cli:bob')).upstream_name, null);
}

describe('approvals filed before upstream names stay readable', () => {
  it('SQLite: migration 103 keeps old rows, with no upstream name', async () => {
    const dbPath = join(tmp.dir, `old-approvals-${n++}.db`);
    const old = openSqlite(dbPath);
    migrate(old, POLICY_MIGRATIONS.filter((m) => m.version < 103));
    old.prepare(OLD_APPROVAL).run();
    old.close();
    const clock = new Clock();
    const st = openPolicyState({ dbPath, auditFile: false, clock: clock.now });
    try {
      await oldApprovalStaysUsable(st);
    } finally {
      await st.close();
    }
  });

  it('PostgreSQL: migration 10 keeps old rows, with no upstream name', async () => {
    const location = await (await pg()).createDatabase('old_approvals');
    const pool = createPool(location);
    try {
      await migratePostgres(pool, PG_MIGRATIONS.filter((m) => m.version < 10));
      await pool.query(OLD_APPROVAL);
    } finally {
      await pool.end();
    }
    const clock = new Clock();
    const st = openPolicyState({ dbPath: location, auditFile: false, clock: clock.now });
    try {
      await st.ready();
      await oldApprovalStaysUsable(st);
    } finally {
      await st.close();
    }
  });
});
