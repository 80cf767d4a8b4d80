import { test } from 'node:test';
import assert from 'node:assert/strict';
import { descriptionSummary, starterPolicy } from '../../src/policy/init.js';
import { parsePolicy } from '../../src/policy/load.js';

test('policy init leaves out names that cannot be policy keys, and the starter policy still loads', () => {
  const text = starterPolicy(
    [
      { name: 'read_file', annotations: { readOnlyHint: true } },
      { name: 'Read_File', annotations: { readOnlyHint: true } },
      { name: 'admin/*', annotations: { destructiveHint: true } },
      { name: 'zero\u200bwidth' },
      { name: 'ns/delete', annotations: { destructiveHint: true } },
    ],
    'test',
    new Date(0),
  );
  const { engine } = parsePolicy(text);
  assert.equal(engine.decide('read_file', {}).action, 'allow');
  assert.equal(engine.decide('ns/delete', {}).action, 'deny');
  for (const left of ['admin/*', 'zero\u200bwidth']) {
    assert.ok(text.includes(`# ${JSON.stringify(left)} is left out`), left);
    assert.equal(engine.decide(left, {}).action, 'deny');
  }
  assert.match(text, /"Read_File" is left out \(differs from another tool only in case or width\)/);
});

test('policy init shortens a long description at a word boundary, with an ellipsis', () => {
  const long = 'Delete a suppression rule. WRITE: requires confirm: true after confirming the rule with the user';
  const text = starterPolicy([{ name: 'delete_rule', description: long, annotations: { destructiveHint: true } }], 'test', new Date(0));
  // 80 characters end inside "rule": the comment stops at the word before it
  assert.match(text, /# destructive \(destructiveHint: true\) \(Delete a suppression rule\. WRITE: requires confirm: true after confirming the…\): denied/);
  parsePolicy(text);
  assert.equal(descriptionSummary('List the rules.\nSecond line.'), 'List the rules.');
  assert.equal(descriptionSummary('a'.repeat(80)), 'a'.repeat(80));
  // a word that ends exactly where the room does is kept whole
  assert.equal(descriptionSummary(`${'a'.repeat(70)} ${'b'.repeat(8)} more`), `${'a'.repeat(70)} ${'b'.repeat(8)}…`);
  assert.equal(descriptionSummary(`${'a'.repeat(70)} bbbbbbbbbbbbbbbbbb`), `${'a'.repeat(70)}…`);
  // one word longer than the room has no boundary: it is cut, and the ellipsis says so
  assert.equal(descriptionSummary('x'.repeat(120)), `${'x'.repeat(79)}…`);
});
