import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cliResult, tempDir } from '../helpers.js';
import { usePostgres } from '../helpers/postgres.js';
import { sameDataOnBothStores } from '../helpers/both-stores.js';

/**
 * `stats`, `detections list` and `baseline show` read through the backend picker: the same data
 * ingested into SQLite and into PostgreSQL gives the same --json output from each command (apart
 * from the store's own name), the same paging, and the same errors and exit codes.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();
let sqlite = '';
let pgUrl = '';

const cli = cliResult;

before(async () => {
  ({ sqlite, pgUrl } = await sameDataOnBothStores(tmp.dir, await server(), { database: 'reads', seed: 11, events: 6000, learningRuns: 3 }));
});

/** Runs the command on both stores and returns the two parsed --json outputs. */
async function both(args: string[]): Promise<[Record<string, unknown>, Record<string, unknown>]> {
  const out: Record<string, unknown>[] = [];
  for (const db of [sqlite, pgUrl]) {
    const r = await cli([...args, '--db', db, '--json']);
    assert.equal(r.status, 0, `${args.join(' ')} on ${db === sqlite ? 'SQLite' : 'PostgreSQL'}: ${r.stderr}`);
    out.push(JSON.parse(r.stdout) as Record<string, unknown>);
  }
  return [out[0]!, out[1]!];
}

test('stats: the same counts on SQLite and PostgreSQL', async () => {
  const [s, p] = await both(['stats']);
  assert.equal(s.db, sqlite);
  assert.match(String(p.db), /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/reads_/);
  const { db: _s, ...sRest } = s;
  const { db: _p, ...pRest } = p;
  assert.ok((sRest.jobs as number) > 0 && (sRest.detections as unknown[]).length > 0, 'the data has jobs and detections');
  assert.ok((sRest.learningJobs as number) < (sRest.jobs as number), 'some jobs are past the learning window');
  assert.deepEqual(pRest, sRest);
});

test('detections list: the same pages, followed by cursor, with and without filters', async () => {
  type Page = { total: number; returned: number; next_cursor: string | null; detections: Record<string, unknown>[] };
  const first = await cli(['detections', 'list', '--db', sqlite, '--json', '--limit', '1']);
  const owner = (JSON.parse(first.stdout) as Page).detections[0]!.owner as string;
  // owner in capitals: both backends compare it case-insensitively
  for (const filter of [[], ['--status', 'new', '--type', 'New-Outbound-Network-Call'], ['--process', 'tailscaled'], ['--owner', owner.toUpperCase()]]) {
    // Three pages or so, whatever the filter selects: paging is compared, not page size.
    const probe = await cli(['detections', 'list', '--db', sqlite, '--json', '--limit', '1', ...filter]);
    const limit = String(Math.max(1, Math.ceil((JSON.parse(probe.stdout) as Page).total / 3)));
    const seen: [unknown[], unknown[]] = [[], []];
    const cursors: [string | null, string | null] = [null, null];
    let total = -1;
    for (let page = 0; page < 10; page++) {
      const pages: Page[] = [];
      for (const [i, db] of [sqlite, pgUrl].entries()) {
        const r = await cli(['detections', 'list', '--db', db, '--json', '--limit', limit, ...filter, ...(cursors[i] ? ['--cursor', cursors[i]!] : [])]);
        assert.equal(r.status, 0, r.stderr);
        pages.push(JSON.parse(r.stdout) as Page);
      }
      const [s, p] = pages as [Page, Page];
      assert.equal(p.total, s.total, `${filter.join(' ')}: total`);
      total = s.total;
      seen[0].push(...s.detections);
      seen[1].push(...p.detections);
      cursors[0] = s.next_cursor;
      cursors[1] = p.next_cursor;
      assert.equal(p.next_cursor === null, s.next_cursor === null);
      if (!s.next_cursor) break;
    }
    assert.equal(seen[0].length, total, `${filter.join(' ')}: every detection once`);
    assert.deepEqual(seen[1], seen[0], `${filter.join(' ')}: the same detections in the same order`);
    assert.ok(total > 3, `${filter.join(' ')}: selects several pages' worth (${total})`);
  }
});

test('detections list: a bad cursor is a usage error on both backends', async () => {
  for (const db of [sqlite, pgUrl]) {
    const r = await cli(['detections', 'list', '--db', db, '--cursor', 'bm90LWEtY3Vyc29y']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^egress-triage: --cursor: invalid cursor "bm90LWEtY3Vyc29y"/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    // the next_cursor of one listing, handed to another: refused, not a page that skips matches
    const first = await cli(['detections', 'list', '--db', db, '--json', '--limit', '1', '--process', 'tailscaled']);
    const cursor = JSON.parse(first.stdout).next_cursor as string;
    const other = await cli(['detections', 'list', '--db', db, '--endpoint', 'webhook.site', '--cursor', cursor]);
    assert.equal(other.status, 2, other.stderr);
    assert.equal(other.stdout, '');
    assert.match(other.stderr, /^egress-triage: --cursor: cursor "[\w-]+" was issued for another query \(the tenant or a filter differs\): pass the next_cursor of the previous page of this same query/);
  }
});

test('baseline show: the same baselines on both backends; unknown repository is not found on both', async () => {
  const [list] = await both(['detections', 'list', '--limit', '1', '--type', 'New-Outbound-Network-Call']);
  const d = (list.detections as { owner: string; repo: string }[])[0]!;
  for (const extra of [[], ['--all']]) {
    const [s, p] = await both(['baseline', 'show', '--owner', d.owner, '--repo', d.repo, ...extra]);
    assert.ok((s.jobs as { endpoints: unknown[] }[]).some((j) => j.endpoints.length > 0), 'a learned baseline');
    assert.deepEqual(p, s);
  }
  for (const db of [sqlite, pgUrl]) {
    const r = await cli(['baseline', 'show', '--owner', 'nobody', '--repo', 'nothing', '--db', db]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /no jobs found for nobody\/nothing in tenant "default"/);
  }
});

test('baseline expect / unexpect: the same jobs change on both backends, and a risky destination is refused on both', async () => {
  const [list] = await both(['detections', 'list', '--limit', '1', '--type', 'New-Outbound-Network-Call']);
  const d = (list.detections as { owner: string; repo: string }[])[0]!;
  const target = ['--owner', d.owner, '--repo', d.repo, '--endpoint', 'partner.example.com:443'];
  const [e1, e2] = await both(['baseline', 'expect', ...target]);
  assert.ok((e1.jobs as unknown[]).length > 0);
  assert.deepEqual(e2, e1);
  // an expected entry is stamped with the time of the edit, which differs between the two runs
  const edited = (v: Record<string, unknown>) =>
    JSON.parse(JSON.stringify(v), (k, x) => (k === 'firstSeen' || k === 'lastSeen') && typeof x === 'string' ? 't' : x) as unknown;
  const [s, p] = await both(['baseline', 'show', '--owner', d.owner, '--repo', d.repo]);
  assert.ok(JSON.stringify(s).includes('"endpoint":"partner.example.com:443"'), 'the expected endpoint is in the baselines');
  assert.deepEqual(edited(p), edited(s), 'the expected endpoint is in the same baselines');
  const [u1, u2] = await both(['baseline', 'unexpect', ...target]);
  assert.deepEqual(u2, u1);
  for (const db of [sqlite, pgUrl]) {
    for (const risky of ['webhook.site:443', 'gist.githubusercontent.com:443']) {
      const r = await cli(['baseline', 'expect', '--owner', d.owner, '--repo', d.repo, '--endpoint', risky, '--db', db]);
      assert.equal(r.status, 4, r.stderr);
      assert.match(r.stderr, /risky destination/);
    }
    const again = await cli(['baseline', 'unexpect', ...target, '--db', db]);
    assert.equal(again.status, 3, 'nothing left to un-expect');
  }
});

test('on PostgreSQL: a database without the schema is not found, an unreachable server is an IO error, EGRESS_TRIAGE_DB selects it', async () => {
  const empty = await (await server()).createDatabase('empty');
  for (const args of [['stats'], ['detections', 'list'], ['baseline', 'show', '--owner', 'o', '--repo', 'r']]) {
    const r = await cli([...args, '--db', empty]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /no egress-triage schema in postgres:\/\//);
  }
  const down = await cli(['stats', '--db', 'postgres://u:s3cret@127.0.0.1:1/et']);
  assert.equal(down.status, 5, down.stderr);
  assert.doesNotMatch(down.stderr, /s3cret/, 'the password is never printed');
  const viaEnv = await cli(['stats', '--json'], { EGRESS_TRIAGE_DB: pgUrl });
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  assert.equal((JSON.parse(viaEnv.stdout) as { db: string }).db.startsWith('postgres://'), true);
});

test('demo stays on the embedded store: a PostgreSQL URL is refused, not read as a file name', async () => {
  const r = await cli(['demo', '--db', 'postgres://u:s3cret@db.internal/et']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^egress-triage: --db: demo builds a sample store on the embedded SQLite store; give it a file path, not postgres:\/\/u:\*\*\*@db\.internal\/et\n$/);
});

test('detections list --sha256: the binary digest, case-insensitive, the same on both backends', async () => {
  type Page = { total: number; detections: { tool: { sha256: string | null } }[] };
  const all = JSON.parse((await cli(['detections', 'list', '--db', sqlite, '--json', '--limit', '10000'])).stdout) as Page;
  const sha = all.detections.find((d) => d.tool.sha256)!.tool.sha256!;
  const want = all.detections.filter((d) => d.tool.sha256 === sha).length;
  assert.ok(want > 0 && want < all.total, `the digest selects some detections (${want} of ${all.total})`);
  const [s, p] = (await both(['detections', 'list', '--sha256', sha.toUpperCase(), '--limit', '10000'])) as unknown as [Page, Page];
  assert.equal(s.total, want);
  assert.deepEqual(p, s);
  assert.ok(s.detections.every((d) => d.tool.sha256 === sha));
  const bad = await cli(['detections', 'list', '--db', sqlite, '--sha256', 'ab*']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^egress-triage: --sha256: expected a sha256 digest \(64 hex characters\)/);
  // the 12 characters the tables show would list nothing: refused, saying so
  const short = await cli(['detections', 'list', '--db', sqlite, '--sha256', sha.slice(0, 12)]);
  assert.equal(short.status, 2);
  assert.match(short.stderr, /^egress-triage: --sha256: expected the whole sha256 digest \(64 hex characters\), got 12/);
});
