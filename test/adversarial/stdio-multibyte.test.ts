import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { JsonLineReader, recoverEnvelope } from '../../src/gateway/json-lines.js';
import { ERAS, REVISION, call, resultText, startGateway } from './stdio-helpers.js';

test('line framing: any split of the bytes gives back the same lines (multi-byte characters included)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/[\n\r]/g, '')), { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (lines, cuts) => {
        const bytes = Buffer.from(lines.map((l) => l + '\n').join(''), 'utf8');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const got: string[] = [];
        const r = new JsonLineReader(1 << 20, (l) => got.push(l), () => assert.fail('not oversize'));
        let prev = 0;
        for (const c of [...at, bytes.length]) {
          r.push(bytes.subarray(prev, c));
          prev = c;
        }
        assert.deepEqual(got, lines.filter((l) => l.trim()));
      },
    ),
    { numRuns: 500 },
  );
});

test('line framing: an oversize line is skipped to its newline, reported once with its id, and the next line is read', () => {
  const got: string[] = [];
  const over: unknown[] = [];
  const r = new JsonLineReader(100, (l) => got.push(l), (o) => over.push({ bytes: o.bytes, ...recoverEnvelope(o) }));
  const big = `{"jsonrpc":"2.0","method":"tools/call","params":{"x":"${'€'.repeat(200)}"},"id":"late"}`;
  for (let i = 0; i < big.length; i += 7) r.push(big.slice(i, i + 7));
  r.push('\n{"id":1}\n');
  assert.deepEqual(over, [{ bytes: Buffer.byteLength(big), id: 'late', method: 'tools/call' }]);
  assert.deepEqual(got, ['{"id":1}']);
  // An id inside a nested object is not taken for the message's own.
  const nested = recoverEnvelope({ bytes: 0, head: '{"params":{"id":5,', tail: `"x":{"id":9}}` });
  assert.equal(nested.id, undefined);
});

for (const era of ERAS) test(`stdio multi-byte (${REVISION[era]}): € over 1 MiB and emoji split across 64 KiB pipe reads arrive intact both ways`, async () => {
  const g = await startGateway('version: 1\n', { era });
  try {
    await g.init();
    const euro = '€'.repeat(400_000); // 1.2 MB of 3-byte characters
    // Put a 4-byte emoji across the first 64 KiB boundary of the line, then a mix across all the others.
    const prefix = Buffer.byteLength(JSON.stringify(call('emoji', 'echo', { text: '' })).slice(0, -3));
    const mixed = 'a'.repeat(65_536 - prefix - 2) + '😀'.repeat(10) + '€😀ü'.repeat(50_000);
    const texts: Record<string, string> = { euro, mixed, small: 'ü€😀' };
    for (const [id, text] of Object.entries(texts)) g.send(call(id, 'echo', { text }));
    for (const [id, text] of Object.entries(texts)) {
      const back = resultText(await g.reply(id, 30_000));
      assert.equal(back.length, text.length, `${id}: no character lost or replaced`);
      assert.ok(back === text, `${id} came back unchanged`);
      assert.ok(!back.includes('\uFFFD'));
    }
    const seen = Object.fromEntries(g.upstreamCalls().map((m) => [m.id, (m.params!.arguments as { text: string }).text]));
    for (const [id, text] of Object.entries(texts)) assert.ok(seen[id] === text, `${id} reached the upstream unchanged`);
    assert.deepEqual(g.auditFile().map((r) => r.upstream), ['ok', 'ok', 'ok']);
  } finally {
    await g.close();
  }
});
