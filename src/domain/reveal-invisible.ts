import { INVISIBLE_CLASS, PLAIN_ASCII } from './process-name.js';

/**
 * INVISIBLE, and the line and paragraph separators U+2028 and U+2029: they show nothing, and text
 * layout (a pager, a log viewer, an editor) breaks the line there, so a stored name holding one
 * could print a line of its own. Not in INVISIBLE, which also folds process names: revealing them
 * must not change how a name is stored.
 */
const REVEALED = new RegExp(`[${INVISIBLE_CLASS}\\p{Zl}\\p{Zp}]`, 'gu');

/**
 * `text` with each invisible character (controls, bidi and other format characters, default-
 * ignorables, line and paragraph separators: REVEALED) written as "⟨U+202E⟩" where it sits. Stored
 * text is the attacker's, and an invisible character can make it look like another string, or, on
 * a terminal, rewrite what was printed before it (ESC sequences, CR). `keepLineBreaks` keeps tab, CR
 * and LF as they are, for text a page lays out itself; a line-oriented output writes them by name too.
 */
export function revealInvisible(text: string, keepLineBreaks = false): string {
  if (PLAIN_ASCII.test(text)) return text;
  return text.replace(REVEALED, (c) =>
    keepLineBreaks && (c === '\n' || c === '\t' || c === '\r') ? c : `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}⟩`,
  );
}
