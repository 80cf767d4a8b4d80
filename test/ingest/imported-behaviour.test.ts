import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';

/**
 * Imported StepSecurity detections of a behaviour no daemon has (found by review): a Reverse-Shell by
 * a binary named tailscaled, on tailscale's own port 41641, counted as evidence FOR the daemon. The
 * binary was judged genuine, a Reverse-Shell rule was suggested, and creating it hid the reverse
 * shell. Now such a detection makes its binary a suspected impostor, and no rule is suggested for
 * those types. A detection with no destination at all (a secret in a build log) is no evidence about
 * where a daemon calls: it flagged a genuine tailscaled for a "domain outside its signature" of "".
 */

const { storeTest } = eachStore();

const detection = (i: number, type: string, sha: string, endpoint: string, ip: string) => ({
  id: `s${i}`, detection_id: type, owner: 'acme', repo: 'api', run_id: 50 + i, run_attempt: 1, job: 'build', job_id: 1,
  workflow_path: '.github/workflows/ci.yml', timestamp: `2026-11-02T11:00:0${i}Z`, tool: { name: 'tailscaled', sha256: sha, parent: 'sudo' },
  endpoint, direct_ip_address: ip, expected_outbound_connections: [], is_resolved: false, is_suppressed: false, suppress_rule_id: '',
});

storeTest('an imported Reverse-Shell or Suspicious-Network-Call by a daemon-named binary flags it; no rule is suggested or allowed for it; a secret in a log flags nothing', async (at) => {
  const shell = '9'.repeat(64);
  const daemon = '7'.repeat(64);
  const file = join(at.dir, 'export.json');
  writeFileSync(file, JSON.stringify({ data: { detections: [
    detection(1, 'New-Outbound-Network-Call', shell, '100.101.102.103:41641', '100.101.102.103'),
    detection(2, 'Reverse-Shell', shell, '45.61.136.14:41641', '45.61.136.14'),
    detection(3, 'New-Outbound-Network-Call', daemon, 'controlplane.tailscale.com:443', ''),
    detection(4, 'Secret-In-Build-Log', daemon, '', ''),
    detection(5, 'Suspicious-Network-Call', '8'.repeat(64), 'relay.tailscale.com:443', ''),
  ] } }));
  const ingest = await cliResult(['ingest', file, '--db', at.db, '--json']);
  assert.equal(ingest.status, 0, ingest.stderr);
  const flagged = (JSON.parse(ingest.stdout) as { sources: { suspectedImpostors: { sha256: string; reason: string }[] }[] }).sources[0]!.suspectedImpostors;
  assert.deepEqual(flagged.map((b) => [b.sha256, b.reason]), [
    [shell, 'a Reverse-Shell detection: tailscale does no such thing'],
    ['8'.repeat(64), 'a Suspicious-Network-Call detection: tailscale does no such thing'],
  ]);

  const a = await cliResult(['analyze', '--db', at.db, '--type', 'Reverse-Shell', '--min-count', '1', '--json']);
  assert.equal(a.status, 0, a.stderr);
  const p = (JSON.parse(a.stdout) as { processes: { process: string; name_impersonation_suspected: boolean; suggested_rule: unknown; no_suggestion_reason: string | null }[] }).processes[0]!;
  assert.deepEqual([p.process, p.name_impersonation_suspected, p.suggested_rule], ['tailscaled', true, null]);
  const create = await cliResult(['rules', 'create', '--db', at.db, '--detection-id', 'Reverse-Shell', '--condition', 'process=tailscaled', '--condition', `process_sha256=${shell}`, '--yes']);
  assert.equal(create.status, 4, `${create.stdout}${create.stderr}`);

  // the genuine daemon, whose secret-in-a-log detection names no destination, is not flagged
  // (the default view: New-Outbound-Network-Call detections)
  const n = await cliResult(['analyze', '--db', at.db, '--min-count', '1', '--json']);
  const ts = (JSON.parse(n.stdout) as { processes: { vpn_evidence: { binaries: { sha256: string; verdict: string }[] } }[] }).processes[0]!;
  assert.deepEqual(ts.vpn_evidence.binaries.map((b) => [b.sha256, b.verdict]).sort(), [[daemon, 'genuine'], [shell, 'impostor']].sort());
});
