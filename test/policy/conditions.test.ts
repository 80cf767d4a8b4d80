import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, PolicyLoadError } from '../../src/policy/load.js';

function engineWith(cond: Record<string, unknown>, action: 'deny' | 'allow' = 'deny', toolAction = 'allow') {
  const c = { path: 'args.text', action, ...(action === 'deny' ? { reason: 'matched' } : {}), ...cond };
  return parsePolicy(
    JSON.stringify({ version: 1, tools: { t: { action: toolAction, ...(toolAction === 'deny' ? { reason: 'tool' } : {}), when: [c] } } }),
  ).engine;
}

test('the issue repro: a deny on args.text ~ ^rm cannot be passed by wrapping the string in a list', () => {
  const e = engineWith({ op: 'regex', value: '^rm' });
  assert.equal(e.decide('t', { text: 'rm -rf /' }).action, 'deny');
  const wrapped = e.decide('t', { text: ['rm -rf /'] });
  assert.equal(wrapped.action, 'deny');
  assert.equal(wrapped.rule, 'tools.t.when[0]');
  assert.match(wrapped.reason!, /args\.text is an array, but tools\.t\.when\[0\] tests a string/);
  for (const text of [{ cmd: 'rm' }, 5, true]) assert.equal(e.decide('t', { text }).action, 'deny', JSON.stringify(text));
  assert.equal(e.decide('t', { text: 'ls' }).action, 'allow');
  assert.equal(e.decide('t', {}).action, 'allow', 'a missing argument is not a type mismatch');
  assert.equal(e.decide('t', { text: null }).action, 'allow', 'null is an absent optional argument');
});

test('numbers sent as strings (and the reverse) are refused, for every comparing op', () => {
  const cases: [string, unknown, unknown][] = [
    ['gt', 100, '1000'], ['gte', 100, '100'], ['lt', 5, '-1'], ['lte', 5, [1]],
    ['eq', 5, '5'], ['neq', 5, '5'], ['in', [1, 2], '1'], ['not_in', [1, 2], '3'],
    ['eq', 'prod', ['prod']], ['in', ['prod'], { env: 'prod' }], ['eq', true, 'true'], ['eq', { a: 1 }, '{"a":1}'],
    ['contains', 'rm', { 0: 'rm' }], ['contains', 'rm', ['x', 5]], ['contains', 5, '5'], ['contains', 5, [5, '5']],
  ];
  for (const [op, value, text] of cases) {
    // Even a condition whose own action is "allow" denies when it cannot be decided.
    for (const action of ['deny', 'allow'] as const) {
      const d = engineWith({ op, value }, action, 'require_approval').decide('t', { text });
      assert.equal(d.action, 'deny', `${op} ${JSON.stringify(value)} on ${JSON.stringify(text)} (${action})`);
    }
  }
});

test('well-typed values are decided exactly as the op says', () => {
  const cases: [string, unknown, unknown, boolean][] = [
    ['eq', 5, 5, true], ['eq', 5, 6, false], ['neq', 5, 6, true], ['neq', 5, 5, false],
    ['in', ['a', 'b'], 'a', true], ['not_in', ['a', 'b'], 'a', false], ['in', [], 'a', false], ['not_in', [], 'a', true],
    ['contains', 'rm', ['ls', 'sudo rm -rf'], true], ['contains', 'rm', ['ls'], false], ['contains', 'rm', 'farm', true],
    ['contains', 5, [4, 5], true], ['contains', 5, [4], false],
    ['eq', null, null, true], ['neq', null, null, false], ['eq', null, 'x', true /* type mismatch: denied */],
    ['eq', [1, 2], [1, 2], true], ['eq', { a: { b: 1 } }, { a: { b: 1 } }, true], ['eq', { a: 1 }, { a: 1, b: 2 }, false],
    ['exists', true, null, true], ['exists', false, null, false],
  ];
  for (const [op, value, text, denied] of cases) {
    const d = engineWith({ op, value }).decide('t', { text });
    assert.equal(d.action === 'deny', denied, `${op} ${JSON.stringify(value)} on ${JSON.stringify(text)}`);
  }
});

test('paths: through arrays only by index, never through strings or by name into a list', () => {
  const e = parsePolicy(`version: 1
tools:
  t:
    action: allow
    when:
      - { path: args.file.path, op: regex, value: "^/etc", action: deny, reason: "no /etc" }
      - { path: args.cmds.0, op: regex, value: "^rm", action: deny, reason: "no rm" }
`).engine;
  assert.equal(e.decide('t', { file: { path: '/etc/passwd' } }).action, 'deny');
  assert.equal(e.decide('t', { file: [{ path: '/etc/passwd' }] }).action, 'deny', 'a list where an object is expected');
  assert.match(e.decide('t', { file: '/etc/passwd' }).reason!, /tests an object at args\.file/);
  assert.equal(e.decide('t', { file: { path: '/tmp/x' } }).action, 'allow');
  assert.equal(e.decide('t', { file: null }).action, 'allow', 'null on the way is an absent argument');
  assert.equal(e.decide('t', { cmds: ['rm -rf /'] }).action, 'deny');
  assert.equal(e.decide('t', { cmds: { 0: 'rm -rf /' } }).action, 'deny', 'an object keyed "0" is read the same');
  assert.equal(e.decide('t', { cmds: ['ls', 'rm'] }).action, 'allow');
});

test('__proto__ and constructor are ordinary own keys; inherited properties are never read', () => {
  const e = parsePolicy(`version: 1
tools:
  t:
    action: allow
    when:
      - { path: args.__proto__.x, op: eq, value: 1, action: deny, reason: "proto" }
      - { path: args.constructor, op: exists, action: deny, reason: "ctor" }
`).engine;
  assert.equal(e.decide('t', JSON.parse('{"__proto__":{"x":1}}')).reason, 'proto');
  assert.equal(e.decide('t', {}).action, 'allow', 'Object.prototype.constructor is not an argument');
  assert.equal(e.decide('t', JSON.parse('{"constructor":"x"}')).reason, 'ctor');
  assert.equal(e.decide('t', JSON.parse('{"\\u0078":"unicode escapes are decoded before the check"}')).action, 'allow');
});

test('a list of mixed types in in/not_in is refused when the policy loads', () => {
  assert.throws(
    () => parsePolicy(JSON.stringify({ version: 1, tools: { t: { when: [{ path: 'args.n', op: 'in', value: [1, '1'], action: 'deny', reason: 'r' }] } } })),
    (e: PolicyLoadError) => e.issues.some((i) => i.path === 'tools.t.when[0].value' && /one type/.test(i.message)),
  );
});

test('ignore_case: every string comparison folds both sides; it is refused where no string is compared', () => {
  const cases: [string, unknown, unknown, 'deny' | 'allow'][] = [
    ['eq', 'Initech', 'INITECH', 'deny'], ['eq', 'initech', 'iNiTeCh', 'deny'], ['eq', 'initech', 'initech2', 'allow'],
    ['neq', 'Initech', 'initech', 'allow'], ['neq', 'initech', 'acme', 'deny'],
    ['in', ['Initech', 'umbrella'], 'UMBRELLA', 'deny'], ['not_in', ['acme'], 'ACME', 'allow'], ['not_in', ['acme'], 'initech', 'deny'],
    ['regex', '^init', 'INITECH', 'deny'], ['contains', 'Tech', 'initech', 'deny'], ['contains', 'tech', ['A', 'INITECH'], 'deny'],
  ];
  for (const [op, value, text, want] of cases) {
    const e = engineWith({ op, value, ignore_case: true });
    assert.equal(e.decide('t', { text }).action, want, `${op} ${JSON.stringify(value)} on ${JSON.stringify(text)}`);
  }
  assert.equal(engineWith({ op: 'eq', value: 'Initech' }).decide('t', { text: 'INITECH' }).action, 'allow', 'exact unless asked');
  assert.equal(engineWith({ op: 'eq', value: 'initech', ignore_case: true }).decide('t', { text: 5 }).action, 'deny', 'a number is still refused');
  for (const [op, value] of [['gt', 1], ['eq', 5], ['in', [1, 2]], ['exists', true], ['contains', 5]] as const) {
    assert.throws(
      () => engineWith({ op, value, ignore_case: true }),
      (e: unknown) => e instanceof PolicyLoadError && /ignore_case compares strings/.test(e.message),
      `${op} ${JSON.stringify(value)}`,
    );
  }
});

test('decide with caseless arguments: a condition on one of them compares ignoring case; other paths stay exact', () => {
  const policy = parsePolicy(
    JSON.stringify({
      version: 1,
      tools: {
        t: {
          when: [
            { path: 'args.owner', op: 'eq', value: 'Initech', action: 'deny', reason: 'initech' },
            { path: 'args.job', op: 'eq', value: 'Deploy', action: 'deny', reason: 'deploy' },
          ],
        },
      },
    }),
  ).engine;
  const caseless = new Map([['owner', null]]);
  for (const owner of ['initech', 'INITECH', 'Initech']) assert.equal(policy.decide('t', { owner }, caseless).reason, 'initech', owner);
  assert.equal(policy.decide('t', { owner: 'INITECH' }).action, 'allow', 'without the readings (a generic upstream) the comparison is exact');
  assert.equal(policy.decide('t', { job: 'deploy' }, caseless).action, 'allow', 'job is not caseless: workflow and job names are case-sensitive');
  assert.equal(policy.decide('t', { job: 'Deploy' }, caseless).reason, 'deploy');
});

test('decide with argument readings: a whole value (eq, neq, in, not_in) is read as the tool reads the argument; a pattern is not', () => {
  const policy = parsePolicy(
    JSON.stringify({
      version: 1,
      tools: {
        eq: { when: [{ path: 'args.process', op: 'eq', value: '/usr/sbin/Tailscaled', action: 'deny', reason: 'eq' }] },
        in: { when: [{ path: 'args.process', op: 'in', value: ['C:/x/OpenVPN', 'bad!'], action: 'deny', reason: 'in' }] },
        not_in: { when: [{ path: 'args.process', op: 'not_in', value: ['/usr/bin/curl'], action: 'deny', reason: 'not_in' }] },
        contains: { when: [{ path: 'args.process', op: 'contains', value: '/sbin/', action: 'deny', reason: 'contains' }] },
        regex: { when: [{ path: 'args.process', op: 'regex', value: '^/usr/', action: 'deny', reason: 'regex' }] },
      },
    }),
  ).engine;
  // a basename in lower case, refusing "!" (as a parser refuses a value): the call's side arrives already read
  const basename = (v: string) => {
    if (v.includes('!')) throw new Error('refused');
    return v.slice(v.lastIndexOf('/') + 1).toLowerCase();
  };
  const readings = new Map([['process', basename]]);
  assert.equal(policy.decide('eq', { process: 'tailscaled' }, readings).reason, 'eq');
  assert.equal(policy.decide('eq', { process: 'tailscaled' }).action, 'allow', 'exact without readings');
  assert.equal(policy.decide('in', { process: 'openvpn' }, readings).reason, 'in');
  assert.equal(policy.decide('in', { process: 'bad!' }, readings).reason, 'in', 'a value the reading refuses stays as written');
  assert.equal(policy.decide('not_in', { process: 'curl' }, readings).action, 'allow');
  assert.equal(policy.decide('not_in', { process: 'wget' }, readings).reason, 'not_in');
  // patterns are not values: read as written, ignoring case
  assert.equal(policy.decide('contains', { process: 'tailscaled' }, readings).action, 'allow');
  assert.equal(policy.decide('contains', { process: '/USR/SBIN/x' }, readings).reason, 'contains');
  assert.equal(policy.decide('regex', { process: '/USR/bin/x' }, readings).reason, 'regex');
});

test('argument keys that differ only in case from a condition\'s key are denied: a loose upstream could read any of them', () => {
  const e = engineWith({ path: 'args.owner', op: 'eq', value: '*' });
  assert.equal(e.decide('t', { owner: '*' }).action, 'deny', 'the condition itself');
  assert.equal(e.decide('t', { owner: 'acme' }).action, 'allow');
  const hidden = e.decide('t', { Owner: '*' });
  assert.equal(hidden.action, 'deny', 'a key in another case is not passed unseen');
  assert.match(hidden.reason!, /args has keys that differ only in case \("Owner"\), and tools\.t\.when\[0\] tests args\.owner/);
  const both = e.decide('t', { owner: 'acme', OWNER: '*' });
  assert.equal(both.action, 'deny');
  assert.match(both.reason!, /\("owner", "OWNER"\)/);
  // compatibility forms fold too: U+212A KELVIN SIGN is a K to Go's case folding
  const kelvin = engineWith({ path: 'args.key', op: 'eq', value: 'x' });
  assert.equal(kelvin.decide('t', { '\u212Aey': 'x' }).action, 'deny');
  // an allow-list condition: only acme may pass, and a twin key cannot smuggle another owner in
  const only = engineWith({ path: 'args.owner', op: 'neq', value: 'acme' });
  assert.equal(only.decide('t', { owner: 'acme' }).action, 'allow');
  assert.equal(only.decide('t', { owner: 'acme', OWNER: 'globex' }).action, 'deny');
  // along a nested path, at the level where the twin is
  const nested = engineWith({ path: 'args.repo.owner', op: 'eq', value: 'evil' });
  assert.equal(nested.decide('t', { repo: { owner: 'ok', Owner: 'evil' } }).action, 'deny');
  assert.match(nested.decide('t', { repo: { owner: 'ok', Owner: 'evil' } }).reason!, /args\.repo has keys/);
  assert.equal(nested.decide('t', { Repo: { owner: 'evil' } }).action, 'deny');
  // through a list, entered by index as the condition's path is
  const listed = engineWith({ path: 'args.items.0.owner', op: 'eq', value: 'evil' });
  assert.equal(listed.decide('t', { items: [{ owner: 'evil' }] }).action, 'deny');
  assert.equal(listed.decide('t', { items: [{ owner: 'ok', OWNER: 'evil' }] }).action, 'deny');
  assert.equal(listed.decide('t', { items: [{ Owner: 'evil' }] }).action, 'deny');
  assert.match(listed.decide('t', { items: [{ Owner: 'evil' }] }).reason!, /args\.items\.0 has keys that differ only in case \("Owner"\)/);
  assert.equal(listed.decide('t', { items: [{ owner: 'ok' }, { OWNER: 'evil' }] }).action, 'allow', 'another element is not on the path');
  // keys off every condition's path are the tool's business
  assert.equal(e.decide('t', { owner: 'acme', Title: 'a', title: 'b' }).action, 'allow');
  assert.equal(nested.decide('t', { repo: { owner: 'ok', name: 'x', Name: 'y' } }).action, 'allow');
});
