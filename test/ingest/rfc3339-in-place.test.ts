import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isRfc3339At, parseRfc3339 } from '../../src/ingest/adapters/validate.js';

/**
 * The repeat fast path checks a repeated line's time in place (isRfc3339At) instead of slicing it
 * out and parsing it: it must accept exactly the times parseRfc3339 accepts, whatever surrounds them.
 */

const ALPHABET = '0123456789-:.,TtZz+ "\\x';
const nearTime = fc.oneof(
  // valid times, then damaged one character at a time
  fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.tuple(fc.date({ noInvalidDate: true, min: new Date(0), max: new Date('2100-01-01Z') }), fc.nat(30), fc.constantFrom(...ALPHABET)).map(([d, i, c]) => {
    const s = d.toISOString();
    return s.slice(0, i) + c + s.slice(i + 1);
  }),
  fc.constantFrom('2026-11-01T10:00:00+01:00', '2026-11-01 10:00:00.5-0130', '2024-02-29T00:00:00Z', '2023-02-29T00:00:00Z', '2026-11-01T10:00:00', '2026-11-01T10:00:60.123456789z',
    // the ends of the range, where an offset moves a time out of it (or back in)
    '0001-01-01T00:00:00+01:00', '0001-01-01T00:59:59+01:00', '0001-01-01T01:00:00+01:00', '0001-01-01T00:00:00-01:00', '0000-12-31T23:00:00-01:00',
    '9999-12-31T23:59:59-01:00', '9999-12-31T23:59:59+01:00'),
  fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 18, maxLength: 42 }),
);
const around = fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 8 });

test('isRfc3339At accepts exactly what parseRfc3339 accepts, read in place inside any text', () => {
  fc.assert(
    fc.property(around, nearTime, around, (before, time, after) => {
      const text = before + time + after;
      assert.equal(isRfc3339At(text, before.length, before.length + time.length), !Number.isNaN(parseRfc3339(time)), JSON.stringify(text));
    }),
    { numRuns: 20_000 },
  );
});
