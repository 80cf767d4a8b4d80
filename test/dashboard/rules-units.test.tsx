import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderToString } from 'preact-render-to-string';
import type { SuppressionRule } from '../../src/rules/types.js';
import type { RuleAuditRow } from '../../src/storage/rules-port.js';
import { actionSummary, conditionChanges, deleteRestoreChoice, historyEntries, ruleEditFromForm } from '../../src/dashboard/rules-view.js';
import { sameConditions } from '../../src/rules/matcher.js';
import { RuleFormError } from '../../src/dashboard/processes-view.js';
import { HistoryTable, RuleDetailPage, RulesListPage } from '../../src/dashboard/pages/rules.js';
import type { PageContext } from '../../src/dashboard/pages/context.js';

const SHA = 'a'.repeat(64);
const rule: SuppressionRule = {
  rule_id: 'r-1',
  id: 'New-Outbound-Network-Call',
  name: 'tailscaled at acme',
  description: '',
  conditions: { process: 'tailscaled', process_sha256: SHA, owner: 'acme' },
  severity_action: { type: 'ignore' },
  created_by: 'cli:alice',
  created_on: '2026-12-01T10:00:00.000Z',
  updated_on: '2026-12-01T10:00:00.000Z',
};

const form = (fields: [string, string][]) => new URLSearchParams(fields);
/** The edit form as the page posts it: every field, the rule's values unless given. */
function editForm(over: Record<string, string> = {}): URLSearchParams {
  const f: Record<string, string> = { name: rule.name, description: rule.description, detection_id: rule.id, 'c.process': 'tailscaled', 'c.process_sha256': SHA, 'c.owner': 'acme', 'c.repo': '', 'c.endpoint': '', ...over };
  return new URLSearchParams(Object.entries(f));
}

const ctx = (permissions: PageContext['permissions']): PageContext => ({
  identity: 'alice', permissions, signedIn: true, csrf: 'tok-123', theme: 'auto', path: '/rules', location: '/rules',
  assets: { script: '/assets/main.js', styles: ['/assets/main.css'] },
});

describe('rules view model', () => {
  it('an unchanged form asks for nothing; key order does not count as a change', () => {
    const e = ruleEditFromForm(rule, editForm());
    assert.deepEqual(e, { input: {}, changes: [], matchChanged: false });
    const reordered = form([['c.owner', 'acme'], ['c.process_sha256', SHA], ['c.process', 'tailscaled']]);
    assert.equal(ruleEditFromForm(rule, reordered).matchChanged, false);
    assert.equal(sameConditions({ a: '1', b: '2' } as never, { b: '2', a: '1' } as never), true);
    assert.equal(sameConditions({ process: 'x' }, { process: 'x', owner: '*' }), false);
  });

  it('a rename moves no detection; a condition change sends the whole new set and says what changed', () => {
    const rename = ruleEditFromForm(rule, editForm({ name: ' new name ' }));
    assert.deepEqual(rename, { input: { name: 'new name' }, changes: [{ field: 'name', before: 'tailscaled at acme', after: 'new name' }], matchChanged: false });
    const widen = ruleEditFromForm(rule, editForm({ 'c.owner': '', 'c.repo': 'api' }));
    assert.deepEqual(widen.input, { conditions: { process: 'tailscaled', process_sha256: SHA, repo: 'api' } });
    assert.deepEqual(widen.changes, [
      { field: 'condition owner', before: 'acme', after: null },
      { field: 'condition repo', before: null, after: 'api' },
    ]);
    assert.equal(widen.matchChanged, true);
    const retype = ruleEditFromForm(rule, editForm({ detection_id: 'Domain-Blocked' }));
    assert.deepEqual(retype.input, { detection_id: 'Domain-Blocked' });
    assert.equal(retype.matchChanged, true);
    // an emptied name keeps the rule's name (update gives no default); an emptied description clears it
    assert.deepEqual(ruleEditFromForm({ ...rule, description: 'd' }, editForm({ name: '', description: '' })).input, { description: '' });
  });

  it('refuses unknown condition keys and a rule left without any condition, by name', () => {
    assert.throws(() => ruleEditFromForm(rule, editForm({ 'c.bogus': '1' })), (e: unknown) => e instanceof RuleFormError && /unknown rule condition "bogus"/.test(e.message));
    assert.throws(() => ruleEditFromForm(rule, form([['c.process', ' '], ['name', 'x']])), /the rule has no condition/);
  });

  it('the delete choice is required: yes restores, no keeps', () => {
    assert.equal(deleteRestoreChoice(form([['restore', 'yes']])), true);
    assert.equal(deleteRestoreChoice(form([['restore', 'no']])), false);
    assert.throws(() => deleteRestoreChoice(form([])), /restore: choose/);
    assert.throws(() => deleteRestoreChoice(form([['restore', 'on']])), RuleFormError);
  });

  it('history: conditions split per key, strings as text, a delete lists no field; the action in words', () => {
    const after = { ...rule, name: 'everywhere', conditions: { process: 'tailscaled', process_sha256: SHA }, updated_on: 'later' };
    const rows: RuleAuditRow[] = [
      { rule_id: 'r-1', action: 'delete+restore', actor: 'dashboard:bob', at: 't3', before: after, after: null, affected: 12 },
      { rule_id: 'r-1', action: 'update', actor: 'dashboard:alice', at: 't2', before: rule, after, affected: 99 },
      { rule_id: 'r-1', action: 'create', actor: 'cli:alice', at: 't1', before: null, after: rule, affected: 100 },
    ];
    const h = historyEntries(rows);
    assert.deepEqual(h[0], { action: 'delete+restore', actor: 'dashboard:bob', at: 't3', affected: 12, changes: [] });
    assert.deepEqual(h[1]!.changes, [
      { field: 'condition owner', before: 'acme', after: null },
      { field: 'name', before: 'tailscaled at acme', after: 'everywhere' },
    ]);
    assert.deepEqual(
      h[2]!.changes.map((c) => [c.field, c.before, c.after]),
      [
        ['condition owner', null, 'acme'],
        ['condition process', null, 'tailscaled'],
        ['condition process_sha256', null, SHA],
        ['description', null, ''],
        ['detection type', null, 'New-Outbound-Network-Call'],
        ['name', null, 'tailscaled at acme'],
      ],
      'rule id, creator and action are not listed: they never change',
    );
    assert.deepEqual(h.map(actionSummary), ['deleted; 12 detection(s) restored to open', 'changed; 99 detection(s) moved', 'created; suppressed 100 detection(s)']);
    assert.equal(actionSummary({ action: 'delete', affected: 0 }), 'deleted; its past suppressions kept');
    assert.deepEqual(conditionChanges(null, null), []);
  });
});

describe('rules pages', () => {
  const injected = { ...rule, name: '<img src=x onerror=alert(1)>', conditions: { process: '<script>x</script>' } };

  it('the detail shows edit and delete forms, each with the CSRF token, only with "write"; names are text', () => {
    const writer = renderToString(<RuleDetailPage ctx={ctx(['read', 'write'])} rule={injected} history={[]} />);
    assert.match(writer, /<form method="post" action="\/rules\/r-1\/edit"><input type="hidden" name="_csrf" value="tok-123"\/>/);
    assert.match(writer, /<form method="post" action="\/rules\/r-1\/delete"><input type="hidden" name="_csrf" value="tok-123"\/>/);
    assert.equal((writer.match(/name="restore"[^>]*required/g) ?? []).length, 2, 'the restore choice is required, with no default');
    assert.doesNotMatch(writer, /<img|<script>x/);
    assert.match(writer, /&lt;img src=x onerror=alert\(1\)>/);
    const reader = renderToString(<RuleDetailPage ctx={ctx(['read'])} rule={injected} history={[]} />);
    assert.doesNotMatch(reader, /action="\/rules\/r-1\/(edit|delete)"/);
    assert.match(reader, /needs the dashboard permission &quot;write&quot;/);
  });

  it('the history shows an absent value as (none) and an empty one as (empty)', () => {
    const html = renderToString(<HistoryTable label="h" entries={[{ action: 'update', actor: 'bob', at: '2026-12-01T10:00:00.000Z', affected: 0, changes: [{ field: 'description', before: '', after: 'why' }, { field: 'condition repo', before: 'api', after: null }] }]} />);
    assert.match(html, /description: <span class="muted">\(empty\)<\/span> → <code>why<\/code>/);
    assert.match(html, /condition repo: <code>api<\/code> → <span class="muted">\(none\)<\/span>/);
    assert.match(html, /changed; 0 detection\(s\) moved/);
  });

  it('the list links each rule to its detail and shows its conditions whole', () => {
    const html = renderToString(<RulesListPage ctx={ctx(['read'])} tenant="default" rules={[rule]} recent={[]} />);
    assert.match(html, /<a href="\/rules\/r-1">tailscaled at acme<\/a>/);
    assert.ok(html.includes(`process_sha256=${SHA}`));
    assert.match(html, /by cli:alice/);
  });
});
