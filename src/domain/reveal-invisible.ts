import { INVISIBLE, PLAIN_ASCII } from './process-name.js';

/**
 * `text` with each invisible character (controls, bidi and other format characters, default-
 * ignorables: INVISIBLE) written as "⟨U+202E⟩" where it sits. Stored text is the attacker's, and an
 * invisible character can make it look like another string, or, on a terminal, rewrite what was
 * printed before it (ESC sequences, CR). `keepLineBreaks` keeps tab, CR and LF as they are, for
 * text a page lays out itself; a line-oriented output writes them by name too.
 */
export function revealInvisible(text: string, keepLineBreaks = false): string {
  if (PLAIN_ASCII.test(text)) return text;
  return text.replace(INVISIBLE, (c) =>
    keepLineBreaks && (c === '\n' || c === '\t' || c === '\r') ? c : `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}⟩`,
  );
}
