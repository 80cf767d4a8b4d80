import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, PolicyLoadError } from '../../src/policy/load.js';
import { isCanonicalToolName, toolNameMatcher } from '../../src/domain/glob.js';

const POLICY = `version: 1
hide: ["admin_*"]
tools:
  "ops_*": { action: deny, reason: "no ops tools" }
  "db?drop": { action: deny, reason: "no drops" }
  delete_repo: { action: deny, reason: "never" }
  read_file: { action: allow, rate_limit: { max: 1, window: 60 } }
`;

test('globs match tool names containing "/" and "." (namespaced names behind aggregators)', () => {
  const { engine } = parsePolicy(POLICY);
  assert.ok(engine.isHidden('admin_users/delete'));
  assert.equal(engine.decide('admin_users/delete', {}).rule, 'hide');
  assert.ok(engine.isHidden('admin_.hidden'));
  const d = engine.decide('ops_cluster/nodes.drain', {});
  assert.equal(d.action, 'deny');
  assert.equal(d.rule, 'tools["ops_*"]');
  assert.equal(engine.decide('db/drop', {}).action, 'deny', '? matches one character, "/" included');
  assert.equal(engine.decide('db//drop', {}).action, 'allow', '? is exactly one character');
  assert.equal(engine.decide('xadmin_users', {}).rule, 'default', 'patterns are anchored');
});

test('case and compatibility forms cannot dodge a deny, hide or limit', () => {
  const { engine } = parsePolicy(POLICY);
  for (const name of ['Delete_Repo', 'DELETE_REPO', 'ｄｅｌｅｔｅ_repo']) {
    assert.equal(engine.decide(name, {}).action, 'deny', name);
  }
  assert.ok(engine.isHidden('ADMIN_users/delete'));
  assert.equal(engine.decide('Read_File', {}).rule, 'tools.read_file', 'the same entry (and so the same counter) applies');
  // the dotted capital I (U+0130) and the dotless i (U+0131): an upstream's simple case mapping reads both as i
  assert.ok(engine.isHidden('ADM\u0130N_users'), 'exact and * entries');
  assert.ok(engine.isHidden('adm\u0131n_users'));
  assert.equal(engine.decide('READ_F\u0130LE', {}).rule, 'tools.read_file', 'and the same limit');
  assert.ok(toolNameMatcher('adm?n_users')('ADM\u0130N_users'), '? is one character: İ folds to one "i"');
});

test('names with whitespace, invisible or non-NFKC characters are refused whatever the policy says', () => {
  const { engine } = parsePolicy(POLICY);
  for (const name of [' delete_repo', 'delete_repo ', 'delete_repo\n', 'delete\u200b_repo', 'delete_repo\u00ad', 'ｄelete_repo\ufe0f', 'read_file\u0000', '']) {
    const d = engine.decide(name, {});
    assert.equal(d.action, 'deny', JSON.stringify(name));
    assert.equal(d.rule, 'tool_name');
    assert.ok(engine.isHidden(name));
  }
  assert.ok(isCanonicalToolName('admin_users/delete'));
  assert.ok(isCanonicalToolName('ツール'));
  // drawn blank, or by no font that does not choose to: a person would read "read_file"
  for (const odd of ['\u2800', '\u{1D159}', '\uE000', '\u0378']) assert.ok(!isCanonicalToolName(`read_file${odd}`), JSON.stringify(odd));
  assert.ok(!isCanonicalToolName('ﾂｰﾙ'), 'half-width katakana is not NFKC-stable');
});

test('policy validation refuses keys that collide when case is ignored, and glob syntax it does not support', () => {
  const bad = `version: 1
hide: ["{a,b}_*", " padded"]
tools:
  delete_repo: { action: deny, reason: r }
  Delete_Repo: { action: allow }
  "[ab]_tool": { action: allow }
`;
  let err: PolicyLoadError | undefined;
  try {
    parsePolicy(bad, 'p.yaml');
  } catch (e) {
    err = e as PolicyLoadError;
  }
  assert.ok(err instanceof PolicyLoadError, 'must be refused');
  const paths = err.issues.map((i) => `${i.line}:${i.path}`);
  for (const want of ['2:hide[0]', '2:hide[1]', '5:tools.Delete_Repo', '6:tools["[ab]_tool"]']) {
    assert.ok(paths.includes(want), `missing ${want} in ${paths.join(', ')}`);
  }
  assert.match(err.message, /only "\*" and "\?"/);
});

// Without the bound, a backtracking regex would run for hours on this input.
test('matching stays linear on adversarial names', { timeout: 60_000 }, () => {
  const m = toolNameMatcher('*a*a*a*a*a*a*a*b');
  const name = 'a'.repeat(20_000);
  assert.equal(m(name), false);
  assert.equal(m(`${name}b`), true);
});
