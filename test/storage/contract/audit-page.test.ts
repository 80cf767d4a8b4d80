import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';
import { openPolicyState } from '../../../src/storage/open-policy-state.js';
import { parseAuditFilter } from '../../../src/policy/audit-filter.js';
import { CursorError } from '../../../src/storage/detection-cursor.js';
import type { AuditDecision, AuditRecord, PolicyStateBackend } from '../../../src/storage/policy-state.js';

/**
 * The Audit page's query (AuditSink.page), identical on SQLite and PostgreSQL: filters by tool,
 * decision, identity, upstream and time range (parsed by policy/audit-filter.ts), newest first,
 * paged by keyset. The audit always lives in the store (Redis state keeps none), so these two cover
 * every deployment.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const pg = usePostgres();
const T = Date.UTC(2026, 11, 1, 12);
const NOW = T + 3_600_000;

const TOOLS = ['read', 'write', 'delete'];
const DECISIONS: AuditDecision[] = ['allow', 'deny', 'rate_limited', 'approved'];
const RECORDS: AuditRecord[] = Array.from({ length: 40 }, (_, i) => ({
  ts: new Date(T + i * 60_000).toISOString(),
  session: `s${i % 3}`,
  identity: i % 2 ? 'alice' : 'bob',
  tool: TOOLS[i % 3]!,
  args_hash: `h${i}`,
  decision: DECISIONS[i % 4]!,
  rule: `tools.${TOOLS[i % 3]}`,
  latency_ms: i,
  upstream: 'ok',
  ...(i % 5 === 0 ? { upstreamName: 'github' } : {}),
  ...(i === 7 ? { reason: 'over the limit', args: { path: '/etc' } } : {}),
}));

const stores = [
  { name: 'sqlite', create: async () => join(tmp.dir, 'audit.db') },
  { name: 'postgres', create: async () => (await pg()).createDatabase('audit') },
];

for (const backend of stores) {
  describe(`audit pages on ${backend.name}`, () => {
    let st: PolicyStateBackend;
    after(async () => st?.close());

    async function pages(raw: Parameters<typeof parseAuditFilter>[0], limit: number): Promise<AuditRecord[][]> {
      const f = parseAuditFilter(raw, { now: NOW });
      const out: AuditRecord[][] = [];
      let cursor: string | null = null;
      do {
        const p = await st.audit.page(f, limit, cursor);
        out.push(p.records.map(({ seq: _seq, ...r }) => r));
        cursor = p.nextCursor;
      } while (cursor && out.length < 100);
      return out;
    }

    it('every filter, alone and together, pages through exactly its records, newest first', async () => {
      st = openPolicyState({ dbPath: await backend.create(), auditFile: false });
      await st.ready();
      for (const r of RECORDS) await st.audit.append(r);
      const cases: [Parameters<typeof parseAuditFilter>[0], (r: AuditRecord) => boolean][] = [
        [{}, () => true],
        [{ tool: 'write' }, (r) => r.tool === 'write'],
        [{ decision: 'deny' }, (r) => r.decision === 'deny'],
        [{ identity: 'alice' }, (r) => r.identity === 'alice'],
        [{ upstream: 'github' }, (r) => r.upstreamName === 'github'],
        [{ since: new Date(T + 10 * 60_000).toISOString(), until: new Date(T + 20 * 60_000).toISOString() }, (r) => r.ts >= new Date(T + 10 * 60_000).toISOString() && r.ts < new Date(T + 20 * 60_000).toISOString()],
        [{ tool: 'read', identity: 'bob', since: '50m' }, (r) => r.tool === 'read' && r.identity === 'bob' && r.ts >= new Date(NOW - 50 * 60_000).toISOString()],
        [{ tool: 'nosuch' }, () => false],
      ];
      for (const [raw, keep] of cases) {
        const want = RECORDS.filter(keep).reverse();
        for (const limit of [1, 7, 100]) {
          const got = await pages(raw, limit);
          assert.deepEqual(got.flat(), want, `${JSON.stringify(raw)}, pages of ${limit}`);
          assert.ok(got.slice(0, -1).every((p) => p.length === limit));
        }
      }
    });

    it('a record keeps its reason, arguments and upstream; a bad cursor is refused', async () => {
      const p = await st.audit.page(parseAuditFilter({ decision: 'approved', identity: 'alice' }, { now: NOW }), 50);
      const seven = p.records.find((r) => r.args_hash === 'h7')!;
      assert.deepEqual([seven.reason, seven.args], ['over the limit', { path: '/etc' }]);
      assert.ok(p.records.every((r, i) => i === 0 || r.seq < p.records[i - 1]!.seq));
      await assert.rejects(async () => st.audit.page({}, 5, 'garbage'), CursorError);
    });
  });
}
