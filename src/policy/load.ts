import { readFileSync } from 'node:fs';
import { readErrno, readErrorText } from '../config/read-error.js';
import { createHash } from 'node:crypto';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { policyFileSchema } from './schema.js';
import { PolicyEngine } from './engine.js';

export interface PolicyIssue {
  /** Dotted path inside the document, e.g. "tools.create_rule.when[0].op". */
  path: string;
  line?: number;
  col?: number;
  message: string;
}

export class PolicyLoadError extends Error {
  constructor(
    readonly file: string,
    readonly issues: PolicyIssue[],
    /** set when the file could not be read at all: the system's error code (ENOENT, EISDIR, EACCES) */
    readonly readErrno?: string,
  ) {
    // A file that cannot be read is not an invalid policy: say what went wrong with the file itself.
    super(
      readErrno !== undefined
        ? `${file}: cannot read the policy file: ${issues.map((i) => i.message).join('; ')}`
        : `${file}: invalid policy:\n${issues.map((i) => `  ${formatIssue(file, i)}`).join('\n')}`,
    );
    this.name = 'PolicyLoadError';
  }
}

export function formatIssue(file: string, i: PolicyIssue): string {
  const loc = i.line ? `${file}:${i.line}${i.col ? `:${i.col}` : ''}` : file;
  return `${loc}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else {
      const k = String(p);
      s += /^[A-Za-z_][\w-]*$/.test(k) ? (s ? `.${k}` : k) : `[${JSON.stringify(k)}]`;
    }
  }
  return s;
}

export interface LoadedPolicy {
  engine: PolicyEngine;
  /** sha256 of the file bytes, for audit records and change detection. */
  hash: string;
  path: string;
}

/** Parses and validates policy text; throws PolicyLoadError listing every problem with its line. */
export function parsePolicy(text: string, file = '<policy>'): LoadedPolicy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const issues: PolicyIssue[] = [];
  for (const e of doc.errors) {
    const pos = lc.linePos(e.pos[0]);
    const message = e.message.split('\n')[0]!;
    // the YAML parser can report one flaw twice at one place ("{{{"): list it once
    if (issues.some((i) => i.line === pos.line && i.col === pos.col && i.message === message)) continue;
    issues.push({ path: '', line: pos.line, col: pos.col, message });
  }
  if (issues.length) throw new PolicyLoadError(file, issues);
  const data = doc.toJS({ maxAliasCount: 100 });
  const lineOf = (path: readonly PropertyKey[]) => nodeLine(doc, lc, path);
  const res = policyFileSchema.safeParse(data ?? {});
  if (!res.success) {
    for (const iss of flattenUnions(res.error.issues)) {
      const keys: (string | undefined)[] = iss.code === 'unrecognized_keys' ? iss.keys : [undefined];
      for (const k of keys) {
        const p = k === undefined ? iss.path : [...iss.path, k];
        const pos = lineOf(p);
        issues.push({
          path: formatPath(p),
          line: pos?.line,
          col: pos?.col,
          message: iss.code === 'unrecognized_keys' ? `unknown key "${String(k)}"` : iss.message,
        });
      }
    }
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new PolicyLoadError(file, issues);
  }
  const engine = new PolicyEngine(res.data, (p) => lineOf(p)?.line);
  return { engine, hash: createHash('sha256').update(text).digest('hex'), path: file };
}

/** The PolicyLoadError for a policy file that could not be read (`e`: what readFileSync threw). */
export function policyReadError(path: string, e: unknown): PolicyLoadError {
  return new PolicyLoadError(path, [{ path: '', message: readErrorText(e) }], readErrno(e));
}

export function loadPolicyFile(path: string): LoadedPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw policyReadError(path, e);
  }
  return parsePolicy(text, path);
}

type ZIssue = { code: string; path: PropertyKey[]; message: string; keys?: string[]; errors?: ZIssue[][] };

/**
 * A union ("rate_limit: {..} | [..]") fails as one vague issue; report the issues of the branch that
 * matched the value's shape instead, so a bad "max" is reported at its own line.
 */
function flattenUnions<T>(issues: readonly T[]): (T & { keys: string[] })[] {
  const out: ZIssue[] = [];
  for (const i of issues as unknown as ZIssue[]) {
    if (i.code === 'invalid_union' && Array.isArray(i.errors) && i.errors.length) {
      const branch = i.errors.find((b) => b.length > 0 && b.every((x) => x.path.length > 0 || x.code !== 'invalid_type'));
      if (branch) {
        out.push(...flattenUnions(branch.map((x) => ({ ...x, path: [...i.path, ...x.path] }))));
        continue;
      }
    }
    out.push(i);
  }
  return out as unknown as (T & { keys: string[] })[];
}

/** Finds the YAML node at `path` (or its nearest existing parent) and returns its position. */
function nodeLine(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): { line: number; col: number } | undefined {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n) as (string | number)[];
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    if (isNode(node) && node.range) {
      // For an unknown or misspelled key, point at the key rather than the value.
      const keyPos = n > 0 ? keyRange(doc, sub) : undefined;
      return lc.linePos(keyPos ?? node.range[0]);
    }
  }
  return undefined;
}

function keyRange(doc: Document, path: (string | number)[]): number | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path[path.length - 1];
  const items = (parent as { items?: unknown[] } | null)?.items;
  if (!Array.isArray(items)) return undefined;
  for (const it of items) {
    const key = (it as { key?: { value?: unknown; range?: [number, number, number] } }).key;
    if (key && key.value === last && key.range) return key.range[0];
  }
  return undefined;
}
