import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuditFilter } from '../../src/policy/audit-filter.js';
import { FilterError } from '../../src/domain/filter.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

test('audit filter: exact names, a known decision, ISO times from ISO or ages', () => {
  assert.deepEqual(parseAuditFilter({ tool: ' write ', decision: 'DENY', identity: 'alice', upstream: 'gh', since: '2h', until: '2026-12-01T11:30:00Z' }, { now: NOW }), {
    tool: 'write', decision: 'deny', identity: 'alice', upstreamName: 'gh', since: '2026-12-01T10:00:00.000Z', until: '2026-12-01T11:30:00.000Z',
  });
  assert.deepEqual(parseAuditFilter({}, { now: NOW }), {});
});

test('audit filter: bad values are refused naming the argument as the face spells it', () => {
  const refused = (raw: Record<string, unknown>, arg: string, why: RegExp) =>
    assert.throws(() => parseAuditFilter(raw, { now: NOW, names: { decision: '--decision', since: '--since' } }), (e: unknown) => e instanceof FilterError && e.argument === arg && why.test(e.message));
  refused({ decision: 'maybe' }, '--decision', /expected one of allow, deny/);
  refused({ since: 'yesterday-ish' }, '--since', /./);
  refused({ since: '1h', until: '2h' }, '--since', /earlier than/);
  refused({ tool: 3 }, 'tool', /expected a string/);
});
