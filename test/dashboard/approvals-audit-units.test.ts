import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { auditHref, parseAuditFilter } from '../../src/dashboard/audit-filter.js';
import { argumentsText, timeLeft } from '../../src/dashboard/pages/approvals.js';
import { policyView } from '../../src/dashboard/policy-view.js';

/** The pure parts of the Approvals and Audit pages: time left, arguments, the audit filter. */

const NOW = Date.parse('2026-12-02T12:00:00.000Z');

describe('approvals page helpers', () => {
  it('counts time left in whole seconds, largest two units', () => {
    assert.equal(timeLeft(0), 'expired');
    assert.equal(timeLeft(-5), 'expired');
    assert.equal(timeLeft(1), '1s');
    assert.equal(timeLeft(59_001), '1m 00s');
    assert.equal(timeLeft(245_000), '4m 05s');
    assert.equal(timeLeft(3_725_000), '1h 02m');
  });

  it('indents arguments that parse and keeps a cut preview as it is', () => {
    assert.equal(argumentsText('{"a":1}'), '{\n  "a": 1\n}');
    assert.equal(argumentsText('{"a":"xx…'), '{"a":"xx…');
  });
});

describe('audit filter', () => {
  it('reads times as the CLI does (ISO, UTC unless zoned; ages back from now); one out of range is a field error, not a failed page', () => {
    const since = (v: string) => {
      const r = parseAuditFilter(new URLSearchParams({ since: v }), NOW);
      return r.ok ? r.query.since : `error: ${r.errors.since}`;
    };
    assert.equal(since('2026-12-01'), '2026-12-01T00:00:00.000Z');
    assert.equal(since('2026-12-01T10:30'), '2026-12-01T10:30:00.000Z');
    assert.equal(since('2026-12-01 10:30:05'), '2026-12-01T10:30:05.000Z');
    assert.equal(since('2026-12-01T10:30+02:00'), '2026-12-01T08:30:00.000Z');
    assert.equal(since('2h'), '2026-12-02T10:00:00.000Z');
    assert.equal(since('7d'), '2026-11-25T12:00:00.000Z');
    for (const bad of ['yesterday', '2026-13-45', '2h30m']) assert.match(since(bad)!, /^error: since: ".*" is not a time; expected an RFC 3339 time/, bad);
    // a Date holds ±100,000,000 days: these took the page to a 500 (RangeError: Invalid time value)
    for (const far of ['200000000d', '4000000000h', '9007199254740993m']) assert.match(since(far)!, /^error: since: ".*" is (out of range|not a time)/, far);
    const r = parseAuditFilter(new URLSearchParams('until=200000000d'), NOW);
    assert.ok(!r.ok);
    assert.match(r.errors.until!, /^until: "200000000d" is out of range/);
  });

  it('turns the query string into one page of the port query', () => {
    const r = parseAuditFilter(new URLSearchParams('tool=ping&decision=deny&identity=ci&upstream=gh&since=2h&until=2026-12-02&page=3'), NOW);
    assert.ok(r.ok);
    assert.deepEqual(r.query, {
      tool: 'ping', decision: 'deny', identity: 'ci', upstreamName: 'gh',
      since: '2026-12-02T10:00:00.000Z', until: '2026-12-02T00:00:00.000Z', limit: 51, offset: 100,
    });
    assert.equal(auditHref(r.filter, 4), '/audit?tool=ping&decision=deny&identity=ci&upstream=gh&since=2h&until=2026-12-02&page=4');
    assert.equal(auditHref(r.filter, 1), '/audit?tool=ping&decision=deny&identity=ci&upstream=gh&since=2h&until=2026-12-02');
  });

  it('names each wrong field', () => {
    const r = parseAuditFilter(new URLSearchParams('decision=maybe&since=soon&until=later&page=0'), NOW);
    assert.ok(!r.ok);
    assert.deepEqual(Object.keys(r.errors).sort(), ['decision', 'page', 'since', 'until']);
  });
});

describe('policy view', () => {
  it('puts each named tool in the column of what the policy does with it', () => {
    const v = policyView(
      `version: 1
default: deny
hide: [internal_*]
tools:
  # read-only
  list_x: { action: allow }
  ping: { rate_limit: [{ max: 5, window: 60, scope: session }] }
  write_x: { action: require_approval, approval_timeout: 120 }
  drop_x: { action: deny, reason: never }
`,
      'p.yaml',
    );
    assert.ok(v.valid);
    assert.equal(v.defaultAction, 'deny');
    assert.deepEqual(
      Object.fromEntries(Object.entries(v.columns).map(([c, ts]) => [c, ts.map((t) => t.name)])),
      { allow: ['list_x'], rate_limited: ['ping'], approval: ['write_x'], deny: ['drop_x'], hidden: ['internal_*'] },
    );
    assert.deepEqual(v.columns.rate_limited[0]!.details, ['5 per 60s, scope session']);
    assert.deepEqual(v.columns.approval[0]!.details, ['approval timeout 120s']);
  });

  it('attaches a problem to its tool, keeps the others for the file, and still reads a file with a YAML error', () => {
    const v = policyView('version: 2\ntools:\n  a.b: { action: deny }\n  ok: {}\n', 'p.yaml');
    assert.ok(!v.valid);
    assert.match(v.columns.deny[0]!.issues.map((i) => i.message).join(), /needs a reason/);
    assert.deepEqual(v.columns.allow[0]!.issues, []);
    assert.match(v.fileIssues.map((i) => i.path).join(), /version/);
    const broken = policyView('version: 1\ntools:\n  a: { action: deny, reason: x }\nhide: [unclosed\n', 'p.yaml');
    assert.ok(!broken.valid);
    assert.ok(broken.fileIssues.length > 0 && broken.fileIssues.every((i) => i.line !== undefined));
  });
});
