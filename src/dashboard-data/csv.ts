/**
 * CSV as RFC 4180 writes it, made safe to open in a spreadsheet. A cell is quoted when it holds a
 * quote, comma, CR or LF (quotes doubled); records end with CRLF. A cell that a spreadsheet would
 * read as a formula (it starts with = + - @, or a tab or CR, which some spreadsheets skip before
 * one) gets a leading apostrophe: detections carry process names and endpoints an attacker chose,
 * and `=HYPERLINK(...)` in an export must stay text (OWASP "CSV Injection").
 */

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  // numbers we write ourselves (a port, an attempt) are never negative; any text is neutralised
  if (typeof value === 'string' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRecord(cells: readonly (string | number | boolean | null | undefined)[]): string {
  return cells.map(csvCell).join(',') + '\r\n';
}
