import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonlPieces } from '../../src/storage/audit-page.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import type { AuditRecord } from '../../src/storage/policy-state.js';

/**
 * The JSONL file of the policy audit gets every record of a batch: written in pieces, never as one
 * string that could pass V8's longest string (256 records near the 4 MiB message limit, with
 * `audit_args: plain`), and a record that cannot be serialised is written without its arguments,
 * saying why, instead of taking the batch's other lines with it.
 */

function record(i: number, args?: unknown): AuditRecord {
  return { ts: `2026-12-06T10:00:0${i}.000Z`, session: 's', identity: 'i', tool: `tool_${i}`, args_hash: `h${i}`, ...(args === undefined ? {} : { args }), decision: 'allow', rule: 'r', latency_ms: 1, upstream: 'ok' };
}

test('pieces hold whole lines, at most the limit each unless one line is longer, and together every record in order', () => {
  const records = [record(1, { text: 'a'.repeat(40) }), record(2), record(3, { text: 'b'.repeat(300) }), record(4), record(5)];
  const pieces = [...jsonlPieces(records, 200)];
  assert.ok(pieces.length >= 3, `${pieces.length} pieces`);
  for (const p of pieces) {
    assert.ok(p.endsWith('\n'));
    const lines = p.split('\n').length - 1;
    assert.ok(p.length <= 200 || lines === 1, `a piece of ${p.length} characters holds ${lines} lines`);
  }
  assert.deepEqual(pieces.join('').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord), records);
  assert.deepEqual([...jsonlPieces(records)], [records.map((r) => JSON.stringify(r) + '\n').join('')], 'one piece under the default limit');
});

test('a record that cannot be serialised is written without its arguments, saying why; the others are untouched', () => {
  const bad = { ...record(2, { n: 1n }), reason: 'allowed by r' };
  const lines = [...jsonlPieces([record(1), bad, record(3)])].join('').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  assert.deepEqual(lines.map((r) => r.tool), ['tool_1', 'tool_2', 'tool_3']);
  assert.equal(lines[1]!.args, undefined);
  assert.match(lines[1]!.reason ?? '', /^allowed by r; arguments not written to this file: .*BigInt/);
  assert.equal(lines[1]!.args_hash, 'h2');
});

test('the SQLite sink writes a batch with such a record whole to its file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-jsonl-'));
  try {
    const st = new SqlitePolicyState({ dbPath: join(dir, 'state.db') });
    const errors: string[] = [];
    st.audit.onError = (e) => errors.push(e.message);
    st.audit.append(record(1));
    st.audit.append(record(2, { n: 1n }));
    st.audit.append(record(3));
    st.audit.flush();
    const file = readFileSync(join(dir, 'policy-audit.jsonl'), 'utf8');
    assert.deepEqual(file.trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditRecord).tool), ['tool_1', 'tool_2', 'tool_3']);
    // the table could not store that record's arguments either: said, and the other rows are in
    assert.deepEqual(st.audit.query({}).map((r) => r.tool).sort(), ['tool_1', 'tool_3']);
    assert.equal(errors.length, 1, errors.join('\n'));
    st.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
