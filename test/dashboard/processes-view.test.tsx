import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderToString } from 'preact-render-to-string';
import {
  binaryRows,
  nameOnlyRule,
  narrowingConditions,
  pageParam,
  pagerPages,
  previewHref,
  ruleInputFromParams,
  ruleParams,
  RuleFormError,
  sampleRuns,
  vpnVerdict,
} from '../../src/dashboard/processes-view.js';
import { Conditions, Refusal } from '../../src/dashboard/pages/processes.js';
import type { ProcessGroup } from '../../src/analysis/types.js';

const G = 'a1'.repeat(32);
const I = 'b2'.repeat(32);

function group(over: Partial<ProcessGroup> = {}): Pick<ProcessGroup, 'process' | 'is_vpn_process_candidate' | 'name_impersonation_suspected' | 'vpn_evidence' | 'binaries' | 'suggested_rule'> {
  return {
    process: 'tailscaled',
    is_vpn_process_candidate: true,
    name_impersonation_suspected: true,
    suggested_rule: null,
    binaries: [
      { sha256: G, path: '/usr/sbin/tailscaled', count: 199, genuine: true },
      { sha256: I, path: '/tmp/.cache/tailscaled', count: 6, genuine: false },
      { sha256: null, path: '/opt/tailscaled', count: 300, genuine: null },
    ],
    vpn_evidence: {
      name_match: true,
      daemon: 'tailscale',
      supporting: ['tailscale port 41641 (147)'],
      contradicting: ['started through node (6)'],
      binaries: [
        { sha256: G, path: '/usr/sbin/tailscaled', count: 199, verdict: 'genuine', supporting: ['tailscale port 41641 (147)'], contradicting: [] },
        { sha256: I, path: '/tmp/.cache/tailscaled', count: 6, verdict: 'impostor', supporting: [], contradicting: ['started through node (6)'] },
        { sha256: null, path: '/opt/tailscaled', count: 300, verdict: 'unverified', supporting: [], contradicting: [] },
      ],
    },
    ...over,
  };
}

describe('processes page view model', () => {
  it('reads a rule from c.* fields, keeps "*", drops empty values, defaults the type, and round-trips through ruleParams', () => {
    const input = ruleInputFromParams(new URLSearchParams('detection_id=Domain-Blocked&c.process=tailscaled&c.process_sha256=abc&c.owner=*&c.repo=&_csrf=x&confirm=yes'));
    assert.deepEqual(input, { detection_id: 'Domain-Blocked', conditions: { process: 'tailscaled', process_sha256: 'abc', owner: '*' } });
    assert.deepEqual(ruleInputFromParams(new URLSearchParams(ruleParams(input))), input);
    assert.equal(ruleInputFromParams(new URLSearchParams('c.process=x')).detection_id, 'New-Outbound-Network-Call');
    assert.equal(previewHref(input, 2), '/processes/preview?detection_id=Domain-Blocked&c.process=tailscaled&c.process_sha256=abc&c.owner=*&page=2');
  });

  it('refuses an unknown condition key by name, and a rule without any condition', () => {
    assert.throws(() => ruleInputFromParams(new URLSearchParams('c.proces=x')), (e: Error) => e instanceof RuleFormError && /unknown rule condition "proces"/.test(e.message));
    assert.throws(() => ruleInputFromParams(new URLSearchParams('c.process=&detection_id=x')), /has no condition/);
  });

  it('the name-only rule names the process and nothing else', () => {
    assert.deepEqual(nameOnlyRule({ process: 'tailscaled', suggested_rule: null }), { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled' } });
  });

  it('marks a VPN name with genuine and impostor binaries "Impostor present", and a non-VPN name as such', () => {
    assert.deepEqual(
      { ...vpnVerdict(group()), summary: undefined },
      { kind: 'impostor-present', label: 'Impostor present', tone: 'danger', summary: undefined },
    );
    const onlyImpostor = group({ vpn_evidence: { ...group().vpn_evidence, binaries: [group().vpn_evidence.binaries[1]!] } });
    assert.equal(vpnVerdict(onlyImpostor).kind, 'impostor');
    const genuine = group({ vpn_evidence: { ...group().vpn_evidence, binaries: [group().vpn_evidence.binaries[0]!] } });
    assert.equal(vpnVerdict(genuine).label, 'Genuine VPN daemon');
    const unverified = group({ vpn_evidence: { ...group().vpn_evidence, binaries: [group().vpn_evidence.binaries[2]!] } });
    assert.equal(vpnVerdict(unverified).kind, 'unverified');
    assert.equal(vpnVerdict(group({ process: 'node', vpn_evidence: { name_match: false, daemon: null, supporting: [], contradicting: [], binaries: [] } })).kind, 'not-vpn');
  });

  it('lists binary variants impostors first, each joined with its own evidence', () => {
    const rows = binaryRows(group());
    assert.deepEqual(
      rows.map((r) => [r.verdict, r.label, r.count, r.contradicting]),
      [
        ['impostor', 'IMPOSTOR', 6, ['started through node (6)']],
        ['unverified', 'Unverified', 300, []],
        ['genuine', 'Genuine', 199, []],
      ],
    );
    // a non-VPN process: the binaries have no verdict
    const plain = binaryRows({ binaries: [{ sha256: G, path: '/usr/bin/node', count: 3, genuine: null }], vpn_evidence: { name_match: false, daemon: null, supporting: [], contradicting: [], binaries: [] } });
    assert.deepEqual(plain.map((r) => [r.verdict, r.label]), [['n/a', '—']]);
  });

  it('pages: first, last, two either side; an open end offers the next page; a bad page number is refused', () => {
    assert.deepEqual(pagerPages(1, 1), [1]);
    assert.deepEqual(pagerPages(1, 10), [1, 2, 3, 10]);
    assert.deepEqual(pagerPages(6, 10), [1, 4, 5, 6, 7, 8, 10]);
    assert.deepEqual(pagerPages(3, null), [1, 2, 3, 4]);
    assert.equal(pageParam(null), 1);
    assert.equal(pageParam('12'), 12);
    for (const bad of ['0', '-1', '1.5', 'x', '99999999']) assert.throws(() => pageParam(bad), RuleFormError, bad);
  });

  it('links each distinct sample run once, on this server, with its job id', () => {
    const s = (run: string, job: string) => ({ owner: 'acme', repo: 'web', run_id: run, dashboard_url: `http://elsewhere:8787/github/acme/web/actions/runs/${run}?jobId=${job}&tab=network-events` });
    assert.deepEqual(sampleRuns([s('7', '70'), s('7', '70'), s('8', '80')]), [
      { href: '/github/acme/web/actions/runs/7?jobId=70&tab=network-events', label: 'acme/web run 7' },
      { href: '/github/acme/web/actions/runs/8?jobId=80&tab=network-events', label: 'acme/web run 8' },
    ]);
  });

  it('shows only narrowing conditions, hashes short; a refusal says nothing changed; names are escaped', () => {
    assert.deepEqual(narrowingConditions({ process: 'x', owner: '*' }), [['process', 'x']]);
    const html = renderToString(<Conditions c={{ process: '<img src=x onerror=alert(1)>', process_sha256: `${G}|${I}`, repo: '*' }} />);
    assert.ok(html.includes('process=&lt;img src=x onerror=alert(1)>'), html);
    assert.ok(html.includes(`process_sha256=${G.slice(0, 12)}…|${I.slice(0, 12)}…`));
    assert.ok(!html.includes('repo='));
    assert.match(renderToString(<Refusal reason="covers webhook.site" />), /<strong>Refused:<\/strong> covers webhook.site.*Nothing was changed/);
  });
});
