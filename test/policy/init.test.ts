import { test } from 'node:test';
import assert from 'node:assert/strict';
import { starterPolicy } from '../../src/policy/init.js';
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
