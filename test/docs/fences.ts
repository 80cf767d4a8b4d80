import { readFileSync } from 'node:fs';

/** One fenced code block of a Markdown file. */
export interface Fence {
  file: string;
  /** 1-based line of the opening fence, for messages that say where. */
  line: number;
  lang: string;
  /** Words after the language in the info string, e.g. `output` in "```json output". */
  flags: string[];
  text: string;
}

/**
 * Fenced blocks of a Markdown file, in order, including fences indented inside list items.
 * Hand-written rather than a Markdown library because the tests need each block's line number to say
 * where a failing snippet is, and CommonMark lexers drop source positions.
 */
export function readFences(file: string): Fence[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, marker, lang, rest] = open as unknown as [string, string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim().startsWith(marker) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    out.push({ file, line: i + 1, lang: lang.toLowerCase(), flags: rest.split(/\s+/).filter(Boolean), text: body.join('\n') });
    i = j;
  }
  return out;
}

/**
 * Shell commands of a block: comments and blank lines dropped, `\` continuations joined.
 * A trailing comment needs two spaces before `#` (as the docs write them), so `#` inside arguments stays.
 */
export function shellCommands(text: string): string[] {
  const joined = text.replace(/\\\n\s*/g, '');
  const out: string[] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.replace(/\s{2,}#.*$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    out.push(line);
  }
  return out;
}

/** `$ command` lines of a transcript (a ```text block), each with the output shown after it. */
export function transcriptCommands(text: string): { command: string; firstOutput: string; output: string }[] {
  const lines = text.split('\n');
  const out: { command: string; firstOutput: string; output: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\$ (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const command = m[1]!.replace(/\s{2,}#.*$/, '').trim();
    let j = i + 1;
    while (j < lines.length && !/^\$ /.test(lines[j]!)) j++;
    const output = lines.slice(i + 1, j).join('\n').trimEnd();
    out.push({ command, firstOutput: lines[i + 1] ?? '', output });
  }
  return out;
}
