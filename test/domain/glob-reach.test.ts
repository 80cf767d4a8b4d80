import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { globMatcher, hostGlobReachesUnder } from '../../src/domain/glob.js';

/**
 * hostGlobReachesUnder decides whether a host glob matches some name under a host: the check that
 * refuses a rule, expectation or allowed endpoint which could cover a risky destination's
 * subdomains. Compared with brute force over a small alphabet, where every short name can be tried.
 */

/** Every string over `alphabet` of length 0..max. */
function strings(alphabet: string, max: number): string[] {
  const out = [''];
  let layer = [''];
  for (let n = 1; n <= max; n++) {
    layer = layer.flatMap((s) => [...alphabet].map((c) => s + c));
    out.push(...layer);
  }
  return out;
}

const NAMES = strings('ab.', 6);

/** The documented semantics, spelt out: `*` any run, `?` one character, all else literal. */
function reference(pattern: string): (v: string) => boolean {
  const re = new RegExp(`^${[...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.]/g, '\\.'))).join('')}$`, 'i');
  return (v) => re.test(v);
}

test('hostGlobReachesUnder agrees with trying every short name (fast-check)', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[ab.*?]{0,6}$/), fc.stringMatching(/^[ab.]{1,3}$/), (pattern, host) => {
      const m = reference(pattern);
      // a pattern with k characters other than `*` that matches some w.host (w a label's end: not
      // empty, no dot last) matches one with |w| <= max(k, 1)
      const brute = NAMES.some((w) => w !== '' && !w.endsWith('.') && m(`${w}.${host}`));
      assert.equal(hostGlobReachesUnder(pattern, host), brute, `${pattern} under ${host}`);
    }),
    { numRuns: 3000 },
  );
});

test('any name under a host, with characters turned into ? and runs into *, still reaches under it (fast-check)', () => {
  const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,14}$/);
  fc.assert(
    fc.property(label, fc.constantFrom('webhook.site', 'gist.githubusercontent.com', 'oastify.com'), fc.array(fc.nat(9), { minLength: 60, maxLength: 60 }), (w, host, choices) => {
      // each character of the name kept, turned into ?, or (with the next ones) swallowed by one *
      const name = `${w}.${host}`;
      let p = '';
      for (let i = 0; i < name.length; i++) {
        const c = choices[i % choices.length]!;
        if (c === 0) {
          p += '*';
          i += choices[(i + 1) % choices.length]! % 4;
        } else p += c === 1 ? '?' : name[i];
      }
      assert.ok(globMatcher(p)(name), `${p} is a pattern of ${name}`);
      assert.equal(hostGlobReachesUnder(p.toUpperCase(), host), true, p);
    }),
    { numRuns: 2000 },
  );
});

test('hostGlobReachesUnder: the reported shapes', () => {
  assert.equal(hostGlobReachesUnder('???????????.site', 'webhook.site'), true);
  assert.equal(hostGlobReachesUnder('?????????.site', 'webhook.site'), true, 'a one-letter label under it');
  assert.equal(hostGlobReachesUnder('????????.site', 'webhook.site'), false, 'one character short of any name under it');
  assert.equal(hostGlobReachesUnder('???????.site', 'webhook.site'), false, 'the host itself only');
  assert.equal(hostGlobReachesUnder('abc*', 'webhook.site'), true);
  assert.equal(hostGlobReachesUnder('*.example.com', 'webhook.site'), false);
  assert.equal(hostGlobReachesUnder('webhook.site', 'webhook.site'), false, 'the host itself is not under it');
});
