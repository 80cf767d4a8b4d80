import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers.js';

/**
 * A suspected impostor (a binary named like a VPN daemon whose calls contradict it) is never
 * silenced, whatever the path: its calls raise detections even to endpoints the job's baseline or
 * allow-list already covers, and even while the job learns; an imported (StepSecurity) detection of
 * it, or of a risky destination, arrives as new whatever status the export gave it and whatever rule
 * the tenant has. Each case runs the real CLI on a real SQLite store.
 */

const tmp = tempDir('egress-triage-impostor-hidden-');
after(() => tmp.cleanup());

const GENUINE = { name: 'tailscaled', path: '/usr/sbin/tailscaled', sha256: 'a'.repeat(64), parent: { name: 'sudo', parent: { name: 'bash', parent: { name: 'Runner.Worker' } } } };
/** the same name, another binary, dropped by a package's install script */
const IMPOSTOR = { name: 'tailscaled', path: '/tmp/.cache/tailscaled', sha256: 'b'.repeat(64), parent: { name: 'node', parent: { name: 'npm', parent: { name: 'bash' } } } };
const CURL = { name: 'curl', path: '/usr/bin/curl', sha256: 'c'.repeat(64), parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };

let runId = 100;
function line(process: object, dest: { domain?: string; ip?: string; port: number }, run = runId, second = 0): string {
  return JSON.stringify({
    owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: String(run), run_attempt: 1,
    timestamp: new Date(Date.UTC(2026, 10, 1, 0, 0, second) + run * 60_000).toISOString(), ...dest, process,
  });
}

function ingest(db: string, lines: string[], ...flags: string[]): { detections: number; json: Record<string, unknown> } {
  const file = tmp.file(`in-${++runId}.ndjson`, lines.join('\n') + '\n');
  const r = runCli(['ingest', file, '--db', db, '--json', ...flags]);
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout) as Record<string, unknown>;
  return { detections: (json.totals as { detections: number }).detections, json };
}

function detections(db: string): { process: string; sha: string; endpoint: string; status: string }[] {
  const r = runCli(['detections', 'list', '--db', db, '--status', 'all', '--json', '--limit', '100']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { detections: { tool: { name: string; sha256: string | null }; endpoint: string; status: string }[] };
  return out.detections
    .map((d) => ({ process: d.tool.name, sha: (d.tool.sha256 ?? '').slice(0, 1), endpoint: d.endpoint, status: d.status }))
    .sort((a, b) => (a.endpoint + a.sha < b.endpoint + b.sha ? -1 : 1));
}

describe('a suspected impostor is never hidden', () => {
  it('by an endpoint the job expects (baseline expect): its call raises a detection, a genuine call does not', () => {
    const db = join(tmp.dir, 'expect.db');
    ingest(db, [line(CURL, { domain: 'github.com', port: 443 })], '--learning-runs', '0');
    const r = runCli(['baseline', 'expect', '--db', db, '--owner', 'acme', '--repo', 'api', '--endpoint', 'api.github.com:443']);
    assert.equal(r.status, 0, r.stderr);
    const run = ++runId;
    ingest(db, [line(CURL, { domain: 'api.github.com', port: 443 }, run), line(IMPOSTOR, { domain: 'api.github.com', port: 443 }, run, 1)], '--learning-runs', '0');
    assert.deepEqual(detections(db).filter((d) => d.endpoint === 'api.github.com:443'), [{ process: 'tailscaled', sha: 'b', endpoint: 'api.github.com:443', status: 'new' }]);
  });

  it('by running the flagged file under a name that is no daemon\'s: its calls raise, and teach the baseline nothing', () => {
    const db = join(tmp.dir, 'other-name.db');
    // the impostor's file (its sha256) run as curl, from a shell like the genuine curl
    const AS_CURL = { ...IMPOSTOR, name: 'curl', path: '/usr/bin/curl', parent: CURL.parent };
    const flags = ['--learning-runs', '1', '--promote-after', '1', '--allowed-endpoints', 'api.example.org:443'];
    ingest(db, [line(CURL, { domain: 'github.com', port: 443 })], ...flags);
    const run = ++runId;
    ingest(db, [
      // flagged: started through node
      line(IMPOSTOR, { domain: 'controlplane.tailscale.com', port: 443 }, run),
      // to the job's learned baseline, and to an allowed endpoint
      line(AS_CURL, { domain: 'github.com', port: 443 }, run, 1),
      line(AS_CURL, { domain: 'api.example.org', port: 443 }, run, 2),
    ], ...flags);
    // A destination only the flagged file called must not join the baseline when its run completes,
    // here in memory, as the next run of the job begins in the same ingest (a run read back from the
    // store judges its callers again: test/detection/impostor-split-ingest).
    const next = ++runId;
    ingest(db, [line(AS_CURL, { domain: 'drop.example.net', port: 443 }, next), line(CURL, { domain: 'drop.example.net', port: 443 }, next + 1)], ...flags);
    assert.deepEqual(detections(db).map((d) => [d.process, d.sha, d.endpoint, d.status]), [
      ['curl', 'b', 'api.example.org:443', 'new'],
      ['tailscaled', 'b', 'controlplane.tailscale.com:443', 'new'],
      ['curl', 'b', 'drop.example.net:443', 'new'],
      ['curl', 'c', 'drop.example.net:443', 'new'],
      ['curl', 'b', 'github.com:443', 'new'],
    ]);
  });

  it("by the analysis' own suggestion: a binary of the daemon's name run from a temporary directory is an impostor, even when its calls fit the daemon", () => {
    const db = join(tmp.dir, 'temp-dir.db');
    // started from a shell as the genuine one could be, calling a direct IP on tailscale's own port
    const DROPPED = { name: 'tailscaled', path: '/tmp/.x/tailscaled', sha256: 'd'.repeat(64), parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };
    const lines: string[] = [];
    for (let r = 1; r <= 7; r++) lines.push(line(CURL, { domain: 'github.com', port: 443 }, 900 + r));
    for (const r of [6, 7]) {
      lines.push(line(GENUINE, { domain: 'controlplane.tailscale.com', port: 443 }, 900 + r, 1));
      lines.push(line(GENUINE, { ip: `100.101.102.10${r}`, port: 41641 }, 900 + r, 2));
    }
    lines.push(line(DROPPED, { ip: '45.61.136.14', port: 41641 }, 907, 3));
    ingest(db, lines);
    const a = runCli(['analyze', '--db', db, '--json']);
    assert.equal(a.status, 0, a.stderr);
    const g = (JSON.parse(a.stdout) as { processes: { process: string; name_impersonation_suspected: boolean; suggested_rule: { conditions: Record<string, string> } | null }[] }).processes.find((p) => p.process === 'tailscaled')!;
    assert.equal(g.name_impersonation_suspected, true);
    assert.equal(g.suggested_rule!.conditions.process_sha256, 'a'.repeat(64), 'only the genuine binary is pinned');
    const both = runCli(['rules', 'create', '--db', db, '--condition', 'process=tailscaled', '--condition', `process_sha256=${'a'.repeat(64)}|${'d'.repeat(64)}`, '--yes']);
    assert.equal(both.status, 4, both.stderr);
    assert.match(both.stderr, /runs from \/tmp\/, a temporary directory no installer puts tailscale in/);
    const made = runCli(['rules', 'create', '--db', db, ...Object.entries(g.suggested_rule!.conditions).flatMap(([k, v]) => ['--condition', `${k}=${v}`]), '--yes']);
    assert.equal(made.status, 0, made.stderr);
    assert.deepEqual(detections(db).filter((d) => d.status === 'new').map((d) => [d.sha, d.endpoint]), [['d', '45.61.136.14:41641']]);
  });

  it("by a container whose image is named like the daemon: Harden-Runner names the image, not a binary it hashed", () => {
    const db = join(tmp.dir, 'container.db');
    const r = runCli(['ingest', 'test/fixtures/harden-runner/container-tools.log', '--db', db, '--format', 'harden-runner', '--learning-runs', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const src = (JSON.parse(r.stdout) as { sources: { notes: Record<string, number>; suspectedImpostors: { process: string; path: string | null; sha256: string | null; reason: string }[] }[] }).sources[0]!;
    // five containers; the agent's Unknown tool (a packet only its firewall saw) is none
    assert.equal(src.notes['container-image'], 5);
    // named by the image's repository, with or without registry, tag and digest
    assert.deepEqual(src.suspectedImpostors.map((b) => [b.process, b.path, b.sha256]), [
      ['tailscaled', 'container-image:attacker/tailscaled', null],
      ['tailscaled', `container-image:registry.example/attacker/tailscaled:latest@sha256:${'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'}`, null],
    ]);
    assert.match(src.suspectedImpostors[0]!.reason, /runs in the container image attacker\/tailscaled: the monitor named the image, not a binary it hashed/);
    // its calls fit tailscale's signature; a rule on the name is still refused
    const rule = runCli(['rules', 'create', '--db', db, '--condition', 'process=tailscaled', '--yes']);
    assert.equal(rule.status, 4, rule.stderr);
    // an image ID is no file's hash: no binary is pinned by it
    assert.deepEqual(detections(db).map((d) => [d.process, d.endpoint, d.sha]), [
      ['Unknown', '45.148.10.81:8443', ''], ['tailscaled', '45.61.136.14:41641', ''], ['tailscaled', 'controlplane.tailscale.com:443', ''],
      ['tailscaled', 'derp1.tailscale.com:443', ''], [`sha256:${'4b09bf1f4dd4a7b2c1d3e5f7a9b0c2d4e6f8a0b1c3d5e7f9a1b3c5d7e9f0a2b4'}`, 'github.com:443', ''],
      ['node', 'registry.npmjs.org:443', ''],
    ]);
  });

  it('by Harden-Runner allowed endpoints, or while the job is still learning', () => {
    const db = join(tmp.dir, 'allowed.db');
    const run = ++runId;
    const { detections: n } = ingest(
      db,
      [line(CURL, { domain: 'api.github.com', port: 443 }, run), line(IMPOSTOR, { domain: 'api.github.com', port: 443 }, run, 1), line(IMPOSTOR, { ip: '45.61.136.14', port: 443 }, run, 2)],
      '--allowed-endpoints', 'api.github.com:443',
    );
    assert.equal(n, 2, 'the default five learning runs raise nothing else');
    assert.deepEqual(detections(db).map((d) => [d.sha, d.endpoint, d.status]), [['b', '45.61.136.14:443', 'new'], ['b', 'api.github.com:443', 'new']]);
  });

  it('by a StepSecurity export: an impostor suppressed upstream, or a risky call resolved upstream, arrives as new', () => {
    const db = join(tmp.dir, 'import.db');
    const det = (id: string, tool: object, endpoint: string, extra: object) => ({
      id, detection_id: 'New-Outbound-Network-Call', owner: 'acme', repo: 'api', run_id: 7, run_attempt: 1, job: 'build', job_id: 1,
      workflow_path: '.github/workflows/ci.yml', timestamp: '2026-11-02T10:00:00Z', tool, endpoint, direct_ip_address: '',
      expected_outbound_connections: [], is_resolved: false, is_suppressed: false, suppress_rule_id: '', ...extra,
    });
    const tool = (p: { name: string; sha256: string; path: string; parent: { name: string } }) => ({ name: p.name, sha256: p.sha256, path: p.path, parent: p.parent.name === 'node' ? { name: 'node', parent: 'npm' } : p.parent.name });
    const file = tmp.file('export.json', JSON.stringify({ data: { detections: [
      det('imp', tool(IMPOSTOR), 'evil-c2.example.com:443', { is_suppressed: true }),
      det('risky', tool(CURL), 'webhook.site:443', { is_resolved: true }),
      det('peer', tool(GENUINE), '100.64.1.1:41641', { is_suppressed: true, direct_ip_address: '100.64.1.1' }),
    ] } }));
    const r = runCli(['ingest', file, '--db', db, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(detections(db).map((d) => [d.sha, d.endpoint, d.status]), [
      ['a', '100.64.1.1:41641', 'suppressed'],
      ['b', 'evil-c2.example.com:443', 'new'],
      ['c', 'webhook.site:443', 'new'],
    ]);
  });

  it('by a rule on the daemon made before the export showed the impostor', () => {
    const db = join(tmp.dir, 'import-rule.db');
    ingest(db, [line(GENUINE, { ip: '100.64.0.1', port: 41641 })], '--learning-runs', '0');
    const rule = runCli(['rules', 'create', '--db', db, '--condition', 'process=tailscaled', '--yes']);
    assert.equal(rule.status, 0, rule.stderr);
    const file = tmp.file('export2.json', JSON.stringify([{
      id: 'imp2', detection_id: 'New-Outbound-Network-Call', owner: 'acme', repo: 'api', run_id: 8, run_attempt: 1, job: 'build', job_id: 1,
      workflow_path: '.github/workflows/ci.yml', timestamp: '2026-11-02T11:00:00Z',
      tool: { name: 'tailscaled', sha256: IMPOSTOR.sha256, path: IMPOSTOR.path, parent: { name: 'node', parent: 'npm' } },
      endpoint: 'evil-c2.example.com:443', direct_ip_address: '', expected_outbound_connections: [], is_resolved: false, is_suppressed: false, suppress_rule_id: '',
    }]));
    const r = runCli(['ingest', file, '--db', db, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(detections(db).filter((d) => d.sha === 'b').map((d) => [d.endpoint, d.status]), [['evil-c2.example.com:443', 'new']]);
  });
});
