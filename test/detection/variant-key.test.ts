import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toVariant, variantKeyOf } from '../../src/detection/engine.js';
import { processVariantKey } from '../../src/storage/sqlite/dictionaries.js';
import type { ProcessInfo } from '../../src/domain/types.js';

test('the fast variant key equals the stored variant key', () => {
  const cases: ProcessInfo[] = [
    { name: 'tailscaled', path: '/usr/sbin/tailscaled', sha256: 'ABCDEF', parent: { name: 'sudo', parent: { name: 'bash', path: '/bin/bash', sha256: 'x' } } },
    { name: 'Unknown', sha256: 'Unknown' },
    { name: 'node', path: '', parent: null },
    { name: 'curl', pid: 7, parent: { name: 'sh', path: '/bin/sh', parent: { name: 'npm', parent: { name: 'node' } } } },
  ];
  let deep: ProcessInfo = { name: 'leaf' };
  for (let i = 0; i < 40; i++) deep = { name: `p${i}`, parent: deep };
  cases.push(deep);
  for (const c of cases) assert.equal(variantKeyOf(c), processVariantKey(toVariant(c)), c.name);
  assert.notEqual(variantKeyOf(cases[0]!), variantKeyOf({ ...cases[0]!, sha256: 'other' }));
});
