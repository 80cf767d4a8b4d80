import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProcessInterner } from '../../src/ingest/record-parser.js';
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

test('calls of one process share the first object seen and its number, whatever their pids', () => {
  const i = new ProcessInterner(16);
  const first = proc();
  const e = i.intern(first);
  assert.equal(e.p, first);
  assert.equal(i.intern(proc({ pid: 11 })), e);
  assert.equal(i.intern(proc({ pid: 12, parent: { name: 'bash', path: '/usr/bin/bash', pid: 99, parent: null } })), e);
});

test('processes whose variant keys collide but whose fields differ are never merged', () => {
  const i = new ProcessInterner(16);
  const lower = proc();
  const l = i.intern(lower);
  // the key lower-cases the hash and writes an absent path as '': same key, other process
  const upper = proc({ sha256: SHA.toUpperCase() });
  assert.equal(variantKeyOf(upper), variantKeyOf(lower));
  assert.equal(i.intern(upper).p, upper);
  const parentNoPath = proc({ parent: { name: 'bash', parent: null } });
  const parentEmptyPath = proc({ parent: { name: 'bash', path: '', parent: null } });
  assert.equal(variantKeyOf(parentEmptyPath), variantKeyOf(parentNoPath));
  assert.equal(i.intern(parentNoPath).p, parentNoPath);
  assert.equal(i.intern(parentEmptyPath).p, parentEmptyPath);
  const emptyPath = proc({ path: '' });
  const noPath = proc({ path: undefined });
  i.intern(noPath);
  assert.equal(i.intern(emptyPath).p, emptyPath);
  const deeper = proc({ parent: { name: 'bash', path: '/usr/bin/bash', parent: { name: 'init', parent: null } } });
  assert.notEqual(i.intern(deeper), l);
});

test('the interner stays bounded, per name too, and keeps answering right once full', () => {
  const i = new ProcessInterner(4);
  const made: ProcessInfo[] = [];
  for (let n = 0; n < 10; n++) made.push(proc({ name: `tool-${n}` }));
  for (const p of made) assert.equal(i.intern(p).p, p);
  const again = proc({ name: 'tool-9', pid: 77 });
  assert.equal(i.intern(again).p, made[9]);
  const held = () => [...(i as unknown as { byName: Map<string, unknown[]> }).byName.values()].reduce((n, b) => n + b.length, 0);
  assert.ok(held() <= 4);
  // thousands of binaries under one name: each numbered, at most 32 held
  const wide = new ProcessInterner(4096);
  const ids = new Set<number>();
  for (let n = 0; n < 1000; n++) ids.add(wide.intern(proc({ name: 'tailscaled', sha256: n.toString(16).padStart(64, '0') })).id);
  assert.equal(ids.size, 1000);
  assert.ok((wide as unknown as { byName: Map<string, unknown[]> }).byName.get('tailscaled')!.length <= 32);
});

test('property: two processes share a number exactly when they are equal in every field but pid, also after clears', () => {
  const name = fc.constantFrom('curl', 'tailscaled', 'node');
  const opt = (a: fc.Arbitrary<string>) => fc.option(a, { nil: undefined });
  const parent = fc.option(fc.record({ name, path: opt(fc.constantFrom('/bin/bash', '', '/usr/bin/bash')), sha256: opt(fc.constantFrom(SHA, SHA.toUpperCase())) }), { nil: null });
  const process = fc.record({
    name, path: opt(fc.constantFrom('/usr/bin/curl', '/tmp/curl', '')), sha256: opt(fc.constantFrom(SHA, 'cd'.repeat(32))), pid: fc.nat(), parent,
  });
  const fields = (p: ProcessInfo): string => JSON.stringify([p.name, p.path ?? null, p.sha256 ?? null, p.parent ? [p.parent.name, p.parent.path ?? null, p.parent.sha256 ?? null] : null]);
  fc.assert(
    fc.property(fc.array(process, { maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (ps, max) => {
      const i = new ProcessInterner(max);
      const owner = new Map<number, string>();
      for (const p of ps as ProcessInfo[]) {
        const e = i.intern(p);
        assert.equal(fields(e.p), fields(p), 'the shared object is equal in every field');
        const was = owner.get(e.id);
        assert.ok(was === undefined || was === fields(p), `number ${e.id} given to two processes`);
        owner.set(e.id, fields(p));
      }
    }),
  );
});
