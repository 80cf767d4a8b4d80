import { diffArrays } from 'diff';
import { isMap, isScalar, isSeq, parseDocument, YAMLMap, type Document, type ToStringOptions } from 'yaml';
import { columnOf, type PolicyColumn } from './columns.js';
import { SCOPES, type Scope } from './schema.js';

/**
 * The Policy page's edits, applied to the policy file's YAML document, not to its data: the `yaml`
 * Document API changes the few nodes an edit is about and keeps every comment, key order, quoting
 * and flow or block style of the rest. Text in, text out; validation is the caller's (parsePolicy),
 * so an edit that makes the policy invalid is shown with the parser's own errors.
 *
 * What a move touches (and nothing else; `when` conditions and `audit_args` always stay):
 * - to Hidden: the name is added to `hide`; its `tools` entry stays (ignored while hidden), so moving
 *   it back to that entry's column only takes it out of `hide` again.
 * - out of Hidden: the name leaves `hide` (an emptied `hide` is removed); a tool without an entry
 *   gets one.
 * - to Allow / Rate-limited: `action: allow` replaces a deny or require_approval (an entry without
 *   an action keeps none: it already reads as allowed), the deny `reason` or the approval settings
 *   go with the old action; Allow removes `rate_limit`, Rate-limited sets it to the given limit.
 * - to Approval: `action: require_approval`, with `approval_timeout` when one is given (else the
 *   file's default).
 * - to Deny: `action: deny` with the given `reason` (a deny needs one; an entry's existing reason is
 *   kept when none is given).
 * - Rate limits live in the Rate-limited column: a move to any other column removes `rate_limit`, so
 *   each move has its exact way back (a limit written by hand beside an approval is shown in the
 *   diff before it goes).
 * A new entry states `action: allow` explicitly: an entry without an action does not settle one, so
 * a glob, `"*"` or `default: deny` would decide instead of the column it was put in.
 */

export interface LimitInput {
  max: number;
  window: number;
  scope?: Scope;
}

export type PolicyEdit =
  | { op: 'move'; tool: string; to: PolicyColumn; limit?: LimitInput; approvalTimeout?: number; reason?: string }
  /** `index`: which limit of a list (0 for a single `rate_limit` object) */
  | { op: 'limit'; tool: string; index: number; limit: LimitInput };

/** An edit that cannot be applied to this file (not a policy that fails validation: that is PolicyLoadError). */
export class PolicyEditError extends Error {
  override name = 'PolicyEditError';
  constructor(
    message: string,
    /** the form field it is about */
    readonly field?: string,
  ) {
    super(message);
  }
}

export function applyPolicyEdit(text: string, edit: PolicyEdit): string {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) throw new PolicyEditError('the file has YAML syntax errors; fix it on disk first');
  const before = doc.toString(OUT);
  editDocument(doc, edit);
  return keepLayout(text, before, doc.toString(OUT));
}

// never fold a long reason onto two lines
const OUT: ToStringOptions = { lineWidth: 0 };

/**
 * The Document API re-prints the whole file in its own layout (one space before a comment, its own
 * flow padding). Re-printing keeps one line per line, so the edit is carried over line by line: the
 * lines it did not change are the file's own, byte for byte; only changed lines are re-printed.
 */
function keepLayout(original: string, before: string, after: string): string {
  const own = original.split('\n');
  const printed = before.split('\n');
  if (own.length !== printed.length) return after;
  const out: string[] = [];
  let i = 0;
  for (const part of diffArrays(printed, after.split('\n'))) {
    if (part.added) out.push(...part.value);
    else {
      if (!part.removed) out.push(...own.slice(i, i + part.value.length));
      i += part.value.length;
    }
  }
  return out.join('\n');
}

function editDocument(doc: Document, edit: PolicyEdit): void {
  const root = doc.contents;
  if (!isMap(root)) throw new PolicyEditError('the file is not a YAML mapping; fix it on disk first');
  const hide = root.get('hide', true);
  const hideItems = isSeq(hide) ? hide.items : [];
  const hiddenAt = hideItems.findIndex((it) => isScalar(it) && it.value === edit.tool);
  const toolsNode = root.get('tools', true);
  if (toolsNode !== undefined && toolsNode !== null && !isMap(toolsNode)) throw new PolicyEditError('`tools` is not a mapping; fix it on disk first');
  const entryNode = isMap(toolsNode) ? toolsNode.get(edit.tool, true) : undefined;
  if (entryNode !== undefined && entryNode !== null && !isMap(entryNode)) throw new PolicyEditError(`the entry of "${edit.tool}" is not a mapping; fix it on disk first`, 'tool');
  if (hiddenAt < 0 && !entryNode) throw new PolicyEditError(`"${edit.tool}" is not named in the policy file`, 'tool');
  const entry = isMap(entryNode) ? entryNode : undefined;

  if (edit.op === 'limit') {
    if (!entry) throw new PolicyEditError(`"${edit.tool}" has no rate limit`, 'tool');
    setLimit(entry, edit.index, edit.limit);
    return;
  }

  const from = columnOf(entry?.toJSON(), hiddenAt >= 0);
  if (from === edit.to) throw new PolicyEditError(`"${edit.tool}" is already in that column`, 'to');
  if (edit.to === 'hidden') {
    if (isSeq(hide)) hide.add(doc.createNode(edit.tool));
    else insertBefore(doc, root, 'tools', 'hide', doc.createNode([edit.tool], { flow: true }));
    return;
  }
  if (hiddenAt >= 0) {
    hideItems.splice(hiddenAt, 1);
    if (hideItems.length === 0) root.delete('hide');
    // its entry already says this column: taking it out of `hide` is the whole move
    if (entry && columnOf(entry.toJSON(), false) === edit.to) return;
  }
  let target: YAMLMap | undefined = entry;
  if (!target) {
    let tools: YAMLMap;
    if (isMap(toolsNode)) tools = toolsNode;
    else {
      tools = new YAMLMap();
      root.set('tools', tools);
    }
    const created = doc.createNode({}, { flow: true }) as YAMLMap;
    tools.set(doc.createNode(edit.tool), created);
    return moveEntry(doc, created, 'allow', edit, true);
  }
  moveEntry(doc, target, columnOf(target.toJSON(), false), edit, false);
}

function moveEntry(doc: Document, e: YAMLMap, was: PolicyColumn, edit: Extract<PolicyEdit, { op: 'move' }>, created: boolean): void {
  const leave = () => {
    if (was === 'deny') e.delete('reason');
    if (was === 'approval') {
      e.delete('approval_timeout');
      e.delete('approval_elicitation');
    }
  };
  switch (edit.to) {
    case 'allow':
    case 'rate_limited': {
      const limit = edit.to === 'rate_limited' ? checkLimit(edit.limit) : undefined;
      leave();
      if (created || was === 'deny' || was === 'approval') setValue(e, 'action', 'allow');
      if (limit) setValue(e, 'rate_limit', limitNode(doc, limit));
      else e.delete('rate_limit');
      return;
    }
    case 'approval': {
      const timeout = edit.approvalTimeout;
      if (timeout !== undefined && !Number.isFinite(timeout)) throw new PolicyEditError('the approval timeout must be a number of seconds', 'timeout');
      leave();
      e.delete('rate_limit');
      setValue(e, 'action', 'require_approval');
      if (timeout !== undefined) setValue(e, 'approval_timeout', timeout);
      return;
    }
    case 'deny': {
      const reason = edit.reason?.trim();
      if (!reason && !(was !== 'deny' && typeof e.get('reason') === 'string')) throw new PolicyEditError('a deny needs a reason: the agent is shown it', 'reason');
      leave();
      e.delete('rate_limit');
      setValue(e, 'action', 'deny');
      if (reason) setValue(e, 'reason', reason);
      return;
    }
    case 'hidden':
      return;
  }
}

function setLimit(entry: YAMLMap, index: number, input: LimitInput): void {
  const limit = checkLimit(input);
  const node = entry.get('rate_limit', true);
  const target = isSeq(node) ? node.items[index] : index === 0 ? node : undefined;
  if (!isMap(target)) throw new PolicyEditError(isMap(node) || isSeq(node) ? `there is no rate limit number ${index + 1}` : 'this tool has no rate limit', 'index');
  setValue(target, 'max', limit.max);
  setValue(target, 'window', limit.window);
  if (limit.scope !== undefined && limit.scope !== (target.get('scope') ?? 'session')) setValue(target, 'scope', limit.scope);
}

function checkLimit(l: LimitInput | undefined): LimitInput {
  if (!l) throw new PolicyEditError('a rate limit needs max and window', 'max');
  if (!Number.isFinite(l.max)) throw new PolicyEditError('max must be a number', 'max');
  if (!Number.isFinite(l.window)) throw new PolicyEditError('window must be a number of seconds', 'window');
  if (l.scope !== undefined && !(SCOPES as readonly string[]).includes(l.scope)) throw new PolicyEditError(`scope must be one of ${SCOPES.join(', ')}`, 'scope');
  return l;
}

function limitNode(doc: Document, l: LimitInput) {
  return doc.createNode(l.scope === undefined ? { max: l.max, window: l.window } : { max: l.max, window: l.window, scope: l.scope }, { flow: true });
}

/** Sets a key, changing an existing scalar in place so the comment beside it stays. */
function setValue(map: YAMLMap, key: string, value: unknown): void {
  const cur = map.get(key, true);
  if (isScalar(cur) && (typeof value !== 'object' || value === null)) cur.value = value;
  else map.set(key, value);
}

/** Adds `key: value` to the top level just before `before` (or at the end): `hide` reads above `tools`. */
function insertBefore(doc: Document, root: YAMLMap, before: string, key: string, value: unknown): void {
  const at = root.items.findIndex((p) => isScalar(p.key) && p.key.value === before);
  const pair = doc.createPair(key, value);
  if (at < 0) root.items.push(pair);
  else root.items.splice(at, 0, pair);
}
