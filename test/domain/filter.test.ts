import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FilterError, parseDetectionFilter } from '../../src/domain/filter.js';
import { parseInstant } from '../../src/domain/time.js';
import { DETECTION_TYPES } from '../../src/domain/types.js';

const NOW = Date.parse('2026-11-20T00:00:00Z');
const parse = (raw: Record<string, unknown>, names?: Record<string, string>) => parseDetectionFilter(raw, { now: NOW, ...(names ? { names } : {}) });

function refused(raw: Record<string, unknown>, argument: string, why: RegExp, names?: Record<string, string>): void {
  assert.throws(
    () => parse(raw, names),
    (e: unknown) => e instanceof FilterError && e.argument === argument && why.test(e.message),
    `${JSON.stringify(raw)} must be refused naming ${argument}`,
  );
}

test('owner and repo: trimmed, "owner/name" split, a conflicting owner refused', () => {
  assert.deepEqual(parse({ owner: ' GLOBEX ' }), { owner: 'GLOBEX' });
  assert.deepEqual(parse({ repo: 'Globex/Scraper' }), { owner: 'Globex', repo: 'Scraper' });
  assert.deepEqual(parse({ owner: 'globex', repo: 'GLOBEX/scraper' }), { owner: 'globex', repo: 'scraper' });
  refused({ owner: 'acme', repo: 'globex/scraper' }, '--repo', /conflicts with --owner "acme"/, { repo: '--repo', owner: '--owner' });
  refused({ repo: 'a/b/c' }, 'repo', /"name" or "owner\/name"/);
  refused({ repo: '/b' }, 'repo', /"name" or "owner\/name"/);
  refused({ owner: '  ' }, 'owner', /empty/);
  refused({ owner: 'a/b' }, 'owner', /without "\/"/);
  refused({ owner: 42 }, 'owner', /expected a string/);
});

test('process names are normalised exactly like stored names', () => {
  for (const raw of ['tailscaled', 'TAILSCALED', '/usr/sbin/tailscaled', 'C:\\Program Files\\Tailscale\\tailscaled.exe', ' tailscaled.EXE ']) {
    assert.equal(parse({ process: raw }).process, 'tailscaled', raw);
  }
  refused({ process: 'tail*' }, 'process', /wildcards/);
});

test('endpoint: host:port exact, a bare host any port, nonsense refused (never silently empty)', () => {
  assert.deepEqual(parse({ endpoint: 'Webhook.Site:443' }), { host: 'webhook.site', port: 443 });
  assert.deepEqual(parse({ endpoint: 'webhook.site.' }), { host: 'webhook.site' });
  assert.deepEqual(parse({ endpoint: '45.1.2.3' }), { host: '45.1.2.3' });
  assert.deepEqual(parse({ endpoint: '[2001:DB8::1]:443' }), { host: '2001:db8::1', port: 443 });
  assert.deepEqual(parse({ endpoint: '2001:db8::1' }), { host: '2001:db8::1' });
  for (const bad of ['https://webhook.site', 'webhook.site/x', '*.oast.fun', 'host:', 'host:abc', 'host:70000', '[nothost]:443', 'a b', 'a..b']) {
    refused({ endpoint: bad }, 'endpoint', /expected host:port/);
  }
});

test('detection types: case-insensitive, canonical spelling, unknown refused with the valid list', () => {
  assert.deepEqual(parse({ types: 'domain-blocked' }).types, ['Domain-Blocked']);
  assert.deepEqual(parse({ types: ['Domain-Blocked', 'new-outbound-network-call,Domain-Blocked'] }).types, ['Domain-Blocked', 'New-Outbound-Network-Call']);
  assert.throws(
    () => parse({ types: 'Foo' }, { types: '--type' }),
    (e: unknown) => e instanceof FilterError && e.kind === 'unknown_type' && e.message.startsWith('--type: unknown detection type "Foo"') && DETECTION_TYPES.every((t) => e.message.includes(t)),
  );
});

test('status: default is the caller\'s, "all" means no status filter, others refused', () => {
  assert.equal(parse({}).statuses, undefined);
  assert.deepEqual(parseDetectionFilter({}, { now: NOW, defaultStatus: 'new' }).statuses, ['new']);
  assert.deepEqual(parse({ status: 'Suppressed' }).statuses, ['suppressed']);
  assert.equal(parseDetectionFilter({ status: 'all' }, { now: NOW, defaultStatus: 'new' }).statuses, undefined);
  refused({ status: 'open' }, 'status', /new, suppressed, resolved, all/);
});

test('time: one parser for every face; relative ages use the injected clock', () => {
  assert.equal(parseInstant('24h', NOW), NOW - 86_400_000);
  assert.equal(parseInstant('2w', NOW), NOW - 14 * 86_400_000);
  assert.equal(parseInstant('2026-11-01', NOW), Date.parse('2026-11-01T00:00:00Z'));
  assert.equal(parseInstant('2026-11-01T10:00:00', NOW), Date.parse('2026-11-01T10:00:00Z'), 'no offset means UTC, not local time');
  assert.equal(parseInstant('2026-11-01T10:00:00+02:00', NOW), Date.parse('2026-11-01T08:00:00Z'));
  assert.equal(parseInstant('1793491200000', NOW), 1793491200000);
  assert.equal(parseInstant(1793491200000.7, NOW), 1793491200000);
  for (const bad of ['Nov 1', '2026-02-31', '2026-11-01T25:00:00Z', 'yesterday', '7 days']) assert.throws(() => parseInstant(bad, NOW), /is not a time/, bad);
  refused({ since: '7d', until: '8d' }, 'since', /must be earlier than until/);
  refused({ until: 'soon' }, 'until', /is not a time/);
  assert.deepEqual(parse({ since: '7d', until: '2026-11-20' }), { since: NOW - 7 * 86_400_000, until: NOW });
});

test('property: any path, case or .exe spelling of a process normalises to the stored name', () => {
  const seg = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
  fc.assert(
    fc.property(fc.array(seg, { maxLength: 4 }), seg, fc.boolean(), fc.boolean(), (dirs, name, exe, win) => {
      const path = (win ? 'C:\\' + dirs.join('\\') + (dirs.length ? '\\' : '') : '/' + dirs.map((d) => d + '/').join('')) + name + (exe ? '.exe' : '');
      // segments hold no '.', so the basename without .exe is the name itself
      return parse({ process: path }).process === name.toLowerCase();
    }),
  );
});

test('the audit command\'s --since uses the same time parser (no Date.parse leniency)', async () => {
  const { parseAuditFilter } = await import('../../src/policy/audit-filter.js');
  const since = (v: string) => parseAuditFilter({ since: v }, { now: NOW, names: { since: '--since' } }).since;
  assert.equal(since('1.5h'), new Date(NOW - 5_400_000).toISOString());
  assert.equal(since('2026-11-01T10:00:00'), '2026-11-01T10:00:00.000Z');
  assert.throws(() => since('Nov 1'), /--since: "Nov 1" is not a time/);
});

test('sha256: exact but case-insensitive, wildcards and spaces refused', () => {
  const digest = 'b2'.repeat(32);
  assert.deepEqual(parse({ sha256: ` ${digest.toUpperCase()} ` }), { sha256: digest });
  assert.deepEqual(parse({ sha256: `sha256:${digest}` }), { sha256: digest });
  refused({ sha256: 'b2*' }, 'sha256', /expected a sha256 digest \(64 hex characters\)/);
  refused({ sha256: 'b2 b2' }, 'sha256', /expected a sha256 digest/);
  // the 12 characters a table shows match nothing stored: refused, saying why
  refused({ sha256: 'B2b2b2b2b2b2' }, 'sha256', /expected the whole sha256 digest \(64 hex characters\), got 12: tables shorten digests/);
  refused({ sha256: ' ' }, 'sha256', /empty/);
});

test('owner and repo must be ASCII (GitHub names): "İnitech" is refused, since PostgreSQL would fold it to initech and the policy would not', () => {
  for (const [raw, arg] of [[{ owner: 'İnitech' }, 'owner'], [{ repo: 'İnitech/api' }, 'repo'], [{ repo: 'apı' }, 'repo'], [{ owner: 'acme\u200b' }, 'owner']] as const) {
    assert.throws(
      () => parseDetectionFilter(raw, { now: 0 }),
      (e: unknown) => e instanceof FilterError && e.message.startsWith(`${arg}: expected a GitHub name`),
      JSON.stringify(raw),
    );
  }
  assert.deepEqual(parseDetectionFilter({ owner: ' Initech ', repo: 'api.v2_x-y' }, { now: 0 }), { owner: 'Initech', repo: 'api.v2_x-y' });
});
