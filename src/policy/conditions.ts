import type { Op } from './schema.js';
import { deepEqual } from './canonical.js';
import { toolNameKey } from '../domain/glob.js';
import { PLAIN_ASCII } from '../domain/process-name.js';

/**
 * Argument conditions, typed and fail-closed.
 *
 * Each condition tests values of one JSON type: numbers for lt/lte/gt/gte, strings for regex, the
 * type of `value` (or of the list's items) for eq/neq/in/not_in, a string or an array for contains.
 * An argument of any other type — "5" for 5, ["rm -rf /"] for a string, an object for anything —
 * cannot be decided: an upstream might read it as the tested value (coercion, unwrapping a one-item
 * list), so the call is denied whatever the condition's own action is. The same holds when the path
 * runs through something that is not an object (an array indexed by name, a string).
 *
 * A list or object tested by eq/in also matches when it arrives nested inside another one.
 *
 * `null` counts as absent (LLM clients send null for optional arguments, and no upstream reads null
 * as a string or number) except where the condition tests null itself, and for `exists`.
 */

export type JsonType = 'null' | 'string' | 'number' | 'boolean' | 'array' | 'object';

export function jsonType(v: unknown): JsonType | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'object';
    default:
      return 'other';
  }
}

export type PathResult =
  | { kind: 'value'; value: unknown }
  | { kind: 'missing' }
  /** The path went through a value that is not an object (or an array indexed by name). */
  | { kind: 'blocked'; at: string; got: string };

/** A path segment that names a list element: lists are entered by index only. */
const LIST_INDEX = /^(0|[1-9]\d*)$/;

/** Follows `args.a.b.0`: objects by own key, arrays by index only. */
export function resolvePath(args: unknown, path: readonly string[]): PathResult {
  let cur: unknown = args;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (cur === null || cur === undefined) return { kind: 'missing' };
    const t = jsonType(cur);
    const indexable = t === 'object' || (t === 'array' && LIST_INDEX.test(seg));
    if (!indexable) return { kind: 'blocked', at: ['args', ...path.slice(0, i)].join('.'), got: t === 'array' ? 'an array' : `a ${t}` };
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return { kind: 'missing' };
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur === undefined ? { kind: 'missing' } : { kind: 'value', value: cur };
}

/**
 * The first object along a condition's path that holds, beside the key the path names, a key that
 * differs from it only in case or compatibility form ("Owner", "OWNER", "\u212Aey" for "key"), with
 * every such key. The policy reads keys exactly, but Go's encoding/json (and .NET, Java binders set to
 * ignore case) match them loosely, the last one winning: `{"owner":"acme","OWNER":"globex"}` would be
 * judged on acme and run on globex, and `{"Owner":"*"}` would pass a condition on args.owner
 * unseen. Such a call cannot be judged as every upstream reads it, so it is denied.
 */
export function caseTwinKeys(args: unknown, path: readonly string[], folds: KeyFolds = new WeakMap()): { at: string; keys: string[] } | null {
  let cur: unknown = args;
  for (let i = 0; i < path.length; i++) {
    if (cur === null || typeof cur !== 'object') return null;
    const seg = path[i]!;
    // lists are entered by index, as resolvePath does; an index has no case
    if (Array.isArray(cur)) {
      if (!LIST_INDEX.test(seg)) return null;
      cur = cur[Number(seg)];
      continue;
    }
    const spellings = foldedKeys(cur as Record<string, unknown>, folds).get(foldKey(seg));
    if (spellings !== undefined && (spellings.length > 1 || spellings[0] !== seg)) return { at: ['args', ...path.slice(0, i)].join('.'), keys: spellings };
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return null;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return null;
}

/** Each object's keys by their folded form, built once per decision however many conditions read it. */
export type KeyFolds = WeakMap<object, Map<string, string[]>>;

function foldedKeys(obj: Record<string, unknown>, folds: KeyFolds): Map<string, string[]> {
  let m = folds.get(obj);
  if (m === undefined) {
    m = new Map();
    for (const k of Object.keys(obj)) {
      const f = foldKey(k);
      const list = m.get(f);
      if (list) list.push(k);
      else m.set(f, [k]);
    }
    folds.set(obj, m);
  }
  return m;
}

/** A key as a loose upstream compares it: lower case, and for other than plain ASCII the tool-name fold. */
function foldKey(k: string): string {
  return PLAIN_ASCII.test(k) ? k.toLowerCase() : toolNameKey(k);
}

/**
 * true: the condition applies; false: it does not; otherwise why it cannot be decided: the argument
 * is of a type the condition does not test, or (`unreadable`) the condition's own value cannot be read
 * as the tool reads the argument (engine.ts, UnreadableValue).
 */
export type Verdict = boolean | { expected: string; got: string } | { unreadable: string };

export type ConditionTest = (r: PathResult) => Verdict;

const article = (t: string) => (t === 'array' || t === 'object' ? `an ${t}` : `a ${t}`);

/**
 * `ignoreCase`: strings are compared in lower case, the condition's and the argument's alike, at any
 * depth of a list or object (a regex gets the `i` flag). Both sides are folded, so a condition
 * written in any case matches an argument in any case.
 */
export function compileCondition(op: Op, value: unknown, ignoreCase = false): ConditionTest {
  const tested = testedTypes(op, value);
  const testsNull = tested.includes('null');
  const base = compileOp(op, value, ignoreCase);
  return (r) => {
    if (r.kind === 'blocked') return { expected: `an object at ${r.at}`, got: r.got };
    if (op === 'exists') return base(r.kind === 'value', r.kind === 'value' ? r.value : undefined);
    const v = r.kind === 'value' ? r.value : undefined;
    if (v === undefined || (v === null && !testsNull)) return base(false, undefined);
    const t = jsonType(v);
    if (tested.length && !tested.includes(t as JsonType)) return { expected: tested.map(article).join(' or '), got: article(t) };
    if (op === 'contains' && t === 'array') {
      const want = jsonType(value) as JsonType;
      const bad = (v as unknown[]).find((x) => jsonType(x) !== want);
      if (bad !== undefined) return { expected: `a list of ${want}s`, got: `a list holding ${article(jsonType(bad))}` };
    }
    return base(true, v);
  };
}

/** The JSON types a condition can decide; an empty list means any (only for `exists` and empty lists). */
function testedTypes(op: Op, value: unknown): JsonType[] {
  switch (op) {
    case 'eq':
    case 'neq':
      return [jsonType(value) as JsonType];
    case 'in':
    case 'not_in': {
      const list = value as unknown[];
      return list.length ? [jsonType(list[0]) as JsonType] : [];
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      return ['number'];
    case 'regex':
      return ['string'];
    case 'contains':
      return jsonType(value) === 'string' ? ['string', 'array'] : ['array'];
    case 'exists':
      return [];
  }
}

type OpTest = (present: boolean, v: unknown) => boolean;

/**
 * The op on a value already known to be of a tested type (or absent). The one place case is
 * handled: a regex gets the `i` flag, every other op compares both sides folded to lower case.
 */
function compileOp(op: Op, value: unknown, ignoreCase: boolean): OpTest {
  if (op === 'regex') {
    const re = new RegExp(value as string, ignoreCase ? 'iu' : 'u');
    return (p, v) => p && re.test(v as string);
  }
  if (!ignoreCase) return exactOp(op, value);
  const folded = exactOp(op, lowerStrings(value));
  return (p, v) => folded(p, lowerStrings(v));
}

function exactOp(op: Exclude<Op, 'regex'>, value: unknown): OpTest {
  switch (op) {
    case 'eq':
      // A list or object value may also arrive wrapped ([[1,2]], {"x": {...}}): any nesting matches.
      return isContainer(value) ? (p, v) => p && deepContains(v, value) : (p, v) => p && deepEqual(v, value);
    case 'neq':
      return (p, v) => !p || !deepEqual(v, value);
    case 'in': {
      const list = value as unknown[];
      return isContainer(list[0]) ? (p, v) => p && list.some((x) => deepContains(v, x)) : (p, v) => p && list.some((x) => deepEqual(x, v));
    }
    case 'not_in': {
      const list = value as unknown[];
      return (p, v) => !p || !list.some((x) => deepEqual(x, v));
    }
    case 'lt':
      return (p, v) => p && (v as number) < (value as number);
    case 'lte':
      return (p, v) => p && (v as number) <= (value as number);
    case 'gt':
      return (p, v) => p && (v as number) > (value as number);
    case 'gte':
      return (p, v) => p && (v as number) >= (value as number);
    case 'contains':
      if (typeof value === 'string') {
        // An upstream may join a list of strings or run each item: a substring in any item counts.
        return (p, v) => p && (Array.isArray(v) ? v.some((x) => (x as string).includes(value)) : (v as string).includes(value));
      }
      return (p, v) => p && (v as unknown[]).some((x) => deepEqual(x, value));
    case 'exists': {
      const want = value === undefined ? true : Boolean(value);
      return (p) => p === want;
    }
  }
}

const isContainer = (v: unknown): boolean => typeof v === 'object' && v !== null;

/** `v` with every string in it lower-cased (object keys kept: they are names, not values). */
function lowerStrings(v: unknown): unknown {
  if (typeof v === 'string') return v.toLowerCase();
  if (Array.isArray(v)) return v.map(lowerStrings);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, lowerStrings(x)]));
  return v;
}

/** `v` equals `target` or holds it at any depth. */
function deepContains(v: unknown, target: unknown): boolean {
  if (deepEqual(v, target)) return true;
  if (typeof v !== 'object' || v === null) return false;
  return Object.values(v).some((x) => deepContains(x, target));
}
