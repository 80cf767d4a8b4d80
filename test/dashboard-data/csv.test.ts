import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { csvCell, csvRecord } from '../../src/dashboard-data/csv.js';

/** A strict RFC 4180 reader, to check that whatever a cell holds comes back as written. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (text[i] === '"' && text[i + 1] === '"') (cell += '"'), (i += 2);
        else if (text[i] === '"') {
          i++;
          break;
        } else cell += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\r') cell += text[i++];
    }
    row.push(cell);
    if (text[i] === ',') i++;
    else if (text.startsWith('\r\n', i)) {
      rows.push(row);
      row = [];
      i += 2;
    } else throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
  }
  return rows;
}

test('RFC 4180: quotes, commas and line breaks are quoted; records end with CRLF', () => {
  assert.equal(csvRecord(['a', 'b,c', 'say "hi"', 'two\nlines', null, 443]), 'a,"b,c","say ""hi""","two\nlines",,443\r\n');
});

test('formula injection: text starting with = + - @ tab or CR is kept as text', () => {
  for (const v of ['=HYPERLINK("http://x","y")', '+1', '-2+3', '@SUM(A1)', '\t=1', '\r=1']) {
    assert.ok(csvCell(v).replace(/^"/, '').startsWith("'"), v);
  }
  assert.equal(csvCell('=1,2'), `"'=1,2"`);
  assert.equal(csvCell('a=1'), 'a=1', 'only a leading character is dangerous, or one after a separator or line break');
  assert.equal(csvCell(443), '443');
});

test('property: any cells round-trip through a strict reader (neutralised cells with their apostrophe)', () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 5 }), (rows) => {
      const back = parseCsv(rows.map((r) => csvRecord(r)).join(''));
      const neutralised = (c: string) => {
        const inside = c.replace(/([;\t\r\n][\t\r"]*)([=+\-@])/g, "$1'$2");
        return /^[=+\-@\t\r]/.test(inside) ? `'${inside}` : inside;
      };
      assert.deepEqual(back, rows.map((r) => r.map(neutralised)));
    }),
  );
});

/**
 * Every cell of `text` as a spreadsheet splitting on `sep` reads it (Excel with `;` as its list
 * separator): a cell that starts with a quote is quoted up to a lone quote, and what follows up to
 * the separator or line break joins it; any other cell runs up to the separator or a CR or LF.
 */
function cellsSplitOn(text: string, sep: string): string[] {
  const cells: string[] = [];
  let i = 0;
  while (i <= text.length) {
    let cell = '';
    if (text[i] === '"') {
      for (i++; i < text.length; ) {
        if (text[i] === '"' && text[i + 1] === '"') (cell += '"'), (i += 2);
        else if (text[i] === '"') {
          i++;
          break;
        } else cell += text[i++];
      }
    }
    while (i < text.length && text[i] !== sep && text[i] !== '\r' && text[i] !== '\n') cell += text[i++];
    cells.push(cell);
    if (text[i] === '\r' && text[i + 1] === '\n') i++;
    i++;
  }
  return cells;
}

test('property: read with ; (Excel in de, fr, nl) or a tab as the separator, no cell starts a formula', () => {
  const unit = fc.constantFrom('=', '+', '-', '@', ';', ',', '\t', '\r', '\n', '"', 'a', '1');
  const text = fc.string({ unit, maxLength: 12 });
  fc.assert(
    fc.property(fc.array(fc.array(fc.oneof(text, fc.nat({ max: 65535 }), fc.constant(null)), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 5 }), (rows) => {
      const text = rows.map((r) => csvRecord(r)).join('');
      for (const sep of [';', '\t']) {
        for (const cell of cellsSplitOn(text, sep)) assert.ok(!/^[\t\r]*[=+\-@]/.test(cell), JSON.stringify({ sep, cell, text }));
      }
    }),
  );
  // the review's cells: split on ; they began =HYPERLINK and =cmd
  const line = csvRecord(['build;=HYPERLINK(H2)', "node;=cmd|' /C calc'!A0", 443]);
  assert.equal(line, "build;'=HYPERLINK(H2),node;'=cmd|' /C calc'!A0,443\r\n");
  assert.deepEqual(cellsSplitOn(line, ';'), ['build', "'=HYPERLINK(H2),node", "'=cmd|' /C calc'!A0,443", '']);
});
