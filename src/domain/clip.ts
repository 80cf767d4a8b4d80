/**
 * A value a person or a source gave, shortened for a message that quotes it: a 5,000-character
 * argument is named by its start, not echoed whole. Never cuts a surrogate pair in two.
 */
export function clip(s: string, max = 60): string {
  if (s.length <= max) return s;
  const end = /[\uD800-\uDBFF]/.test(s[max - 1]!) ? max - 1 : max;
  return `${s.slice(0, end)}…`;
}
