import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toolNameKey, toolNameMatcher } from '../../src/domain/glob.js';

/** The definition, written the slowest obvious way: `*` any run (empty too), `?` one code point. */
function reference(p: readonly string[], s: readonly string[]): boolean {
  if (p.length === 0) return s.length === 0;
  const [h, ...rest] = p;
  if (h === '*') {
    for (let i = 0; i <= s.length; i++) if (reference(rest, s.slice(i))) return true;
    return false;
  }
  if (s.length === 0) return false;
  return (h === '?' || h === s[0]) && reference(rest, s.slice(1));
}

// Characters that stress the semantics: separators, case, width forms, an astral letter, a ligature.
const CHARS = ['a', 'b', 'A', 'B', '_', '/', '.', '-', 'é', 'É', 'ａ', 'Ｂ', '𝐀', 'ﬁ', 'ß', 'ǅ'];
const nameArb = fc.array(fc.constantFrom(...CHARS), { maxLength: 10 }).map((a) => a.join(''));
const patternArb = fc.array(fc.constantFrom(...CHARS, '*', '*', '?'), { maxLength: 8 }).map((a) => a.join(''));

test('tool-name glob agrees with a brute-force reference matcher', () => {
  fc.assert(
    fc.property(patternArb, nameArb, (p, s) => {
      assert.equal(toolNameMatcher(p)(s), reference([...toolNameKey(p)], [...toolNameKey(s)]), `${JSON.stringify(p)} vs ${JSON.stringify(s)}`);
    }),
    { numRuns: 5000 },
  );
});

test('a pattern built from a name by replacing any parts with * or ? still matches it, in any case', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(...CHARS), fc.constantFrom('keep', 'star', 'q')), { maxLength: 10 }), (parts) => {
      const name = parts.map(([c]) => c).join('');
      const key = [...toolNameKey(name)];
      // Build the pattern over the folded name so every `?` stands for exactly one folded code point.
      const pattern = key.map((c, i) => (parts[i]?.[1] === 'star' ? '*' : parts[i]?.[1] === 'q' ? '?' : c)).join('');
      assert.ok(toolNameMatcher(pattern)(name), `${pattern} vs ${name}`);
      assert.ok(toolNameMatcher(pattern)(name.toUpperCase()), `${pattern} vs upper ${name}`);
      assert.ok(toolNameMatcher(pattern)(name.normalize('NFKD')), `${pattern} vs decomposed ${name}`);
    }),
    { numRuns: 2000 },
  );
});

test('every character folds to the key of its lower and upper case (an upstream may resolve names by either): ẞ meets ß and "ss"', () => {
  // the whole of Unicode's letters that have cases lie below U+20000; checked exhaustively, not sampled
  const odd: string[] = [];
  for (let cp = 0; cp < 0x20000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    const key = toolNameKey(`x${ch}`);
    for (const other of [ch.toLowerCase(), ch.toUpperCase()]) {
      if (other !== ch && toolNameKey(`x${other}`) !== key) odd.push(`U+${cp.toString(16).toUpperCase()} ${ch} vs ${other}`);
    }
  }
  assert.deepEqual(odd, []);
  assert.equal(toolNameKey('STRAẞE_DELETE'), toolNameKey('straße_delete'));
  assert.equal(toolNameKey('STRAẞE_DELETE'), toolNameKey('STRASSE_DELETE'));
});
