import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cliResult, nativeEvent, ndjson, tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';

/**
 * `egress-triage rules ...` on PostgreSQL, through the built CLI: preview, create (retroactive),
 * list, get, audit and delete --restore give the counts they give on a SQLite file fed the same
 * input, and a rule created on PostgreSQL suppresses matching detections at the next ingest.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

const cli = cliResult;

const file = tmp.file;

async function json<T>(args: string[]): Promise<T> {
  const r = await cli([...args, '--json']);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Two learning runs, then three runs that call a mirror and one that stages a payload on webhook.site. */
const FIRST = ndjson([
  ...[1, 2].map((run) => nativeEvent({ run, domain: 'github.com' })),
  ...[3, 4, 5].map((run) => nativeEvent({ run, domain: `r${run}.mirror.example.com` })),
  nativeEvent({ run: 5, domain: 'webhook.site', t: 1 }),
]);
const LATER = ndjson([nativeEvent({ run: 6, domain: 'r6.mirror.example.com' }), nativeEvent({ run: 6, domain: 'webhook.site', t: 1 })]);

async function session(db: string): Promise<unknown[]> {
  const seen: unknown[] = [];
  const ing = await cli(['ingest', file(`first-${seen.length}-${Math.random()}.ndjson`, FIRST), '--db', db, '--learning-runs', '2', '--json']);
  assert.equal(ing.status, 0, ing.stderr);
  const cond = ['--condition', 'process=curl', '--condition', 'host=*.mirror.example.com'];
  const preview = await json<{ would_suppress: number; risky_matches: number; refused_reason: string | null }>(['rules', 'preview', '--db', db, ...cond]);
  seen.push(['preview', preview.would_suppress, preview.risky_matches, preview.refused_reason]);
  // the never-suppress guard: a rule covering the webhook.site detection is refused (exit 4)
  const risky = await cli(['rules', 'create', '--db', db, '--condition', 'process=curl', '--yes']);
  seen.push(['risky create', risky.status, /rule refused: .*risky destinations/.test(risky.stderr)]);
  const noYes = await cli(['rules', 'create', '--db', db, ...cond]);
  seen.push(['create without --yes', noYes.status, /would suppress 3 detection/.test(noYes.stderr)]);
  const created = await json<{ rule: { rule_id: string }; suppressed: number }>(['rules', 'create', '--db', db, ...cond, '--name', 'mirror', '--actor', 'alice', '--yes']);
  seen.push(['create', created.suppressed]);
  const id = created.rule.rule_id;
  const list = await json<{ rules: { rule_id: string; name: string }[] }>(['rules', 'list', '--db', db]);
  seen.push(['list', list.rules.map((r) => [r.rule_id === id, r.name])]);
  const get = await json<{ created_by: string }>(['rules', 'get', id, '--db', db]);
  seen.push(['get', get.created_by]);
  const later = await cli(['ingest', file(`later-${Math.random()}.ndjson`, LATER), '--db', db, '--json']);
  assert.equal(later.status, 0, later.stderr);
  const t = (JSON.parse(later.stdout) as { totals: { detections: number; suppressedOnIngest: number } }).totals;
  // the mirror call is suppressed at ingest, webhook.site never
  seen.push(['ingest after the rule', { detections: t.detections, suppressedOnIngest: t.suppressedOnIngest }]);
  const stats = await json<{ detections: { status: string; count: number }[] }>(['stats', '--db', db]);
  seen.push(['stats', stats.detections.map((d) => [d.status, d.count])]);
  const del = await json<{ restored: number }>(['rules', 'delete', id, '--db', db, '--restore', '--actor', 'bob', '--yes']);
  seen.push(['delete --restore', del.restored]);
  const again = await cli(['rules', 'delete', id, '--db', db, '--yes']);
  seen.push(['delete again', again.status]);
  const audit = await json<{ audit: { action: string; actor: string; affected: number }[] }>(['rules', 'audit', '--db', db]);
  seen.push(['audit', audit.audit.map((a) => [a.action, a.actor, a.affected])]);
  return seen;
}

test('rules preview / create / list / get / delete / audit on a postgres:// URL, as on SQLite', async () => {
  const url = await (await server()).createDatabase('rules_cli');
  const onPg = await session(url);
  const onSqlite = await session(join(tmp.dir, 'rules.db'));
  assert.deepEqual(onPg, [
    ['preview', 3, 0, null],
    ['risky create', 4, true],
    ['create without --yes', 2, true],
    ['create', 3],
    ['list', [[true, 'mirror']]],
    ['get', 'alice'],
    ['ingest after the rule', { detections: 2, suppressedOnIngest: 1 }],
    ['stats', [['new', 2], ['suppressed', 4]]],
    ['delete --restore', 4],
    ['delete again', 3],
    ['audit', [['delete+restore', 'bob', 4], ['create', 'alice', 3]]],
  ]);
  assert.deepEqual(onPg, onSqlite);
});
