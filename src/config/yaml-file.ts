import { LineCounter, parseDocument } from 'yaml';

/**
 * A YAML (or JSON) settings file read with its lines, so an error says where: a syntax error as
 * `file:line:col: message` (thrown), a value by the line of the deepest node its path reaches (a
 * missing key: its parent's). One reader for the files a person writes by hand (the config file,
 * the grants file), so each error reads the same way.
 */
export interface YamlFile {
  /** the document as plain data (null for an empty file) */
  value: unknown;
  /** `:line` of the node at `path` (or of its deepest existing parent), or '' */
  lineOf(path: readonly PropertyKey[]): string;
}

export function readYamlText(text: string, path: string): YamlFile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new Error(`${path}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`);
  }
  return {
    value: doc.toJS(),
    lineOf(p) {
      for (let n = p.length; n >= 0; n--) {
        const node = (n === 0 ? doc.contents : doc.getIn(p.slice(0, n) as (string | number)[], true)) as { range?: [number, number, number] } | null | undefined;
        if (node?.range) return `:${lc.linePos(node.range[0]).line}`;
      }
      return '';
    },
  };
}

/** A schema issue's path as the message names it: `grants[0].identity`, or `(root)`. */
export function issuePath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('') || '(root)';
}
