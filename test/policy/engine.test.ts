import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, PolicyLoadError } from '../../src/policy/load.js';

const ISSUE_EXAMPLE = `version: 1
default: allow
hide: [delete_suppression_rule]
tools:
  analyze_anomalous_calls_by_process:
    action: allow
    rate_limit: { max: 10, window: 60 }
  create_suppression_rule:
    action: require_approval
    approval_timeout: 600
    when:
      - { path: args.conditions.owner, op: eq, value: "*", action: deny, reason: "Tenant-wide rules need a human in the dashboard" }
  delete_suppression_rule:
    action: deny
    reason: "Agents may not delete suppression rules"
  "*":
    rate_limit: { max: 120, window: 60, scope: global }
`;

test('the example policy from the issue loads and decides as written', () => {
  const { engine } = parsePolicy(ISSUE_EXAMPLE);
  const a = engine.decide('analyze_anomalous_calls_by_process', {});
  assert.equal(a.action, 'allow');
  assert.equal(a.rule, 'tools.analyze_anomalous_calls_by_process');
  assert.equal(a.line, 5);
  // the tool's own limit and the "*" global limit both apply
  assert.deepEqual(a.limits.map((l) => [l.max, l.windowMs, l.scope]), [[10, 60000, 'session'], [120, 60000, 'global']]);

  const tenantWide = engine.decide('create_suppression_rule', { conditions: { owner: '*' } });
  assert.equal(tenantWide.action, 'deny');
  assert.equal(tenantWide.rule, 'tools.create_suppression_rule.when[0]');
  assert.equal(tenantWide.line, 12);
  assert.match(tenantWide.reason!, /Tenant-wide/);

  const scoped = engine.decide('create_suppression_rule', { conditions: { owner: 'acme' } });
  assert.equal(scoped.action, 'require_approval');
  assert.equal(scoped.approvalTimeoutMs, 600_000);

  const hidden = engine.decide('delete_suppression_rule', {});
  assert.equal(hidden.action, 'deny');
  assert.equal(hidden.rule, 'hide');
  assert.ok(engine.isHidden('delete_suppression_rule'));

  const other = engine.decide('list_things', {});
  assert.equal(other.action, 'allow');
  assert.equal(other.rule, 'default');
  assert.equal(other.limits.length, 1);
});

test('default: deny refuses unlisted tools; JSON policies load too', () => {
  const { engine } = parsePolicy(JSON.stringify({ version: 1, default: 'deny', tools: { ok: { action: 'allow' } } }));
  assert.equal(engine.decide('ok', {}).action, 'allow');
  const d = engine.decide('nope', {});
  assert.equal(d.action, 'deny');
  assert.equal(d.rule, 'default');
  assert.match(d.reason!, /not allowed/);
});

test('every condition op, including missing paths', () => {
  const cases: [string, unknown, Record<string, unknown>, boolean][] = [
    ['eq', 'a', { v: 'a' }, true], ['eq', 'a', { v: 'b' }, false], ['eq', 'a', {}, false],
    ['eq', { x: [1, 2] }, { v: { x: [1, 2] } }, true],
    ['neq', 'a', { v: 'b' }, true], ['neq', 'a', { v: 'a' }, false], ['neq', 'a', {}, true],
    ['in', ['a', 'b'], { v: 'b' }, true], ['in', ['a', 'b'], { v: 'c' }, false], ['in', ['a'], {}, false],
    ['not_in', ['a', 'b'], { v: 'c' }, true], ['not_in', ['a', 'b'], { v: 'a' }, false],
    ['lt', 5, { v: 4 }, true], ['lt', 5, { v: 5 }, false], ['lt', 5, { v: '4' }, true],
    ['lte', 5, { v: 5 }, true], ['lte', 5, { v: 6 }, false],
    ['gt', 5, { v: 6 }, true], ['gt', 5, { v: 5 }, false],
    ['gte', 5, { v: 5 }, true], ['gte', 5, { v: 4 }, false],
    ['regex', '^prod-', { v: 'prod-eu' }, true], ['regex', '^prod-', { v: 'dev' }, false], ['regex', '^x', { v: 1 }, true],
    ['contains', 'hub', { v: 'github' }, true], ['contains', 'lab', { v: 'github' }, false],
    ['contains', 'b', { v: ['a', 'b'] }, true], ['contains', 'z', { v: ['a'] }, false],
    ['exists', true, { v: null }, true], ['exists', true, {}, false], ['exists', false, {}, true],
  ];
  for (const [op, value, args, hit] of cases) {
    const { engine } = parsePolicy(
      JSON.stringify({ version: 1, tools: { t: { action: 'allow', when: [{ path: 'args.v', op, value, action: 'deny', reason: 'matched' }] } } }),
    );
    const d = engine.decide('t', args);
    assert.equal(d.action === 'deny', hit, `${op} ${JSON.stringify(value)} on ${JSON.stringify(args)}`);
  }
});

test('nested paths, first matching condition wins, condition may require approval', () => {
  const { engine } = parsePolicy(`version: 1
tools:
  t:
    action: allow
    when:
      - { path: args.a.b.0, op: eq, value: x, action: deny, reason: first }
      - { path: args.a.b.0, op: regex, value: "^x", action: require_approval, approval_timeout: 5 }
`);
  assert.equal(engine.decide('t', { a: { b: ['x'] } }).reason, 'first');
  const d = engine.decide('t', { a: { b: ['xy'] } });
  assert.equal(d.action, 'require_approval');
  assert.equal(d.approvalTimeoutMs, 5000);
  assert.equal(engine.decide('t', { a: { b: ['y'] } }).action, 'allow');
});

test('precedence: exact entry, then globs, then "*", then default; hide globs', () => {
  const { engine } = parsePolicy(`version: 1
default: deny
hide: ["admin_*"]
tools:
  read_one: { action: allow }
  "read_*": { action: require_approval, rate_limit: { max: 3, window: 1, scope: client } }
  "*": { action: allow, rate_limit: { max: 100, window: 60, scope: global, cost_from: args.n } }
`);
  // every call here is counted by the "*" limit's cost_from: args.n (without it, it is denied)
  const exact = engine.decide('read_one', { n: 1 });
  assert.equal(exact.action, 'allow');
  assert.equal(exact.limits.length, 2);
  assert.deepEqual(exact.limits.map((l) => l.scope), ['client', 'global']);
  assert.deepEqual(exact.limits[1]!.costPath, ['n']);
  assert.equal(engine.decide('read_two', { n: 1 }).action, 'require_approval');
  assert.equal(engine.decide('write', { n: 1 }).rule, 'tools["*"]');
  assert.deepEqual([engine.decide('write', {}).action, engine.decide('write', {}).rule], ['deny', 'tools["*"].rate_limit']);
  assert.equal(engine.decide('admin_drop', {}).rule, 'hide');
  assert.ok(engine.isHidden('admin_x') && !engine.isHidden('read_one'));
});

test('validation reports every error with path and line', () => {
  const bad = `version: 1
default: maybe
tools:
  a:
    action: allow
    rate_limt: { max: 10, window: 60 }
  b:
    action: deny
  c:
    rate_limit: { max: 0, window: 60, scope: planet }
    when:
      - { path: conditions.owner, op: eq, value: "*", action: deny, reason: r }
      - { path: args.x, op: regex, value: "(", action: allow }
      - { path: args.x, op: lt, value: "5", action: allow }
      - { path: args.x, op: between, value: 1, action: allow }
`;
  let err: PolicyLoadError | undefined;
  try {
    parsePolicy(bad, 'p.yaml');
  } catch (e) {
    err = e as PolicyLoadError;
  }
  assert.ok(err instanceof PolicyLoadError);
  const got = err.issues.map((i) => `${i.line}:${i.path}`);
  for (const want of [
    '2:default',
    '6:tools.a.rate_limt',
    '7:tools.b.reason',
    '10:tools.c.rate_limit.max',
    '10:tools.c.rate_limit.scope',
    '12:tools.c.when[0].path',
    '13:tools.c.when[1].value',
    '14:tools.c.when[2].value',
    '15:tools.c.when[3].op',
  ]) {
    assert.ok(got.includes(want), `missing ${want} in ${got.join(', ')}`);
  }
  assert.match(err.message, /p\.yaml:6:5: tools\.a\.rate_limt: unknown key "rate_limt"/);
});

test('YAML syntax errors and duplicate keys carry lines', () => {
  assert.throws(() => parsePolicy('version: 1\ntools:\n  a: { action: allow\n', 'x.yaml'), (e: PolicyLoadError) => e.issues[0]!.line !== undefined);
  assert.throws(
    () => parsePolicy('version: 1\ntools:\n  a: { action: allow }\n  a: { action: deny, reason: r }\n', 'x.yaml'),
    (e: PolicyLoadError) => e.issues.some((i) => i.line === 4),
  );
  assert.throws(() => parsePolicy('version: 2\n'), /version/);
  // one flaw the YAML parser reports twice at the same place is listed once
  assert.throws(
    () => parsePolicy('{{{', 'x.yaml'),
    (e: PolicyLoadError) => new Set(e.issues.map((i) => `${i.line}:${i.col}: ${i.message}`)).size === e.issues.length,
  );
});

test('decision p99 stays in the microsecond range with 50 tools / 200 rules', () => {
  const tools: Record<string, unknown> = {};
  for (let i = 0; i < 50; i++) {
    tools[`tool_${i}`] = {
      action: 'allow',
      rate_limit: { max: 100, window: 60 },
      when: [
        { path: 'args.owner', op: 'eq', value: `o${i}`, action: 'deny', reason: 'r' },
        { path: 'args.n', op: 'gt', value: 100, action: 'require_approval' },
        { path: 'args.name', op: 'regex', value: `^x${i}`, action: 'deny', reason: 'r' },
      ],
    };
  }
  const { engine } = parsePolicy(JSON.stringify({ version: 1, tools }));
  const args = { owner: 'zzz', n: 5, name: 'abc' };
  for (let i = 0; i < 2000; i++) engine.decide(`tool_${i % 50}`, args);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 20000; i++) engine.decide(`tool_${i % 50}`, args);
  const perCallUs = Number(process.hrtime.bigint() - t0) / 20000 / 1000;
  assert.ok(perCallUs < 50, `mean decision ${perCallUs}µs`);
});

test('elicitation approval is off unless the deciding entry or condition opts in; approvals.elicitation: false vetoes it', () => {
  const text = (veto: string) => `version: 1
${veto}tools:
  a: { action: require_approval }
  b: { action: require_approval, approval_elicitation: true }
  c:
    action: require_approval
    approval_elicitation: true
    when:
      - { path: args.x, op: eq, value: 1, action: require_approval, approval_elicitation: false }
  "*": { approval_elicitation: true }
`;
  const { engine } = parsePolicy(text(''));
  assert.equal(engine.decide('a', {}).elicitation, false, 'off by default, even with "*" opted in: only the deciding entry counts');
  assert.equal(engine.decide('b', {}).elicitation, true);
  assert.equal(engine.decide('c', {}).elicitation, true);
  assert.equal(engine.decide('c', { x: 1 }).elicitation, false, 'a condition can opt out of its entry');
  const vetoed = parsePolicy(text('approvals: { elicitation: false }\n')).engine;
  assert.equal(vetoed.decide('b', {}).elicitation, false);
});
