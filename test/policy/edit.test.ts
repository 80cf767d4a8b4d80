import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse } from 'yaml';
import { applyPolicyEdit, PolicyEditError, type LimitInput, type PolicyEdit } from '../../src/policy/edit.js';
import { parsePolicy, PolicyLoadError } from '../../src/policy/load.js';
import { columnOf, POLICY_COLUMNS, type PolicyColumn } from '../../src/policy/columns.js';
import { summarizePolicyChange } from '../../src/policy/change-summary.js';

/** The Policy page's edits on the YAML document: the change asked for, every comment and other line kept. */

const FILE = `# the demo policy: read by the gateway, edited by people
version: 1
default: allow   # tools not named
hide: [delete_suppression_rule]   # never shown to agents
tools:
  # read-only and cheap
  find_repos_using_endpoint: { action: allow }   # open to every agent
  analyze_anomalous_calls_by_process:
    action: allow
    rate_limit: { max: 10, window: 60 }  # per session
  create_suppression_rule:
    action: require_approval
    approval_timeout: 600   # ten minutes
    when:
      - { path: args.conditions.owner, op: eq, value: "*", action: deny, reason: "Tenant-wide rules need a human" }
  export_rows:
    action: deny
    reason: "Agents may not export"   # said to the agent
  "*":
    rate_limit: { max: 120, window: 60, scope: global }
`;

const data = (text: string) => parsePolicy(text).engine.file;
const comments = (text: string) => text.split('\n').flatMap((l) => (/#\s.*$/.exec(l)?.[0] ? [/#\s.*$/.exec(l)![0]] : []));
const columnIn = (text: string, tool: string): PolicyColumn => {
  const f = data(text);
  return columnOf(f.tools?.[tool], (f.hide ?? []).includes(tool));
};
/** Lines of `after` that are not in `before`, and the other way round. */
function changedLines(before: string, after: string): { added: string[]; removed: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  return { added: b.filter((l) => !a.includes(l)), removed: a.filter((l) => !b.includes(l)) };
}

describe('applyPolicyEdit', () => {
  it('moves a tool from allow to approval: one line changes, every comment and other line stays byte for byte', () => {
    const out = applyPolicyEdit(FILE, { op: 'move', tool: 'find_repos_using_endpoint', to: 'approval' });
    assert.equal(columnIn(out, 'find_repos_using_endpoint'), 'approval');
    assert.deepEqual(comments(out), comments(FILE));
    const d = changedLines(FILE, out);
    assert.deepEqual(d.removed, ['  find_repos_using_endpoint: { action: allow }   # open to every agent']);
    assert.deepEqual(d.added, ['  find_repos_using_endpoint: { action: require_approval } # open to every agent']);
  });

  it('edits a rate limit in place, keeping its comment; the summary names old and new', () => {
    const out = applyPolicyEdit(FILE, { op: 'limit', tool: 'analyze_anomalous_calls_by_process', index: 0, limit: { max: 5, window: 30 } });
    assert.deepEqual(data(out).tools!.analyze_anomalous_calls_by_process!.rate_limit, { max: 5, window: 30 });
    assert.deepEqual(changedLines(FILE, out).added, ['    rate_limit: { max: 5, window: 30 } # per session']);
    assert.equal(summarizePolicyChange(data(FILE), data(out)).summary, 'analyze_anomalous_calls_by_process: rate limit 10 per 60s → 5 per 30s');
  });

  it('to deny needs a reason; out of deny drops the deny reason', () => {
    assert.throws(() => applyPolicyEdit(FILE, { op: 'move', tool: 'find_repos_using_endpoint', to: 'deny' }), (e) => e instanceof PolicyEditError && e.field === 'reason');
    const denied = applyPolicyEdit(FILE, { op: 'move', tool: 'find_repos_using_endpoint', to: 'deny', reason: 'not today' });
    assert.deepEqual(data(denied).tools!.find_repos_using_endpoint, { action: 'deny', reason: 'not today' });
    const allowed = applyPolicyEdit(FILE, { op: 'move', tool: 'export_rows', to: 'allow' });
    assert.deepEqual(data(allowed).tools!.export_rows, { action: 'allow' });
    assert.deepEqual(comments(allowed), comments(FILE).filter((c) => c !== '# said to the agent'));
  });

  it('hides a tool by adding it to hide; a hidden tool without an entry gets an explicit one when it leaves', () => {
    const hidden = applyPolicyEdit(FILE, { op: 'move', tool: 'export_rows', to: 'hidden' });
    assert.deepEqual(data(hidden).hide, ['delete_suppression_rule', 'export_rows']);
    assert.equal(columnIn(hidden, 'export_rows'), 'hidden');
    // back to its entry's column: only unhidden, the entry untouched
    assert.deepEqual(data(applyPolicyEdit(hidden, { op: 'move', tool: 'export_rows', to: 'deny' })), data(FILE));
    const shown = applyPolicyEdit(FILE, { op: 'move', tool: 'delete_suppression_rule', to: 'allow' });
    assert.equal(data(shown).hide, undefined, 'an emptied hide list is removed');
    assert.deepEqual(data(shown).tools!.delete_suppression_rule, { action: 'allow' });
    assert.equal(summarizePolicyChange(data(FILE), data(shown)).summary, 'delete_suppression_rule: hidden → allow');
  });

  it('refuses what cannot be applied: an unknown tool, the same column, a file with syntax errors', () => {
    assert.throws(() => applyPolicyEdit(FILE, { op: 'move', tool: 'nosuch', to: 'deny', reason: 'x' }), /not named in the policy file/);
    assert.throws(() => applyPolicyEdit(FILE, { op: 'move', tool: 'export_rows', to: 'deny', reason: 'x' }), /already in that column/);
    assert.throws(() => applyPolicyEdit('version: 1\ntools: [', { op: 'move', tool: 'x', to: 'deny', reason: 'x' }), /syntax errors/);
    assert.throws(() => applyPolicyEdit(FILE, { op: 'limit', tool: 'export_rows', index: 0, limit: { max: 1, window: 1 } }), /no rate limit/);
  });

  it('an edit the schema refuses is still applied as text: validation is the parser’s, at its path', () => {
    const out = applyPolicyEdit(FILE, { op: 'limit', tool: 'analyze_anomalous_calls_by_process', index: 0, limit: { max: 0, window: 60 } });
    assert.throws(
      () => parsePolicy(out, 'p.yaml'),
      (e) => e instanceof PolicyLoadError && e.issues.some((i) => i.path === 'tools.analyze_anomalous_calls_by_process.rate_limit.max' && i.line === 10),
    );
  });

  it('an entry without an action keeps none when moved between allow and rate-limited', () => {
    const f = 'version: 1\ntools:\n  x:\n    rate_limit: { max: 3, window: 60 }\n';
    const allowed = applyPolicyEdit(f, { op: 'move', tool: 'x', to: 'allow' });
    assert.deepEqual(parse(allowed), { version: 1, tools: { x: {} } });
    assert.deepEqual(parse(applyPolicyEdit(allowed, { op: 'move', tool: 'x', to: 'rate_limited', limit: { max: 3, window: 60 } })), parse(f));
  });
});

// ---------------------------------------------------------------- property: a move and its way back

type Entry = { action: 'allow' } | { action: 'allow'; rate_limit: LimitInput } | { action: 'require_approval'; approval_timeout?: number } | { action: 'deny'; reason: string };

const limitArb = fc.record({ max: fc.integer({ min: 1, max: 1000 }), window: fc.integer({ min: 1, max: 3600 }) }, { requiredKeys: ['max', 'window'] }).chain((l) =>
  fc.option(fc.constantFrom('session', 'client', 'global', 'upstream' as const), { nil: undefined }).map((scope): LimitInput => (scope ? { ...l, scope } : l)),
);
const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.constant({ action: 'allow' as const }),
  limitArb.map((rate_limit) => ({ action: 'allow' as const, rate_limit })),
  fc.option(fc.integer({ min: 1, max: 3600 }), { nil: undefined }).map((t) => (t === undefined ? { action: 'require_approval' as const } : { action: 'require_approval' as const, approval_timeout: t })),
  fc.stringMatching(/^[A-Za-z]([A-Za-z ]{0,18}[A-Za-z])?$/).map((reason) => ({ action: 'deny' as const, reason })),
);
const nameArb = fc.stringMatching(/^[a-z][a-z_]{0,11}$/);
const policyArb = fc
  .uniqueArray(fc.tuple(nameArb, entryArb, fc.boolean()), { minLength: 1, maxLength: 6, selector: ([n]) => n })
  .map((entries) => {
    const tools = Object.fromEntries(entries.map(([n, e]) => [n, e]));
    const hide = entries.filter(([, , h]) => h).map(([n]) => n);
    const lines = ['# generated', 'version: 1', ...(hide.length ? [`hide: [${hide.join(', ')}]  # hidden ones`] : []), 'tools:'];
    for (const [n, e] of entries) lines.push(`  # about ${n}`, `  ${n}: ${JSON.stringify(e)}  # ${n} entry`);
    return { text: lines.join('\n') + '\n', tools, hide };
  });

/** The move that takes `tool` back to where it was, with the parameters it had. */
function wayBack(tool: string, e: Entry, hidden: boolean): PolicyEdit {
  if (hidden) return { op: 'move', tool, to: 'hidden' };
  if ('rate_limit' in e) return { op: 'move', tool, to: 'rate_limited', limit: e.rate_limit };
  if (e.action === 'require_approval') return { op: 'move', tool, to: 'approval', approvalTimeout: e.approval_timeout };
  if (e.action === 'deny') return { op: 'move', tool, to: 'deny', reason: e.reason };
  return { op: 'move', tool, to: 'allow' };
}

describe('applyPolicyEdit, property', () => {
  it('moving a tool to another column and back yields an equal policy, and keeps the comments', () => {
    fc.assert(
      fc.property(policyArb, fc.nat(), fc.constantFrom(...POLICY_COLUMNS), limitArb, fc.integer({ min: 1, max: 3600 }), (p, pick, to, limit, timeout) => {
        const [tool, entry] = Object.entries(p.tools)[pick % Object.keys(p.tools).length]! as [string, Entry];
        const hidden = p.hide.includes(tool);
        const from = columnOf(entry, hidden);
        // a hidden tool whose entry is in another column returns to hidden, not to its entry's column
        fc.pre(to !== from && !(hidden && to !== columnOf(entry, false)));
        const moved = applyPolicyEdit(p.text, { op: 'move', tool, to, limit, approvalTimeout: timeout, reason: 'moved away' });
        assert.equal(columnIn(moved, tool), to);
        const back = applyPolicyEdit(moved, wayBack(tool, entry, hidden));
        // `hide` is a set: a tool hidden again goes to the end of the list
        const policy = (t: string) => {
          const f = data(t);
          return f.hide ? { ...f, hide: [...f.hide].sort() } : f;
        };
        assert.deepEqual(policy(back), policy(p.text));
        // the one comment that goes: the one on a `hide:` line the move emptied (and so removed)
        const emptiedHide = hidden && p.hide.length === 1;
        assert.deepEqual(comments(back), comments(p.text).filter((c) => !(emptiedHide && c === '# hidden ones')));
      }),
      { numRuns: 400 },
    );
  });
});
