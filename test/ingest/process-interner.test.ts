import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessInterner, VariantIds } from '../../src/ingest/record-parser.js';
import { variantKeyOf } from '../../src/detection/engine.js';
import type { ProcessInfo } from '../../src/domain/types.js';

const SHA = 'ab'.repeat(32);

function proc(o: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    name: 'curl', path: '/usr/bin/curl', sha256: SHA, pid: 10,
    parent: { name: 'bash', path: '/usr/bin/bash', sha256: undefined, pid: 9, parent: null },
    ...o,
  };
}

function intern(i: ProcessInterner, p: ProcessInfo): ProcessInfo {
  return i.intern(variantKeyOf(p), p);
}

test('calls of one process share the first object seen, whatever their pids', () => {
  const i = new ProcessInterner(16);
  const first = proc();
  assert.equal(intern(i, first), first);
  assert.equal(intern(i, proc({ pid: 11 })), first);
  assert.equal(intern(i, proc({ pid: 12, parent: { name: 'bash', path: '/usr/bin/bash', pid: 99, parent: null } })), first);
});

test('processes whose variant keys collide but whose fields differ are never merged', () => {
  const i = new ProcessInterner(16);
  const lower = proc();
  intern(i, lower);
  // the key lower-cases the hash and writes an absent path as '': same key, other process
  const upper = proc({ sha256: SHA.toUpperCase() });
  assert.equal(variantKeyOf(upper), variantKeyOf(lower));
  assert.equal(intern(i, upper), upper);
  const parentNoPath = proc({ parent: { name: 'bash', parent: null } });
  const parentEmptyPath = proc({ parent: { name: 'bash', path: '', parent: null } });
  assert.equal(variantKeyOf(parentEmptyPath), variantKeyOf(parentNoPath));
  assert.equal(intern(i, parentNoPath), parentNoPath);
  assert.equal(intern(i, parentEmptyPath), parentEmptyPath);
  const emptyPath = proc({ path: '' });
  const noPath = proc({ path: undefined });
  assert.equal(variantKeyOf(emptyPath), variantKeyOf(noPath));
  intern(i, noPath);
  assert.equal(intern(i, emptyPath), emptyPath);
  const deeper = proc({ parent: { name: 'bash', path: '/usr/bin/bash', parent: { name: 'init', parent: null } } });
  assert.notEqual(intern(i, deeper), lower);
});

test('the interner stays bounded and keeps answering right once full', () => {
  const i = new ProcessInterner(4);
  const made: ProcessInfo[] = [];
  for (let n = 0; n < 10; n++) made.push(proc({ name: `tool-${n}` }));
  for (const p of made) assert.equal(intern(i, p), p);
  const again = proc({ name: 'tool-9', pid: 77 });
  assert.equal(intern(i, again), made[9]);
  assert.ok((i as unknown as { byKey: Map<string, ProcessInfo> }).byKey.size <= 4);
});

test('variant numbers: one per variant key, and never one for two keys, not even after the map is cleared', () => {
  const ids = new VariantIds(3);
  const keys = ['a', 'b', 'c', 'd', 'e', 'a', 'b', 'f', 'a'];
  const seen = new Map<number, string>();
  let last: Record<string, number> = {};
  const held = (k: string) => (ids as unknown as { ids: Map<string, number> }).ids.has(k);
  for (const k of keys) {
    const wasHeld = held(k);
    const id = ids.of(k);
    const owner = seen.get(id);
    assert.ok(owner === undefined || owner === k, `number ${id} given to ${owner} and ${k}`);
    seen.set(id, k);
    if (wasHeld) assert.equal(id, last[k], `${k} keeps its number while held`);
    last = { ...last, [k]: id };
  }
  assert.equal(ids.of('f'), last.f, 'a key still held keeps its number');
  assert.ok((ids as unknown as { ids: Map<string, number> }).ids.size <= 3);
});
