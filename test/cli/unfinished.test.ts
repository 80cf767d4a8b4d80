import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const MODULE = pathToFileURL(resolve('dist/src/cli/unfinished.js')).href;

function endWith(work: string): { status: number | null; stderr: string } {
  const script = `import { failIfUnfinished } from ${JSON.stringify(MODULE)}; failIfUnfinished(${work});`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

test('a process that ends while its command is still pending fails with exit 70 and says so, instead of exit 0', () => {
  const stalled = endWith('new Promise(() => {})');
  assert.equal(stalled.status, 70);
  assert.match(stalled.stderr, /^egress-triage: the command stopped before it finished \(nothing left to wait for\); this is a bug/);
});

test('a command that finished, or failed with its own code, ends as it chose', () => {
  assert.deepEqual(endWith('Promise.resolve()'), { status: 0, stderr: '' });
  assert.deepEqual(endWith('new Promise((ok) => setTimeout(ok, 10))'), { status: 0, stderr: '' });
  // a code already set is a failure reported by the command: kept
  assert.deepEqual(endWith('(process.exitCode = 5, new Promise(() => {}))'), { status: 5, stderr: '' });
});
