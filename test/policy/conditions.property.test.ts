import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePolicy } from '../../src/policy/load.js';

/**
 * A deny condition must never let through a value that its op would deny under any reading an
 * upstream could make of it: the value itself, a number sent as a string or the reverse, "true" for
 * true, an element of a list, a value inside an object, the JSON text of a list or object. The model
 * below enumerates those readings by brute force; the engine must deny whenever one of them matches.
 */

type J = null | boolean | number | string | J[] | { [k: string]: J };

function same(a: unknown, b: unknown): boolean {
  return canon(a) === canon(b);
}
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function contains(v: J, target: J): boolean {
  return same(v, target) || (v !== null && typeof v === 'object' && Object.values(v).some((x) => contains(x, target)));
}

function readings(v: J, depth = 0): J[] {
  const out: J[] = [v];
  if (depth > 3) return out;
  if (typeof v === 'string') {
    if (v.trim() !== '' && Number.isFinite(Number(v))) out.push(Number(v));
    if (v === 'true' || v === 'false') out.push(v === 'true');
  } else if (typeof v === 'number' || typeof v === 'boolean') out.push(String(v));
  else if (Array.isArray(v)) {
    for (const x of v) out.push(...readings(x, depth + 1));
    out.push(JSON.stringify(v));
  } else if (v !== null) {
    for (const x of Object.values(v)) out.push(...readings(x, depth + 1));
    out.push(JSON.stringify(v));
  }
  return out;
}

/** What an upstream could find at `.b` inside `x` (the value sent as args.a). */
function readAt(x: J): { missing: boolean; values: J[] } {
  if (Array.isArray(x)) {
    const parts = x.map(readAt);
    return { missing: parts.every((p) => p.missing), values: parts.flatMap((p) => p.values) };
  }
  if (x !== null && typeof x === 'object' && Object.prototype.hasOwnProperty.call(x, 'b')) return { missing: false, values: [x.b!] };
  return { missing: true, values: [] };
}

function opHolds(op: string, value: J, r: J): boolean {
  switch (op) {
    case 'eq':
      return same(r, value);
    case 'neq':
      return !same(r, value);
    case 'in':
      return (value as J[]).some((x) => same(x, r));
    case 'not_in':
      return !(value as J[]).some((x) => same(x, r));
    case 'lt':
      return typeof r === 'number' && r < (value as number);
    case 'lte':
      return typeof r === 'number' && r <= (value as number);
    case 'gt':
      return typeof r === 'number' && r > (value as number);
    case 'gte':
      return typeof r === 'number' && r >= (value as number);
    case 'regex':
      return typeof r === 'string' && new RegExp(value as string, 'u').test(r);
    case 'contains':
      if (typeof r === 'string') return typeof value === 'string' && r.includes(value);
      if (Array.isArray(r)) return r.some((x) => same(x, value) || (typeof x === 'string' && typeof value === 'string' && x.includes(value)));
      return false;
    default:
      throw new Error(op);
  }
}

const leaf = fc.oneof(
  fc.constantFrom<J>('rm', 'rm -rf /', 'x rm', '5', '-3', '1e1', ' 5', 'true', 'false', 'null', 'a', '', 0, 5, -3, 10, true, false, null),
  fc.string({ maxLength: 4 }),
  fc.integer({ min: -20, max: 20 }),
);
const sent: fc.Arbitrary<J> = fc.oneof(
  { weight: 3, arbitrary: leaf },
  { weight: 2, arbitrary: fc.array(leaf, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('b', 'x', '0'), leaf, { maxKeys: 2 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<J> },
);
const sameTypeList = fc.oneof(
  fc.array(fc.constantFrom('rm', 'a', '5', 'true', ''), { minLength: 1, maxLength: 3 }),
  fc.array(fc.integer({ min: -5, max: 10 }), { minLength: 1, maxLength: 3 }),
  fc.array(fc.boolean(), { minLength: 1, maxLength: 2 }),
) as fc.Arbitrary<J[]>;
const condition = fc.oneof(
  fc.record({ op: fc.constantFrom('eq', 'neq'), value: fc.oneof(leaf.filter((x) => x !== null), fc.array(leaf, { maxLength: 2 })) }),
  fc.record({ op: fc.constantFrom('in', 'not_in'), value: sameTypeList }),
  fc.record({ op: fc.constantFrom('lt', 'lte', 'gt', 'gte'), value: fc.integer({ min: -10, max: 10 }) }),
  fc.record({ op: fc.constant('regex'), value: fc.constantFrom('^rm', 'rm', '^\\d+$', '^$', '^true$', '5') }),
  fc.record({ op: fc.constant('contains'), value: fc.oneof(fc.constantFrom('rm', '5', 'a'), fc.integer({ min: -3, max: 5 })) }),
) as fc.Arbitrary<{ op: string; value: J }>;

const NEGATIVE = new Set(['neq', 'not_in']);

function decide(cond: { op: string; value: J }, path: string, args: unknown) {
  const { engine } = parsePolicy(
    JSON.stringify({ version: 1, tools: { t: { action: 'allow', when: [{ path, op: cond.op, value: cond.value, action: 'deny', reason: 'hit' }] } } }),
  );
  return engine.decide('t', args).action;
}

test('a deny condition never allows a value that its op would deny, whatever type is sent', () => {
  fc.assert(
    fc.property(condition, sent, (cond, v) => {
      const action = decide(cond, 'args.a', { a: v });
      // neq / not_in deny whatever is not the value itself; for them the value as sent is the reading.
      const rs = NEGATIVE.has(cond.op) ? [v] : readings(v);
      const shouldDeny = rs.some((r) => opHolds(cond.op, cond.value, r) && !(r === null && !NEGATIVE.has(cond.op)));
      if (shouldDeny) assert.equal(action, 'deny', `${cond.op} ${JSON.stringify(cond.value)} let ${JSON.stringify(v)} through`);
    }),
    { numRuns: 2000 },
  );
});

test('the same holds one level down, through lists and objects on the way', () => {
  fc.assert(
    fc.property(condition, fc.oneof(sent, fc.record({ b: sent }), fc.array(fc.record({ b: sent }), { maxLength: 3 })) as fc.Arbitrary<J>, (cond, x) => {
      const action = decide(cond, 'args.a.b', { a: x });
      const at = readAt(x);
      const missingDenies = at.missing && NEGATIVE.has(cond.op);
      const rs = NEGATIVE.has(cond.op) ? at.values : at.values.flatMap((v) => readings(v));
      const shouldDeny = missingDenies || rs.some((r) => r !== null && opHolds(cond.op, cond.value, r));
      if (shouldDeny) assert.equal(action, 'deny', `${cond.op} ${JSON.stringify(cond.value)} let ${JSON.stringify(x)} through`);
    }),
    { numRuns: 2000 },
  );
});

test('a value of the tested type is decided exactly by the op (no blanket denial)', () => {
  fc.assert(
    fc.property(condition, sent, (cond, v) => {
      const want = Array.isArray(cond.value) && (cond.op === 'in' || cond.op === 'not_in') ? typeof cond.value[0] : typeof cond.value;
      const typed =
        cond.op === 'contains'
          ? typeof v === 'string' && typeof cond.value === 'string'
          : ['lt', 'lte', 'gt', 'gte'].includes(cond.op)
            ? typeof v === 'number'
            : cond.op === 'regex'
              ? typeof v === 'string'
              : v !== null && typeof v === want && Array.isArray(v) === (Array.isArray(cond.value) && cond.op !== 'in' && cond.op !== 'not_in');
      fc.pre(typed);
      // A list tested by eq also matches when nested deeper (it could be unwrapped): see docs/policy.md.
      const holds = cond.op === 'eq' && Array.isArray(cond.value) ? contains(v, cond.value) : opHolds(cond.op, cond.value, v);
      assert.equal(decide(cond, 'args.a', { a: v }) === 'deny', holds, `${cond.op} ${JSON.stringify(cond.value)} on ${JSON.stringify(v)}`);
    }),
    { numRuns: 2000 },
  );
});

test('ignore_case: a deny on a string value holds for every spelling of it in another case, and only for those', () => {
  const word = fc.stringMatching(/^[a-zA-Z0-9_-]{1,12}$/);
  // a random case for each character of a string
  const recased = (s: string) => fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((ch, i) => (up[i] ? ch.toUpperCase() : ch.toLowerCase())).join(''));
  fc.assert(
    fc.property(
      word.chain((w) => fc.tuple(fc.constant(w), recased(w), recased(w))),
      word,
      fc.constantFrom('eq', 'in', 'contains', 'regex'),
      ([value, written, sent], other, op) => {
        const condValue = op === 'in' ? [written] : op === 'regex' ? `^${written}$` : written;
        const engine = parsePolicy(
          JSON.stringify({ version: 1, tools: { t: { when: [{ path: 'args.x', op, value: condValue, ignore_case: true, action: 'deny', reason: 'r' }] } } }),
        ).engine;
        assert.equal(engine.decide('t', { x: sent }).action, 'deny', `${op} ${JSON.stringify(condValue)} on ${sent}`);
        const hit = op === 'contains' ? other.toLowerCase().includes(value.toLowerCase()) : other.toLowerCase() === value.toLowerCase();
        assert.equal(engine.decide('t', { x: other }).action, hit ? 'deny' : 'allow', `${op} ${JSON.stringify(condValue)} on ${other}`);
      },
    ),
    { numRuns: 300 },
  );
});

test('a deny on args.owner is never passed by spelling the key in another case, whatever else the call carries (fast-check)', () => {
  const engine = parsePolicy(
    JSON.stringify({ version: 1, tools: { t: { action: 'allow', when: [{ path: 'args.owner', op: 'eq', value: 'evil', action: 'deny', reason: 'no' }] } } }),
  ).engine;
  // what a case-insensitive upstream (Go's encoding/json: the last matching key wins) would read
  const looseRead = (args: Record<string, unknown>): unknown => {
    let v: unknown;
    for (const k of Object.keys(args)) if (k.toLowerCase() === 'owner') v = args[k];
    return v;
  };
  const spelling = fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }).map((up) => [...'owner'].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
  const entry = fc.tuple(fc.oneof(spelling, fc.constantFrom('repo', 'title')), fc.constantFrom('evil', 'acme', 'x'));
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 5 }), (entries) => {
      const args: Record<string, unknown> = {};
      for (const [k, v] of entries) args[k] = v;
      const d = engine.decide('t', args);
      if (looseRead(args) === 'evil' || args.owner === 'evil') assert.equal(d.action, 'deny', JSON.stringify(args));
      const spellings = Object.keys(args).filter((k) => k.toLowerCase() === 'owner');
      if (spellings.length === 1 && spellings[0] === 'owner' && args.owner !== 'evil') assert.equal(d.action, 'allow', JSON.stringify(args));
    }),
    { numRuns: 2000 },
  );
});
