/**
 * CSV as RFC 4180 writes it, made safe to open in a spreadsheet. Every text cell is quoted (quotes
 * doubled); numbers we write ourselves are not; records end with CRLF. A cell that a spreadsheet would
 * read as a formula (it starts with = + - @, or a tab or CR, which some spreadsheets skip before
 * one) gets a leading apostrophe: detections carry process names and endpoints an attacker chose,
 * and `=HYPERLINK(...)` in an export must stay text (OWASP "CSV Injection").
 *
 * A spreadsheet may also split on another character than the comma: Excel in locales whose list
 * separator is `;` (German, French, Dutch) read `build;=HYPERLINK(H2)` as two cells, the second a
 * formula, and such a reader does not keep to our quotes either (a quote in the middle of its cell
 * opens nothing, one at the start of its next cell does), so it may also start a cell at a line
 * break inside a text cell. So within a text cell too, a formula character where such a cell may
 * start (after `;`, a tab or a line break, quotes and tabs between) gets an apostrophe before it:
 * the export then shows `build;'=HYPERLINK(H2)`, whichever separator the spreadsheet uses.
 */

const FORMULA_START = /^[=+\-@\t\r]/;
const FORMULA_INSIDE = /([;\t\r\n][\t\r"]*)([=+\-@])/g;

export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  // numbers we write ourselves (a port, an attempt) are never negative; any text is neutralised
  if (typeof value === 'string') {
    s = s.replace(FORMULA_INSIDE, "$1'$2");
    if (FORMULA_START.test(s)) s = `'${s}`;
  }
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRecord(cells: readonly (string | number | boolean | null | undefined)[]): string {
  return cells.map(csvCell).join(',') + '\r\n';
}
