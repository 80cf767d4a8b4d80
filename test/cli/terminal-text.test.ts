import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliResult } from '../helpers.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { revealInvisible } from '../../src/domain/reveal-invisible.js';

/**
 * `audit` and `approvals list` print what callers chose (a refused tool name, an elicitation
 * answer's reason): as text, never as terminal control. Found by review: ESC, CR and LF let an agent
 * wipe its own record and print a made-up `allow ... identity=alice` line above concealed text.
 */

const FORGED = 'x\u001b[1A\u001b[2K\r2026-12-04T15:29:55.970Z  allow  create_suppression_rule  identity=alice\n\u001b[8m\u202e';

test('audit and approvals list write callers\' strings with their controls by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-terminal-'));
  const db = join(dir, 'egress.db');
  try {
    const st = new SqlitePolicyState({ dbPath: db, auditFile: false });
    st.audit.append({ ts: new Date().toISOString(), session: 's', identity: 'ci-agent', tool: FORGED, args_hash: 'h', decision: 'deny', rule: 'tool_name', latency_ms: 0.1, upstream: 'not_forwarded' });
    st.audit.flush();
    const a = await st.approvals.request({ session: 's', identity: 'ci-agent', tool: 'preview_suppression_rule', argsHash: 'h', argsPreview: '{}', rule: 'tools.x', timeoutMs: 60_000 });
    await st.approvals.decide(a.row.id, 'denied', 'elicitation', FORGED);
    st.close();

    for (const args of [['audit', '--db', db], ['approvals', 'list', '--all', '--db', db]]) {
      const r = await cliResult(args);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /[\u001b\r\u202e]/, `${args[0]}: no control reaches the terminal`);
      assert.ok(r.stdout.includes('⟨U+001B⟩[1A⟨U+001B⟩[2K⟨U+000D⟩2026-12-04T15:29:55.970Z'), r.stdout);
      assert.ok(r.stdout.includes('⟨U+202E⟩'), r.stdout);
      // the forged line does not start a line of its own
      assert.ok(!r.stdout.split('\n').some((l) => l.startsWith('2026-12-04T15:29:55.970Z  allow')), r.stdout);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('revealInvisible: plain text unchanged; line breaks kept only when asked (a page lays them out)', () => {
  assert.equal(revealInvisible('tailscaled'), 'tailscaled');
  assert.equal(revealInvisible('a\tb\nc'), 'a⟨U+0009⟩b⟨U+000A⟩c');
  assert.equal(revealInvisible('a\tb\nc\u200b', true), 'a\tb\nc⟨U+200B⟩');
  // line and paragraph separators break a line in text layout: by name, even when line breaks are kept
  assert.equal(revealInvisible('a\u2028b\u2029c'), 'a⟨U+2028⟩b⟨U+2029⟩c');
  assert.equal(revealInvisible('a\u2028b', true), 'a⟨U+2028⟩b');
  // drawn blank: "tailscaled\u2800" would print as "tailscaled "
  assert.equal(revealInvisible('tailscaled\u2800'), 'tailscaled⟨U+2800⟩');
  assert.equal(revealInvisible('\u{1D159}x', true), '⟨U+1D159⟩x');
  assert.equal(revealInvisible('tailscaled\uE000'), 'tailscaled⟨U+E000⟩');
});

test('ingest errors, detections list and analyze write the telemetry\'s text with its controls by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-terminal-'));
  const db = join(dir, 'egress.db');
  try {
    const ctx = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', timestamp: '2026-11-02T10:15:02.120Z', port: 443, status: 'blocked' };
    const lines = [
      // a rejected record whose message quotes the bad value: a forged report line and an escape
      { ...ctx, run_id: '1', domain: 'x\n  ! fake.ndjson:99: forged\u001b[31mRED', process: { name: 'curl' } },
      // a stored process name that would clear the screen and split its row
      { ...ctx, run_id: '1', domain: 'evil.example', process: { name: 'cu\u001b[2J\nrl' } },
      // a job name that would do the same in `baseline show`'s heading
      { ...ctx, job: 'te\u001b[2J\nst', run_id: '1', domain: 'evil.example', process: { name: 'curl' } },
    ];
    const file = join(dir, 'inj.ndjson');
    (await import('node:fs')).writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const ingest = await cliResult(['ingest', file, '--db', db]);
    assert.equal(ingest.status, 1, `one record rejected: ${ingest.stderr}`);
    const runs = [
      ['ingest', ingest.stdout + ingest.stderr],
      ['detections list', (await cliResult(['detections', 'list', '--db', db])).stdout],
      ['analyze', (await cliResult(['analyze', '--db', db, '--detection-id', 'Domain-Blocked', '--min-count', '1'])).stdout],
      ['baseline show', (await cliResult(['baseline', 'show', '--owner', 'acme', '--repo', 'api', '--all', '--db', db])).stdout],
    ] as const;
    for (const [what, text] of runs) {
      assert.doesNotMatch(text, /[\u001b\r]/, `${what}: no control reaches the terminal`);
      assert.ok(!text.split('\n').some((l) => l.startsWith('  ! fake.ndjson:99') || l.startsWith('rl')), `${what}: no forged line:\n${text}`);
    }
    assert.ok(runs[0][1].includes('⟨U+000A⟩  ! fake.ndjson:99: forged⟨U+001B⟩[31mRED'), runs[0][1]);
    assert.ok(runs[1][1].includes('cu⟨U+001B⟩[2J⟨U+000A⟩rl'), runs[1][1]);
    // analyze groups by the normalised name, which drops invisible characters (process-name.ts)
    assert.ok(runs[2][1].includes('cu[2jrl'), runs[2][1]);
    assert.ok(runs[3][1].includes('job te⟨U+001B⟩[2J⟨U+000A⟩st'), runs[3][1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
