import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readFences, shellCommands, transcriptCommands, type Fence } from './fences.js';
import { DocSandbox, type RunResult } from './sandbox.js';

/**
 * Every snippet in README.md and docs/*.md runs as written from a checkout.
 *
 * - sh: each command runs in a copy of the checkout, in order; servers (mcp, serve, gateway) are started
 *   and a real SDK client lists their tools.
 * - text: `$ command` lines are transcripts; the command runs, and fails exactly when the transcript
 *   shows the CLI's error line ("egress-triage: ...") right after it. In a "```text exact" block the
 *   output shown must be the command's real output, to the byte.
 * - json: MCP client configs are started the way a client would and listed; "```json output" blocks are
 *   sample output and must parse; any other JSON is a record and must ingest with --strict.
 * - yaml: a block whose first line is "# NAME.yaml" is written to that file for later commands; policies
 *   must pass `policy validate` ("```yaml invalid" blocks must fail it), configs must load.
 * - js: runs with node from the checkout root.
 */

const DOCS = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

/** Commands the suite cannot run inside itself, each with why it is proven elsewhere. */
const PROVEN_ELSEWHERE: { pattern: RegExp; why: string; used: boolean }[] = [
  { pattern: /^npm ci$/, why: '.ci/run installs from a clean clone with it before the suite runs', used: false },
  { pattern: /^npm ci --prefix conformance$/, why: '.ci/run installs the conformance tools with it before the suite runs', used: false },
  { pattern: /^npm run conformance$/, why: 'test/conformance/fixture.test.ts and serve.test.ts in this suite run the same scenarios', used: false },
  { pattern: /^npm test$/, why: 'it is this suite; .ci/run runs exactly it', used: false },
  { pattern: /^npm run build$/, why: '`npm test`, which CI runs, starts with it (and the README\'s `npm run demo` runs it in the sandbox too)', used: false },
  { pattern: /^npm run lint$/, why: '`npm test`, which CI runs, runs it before the suite', used: false },
  { pattern: /^bash \.ci\/run$/, why: 'CI runs it on every submission', used: false },
  { pattern: /^npm run bench\b/, why: 'benchmarks take minutes and are not part of the suite by design', used: false },
  { pattern: /^npm link$/, why: 'the sandbox puts the same egress-triage shim on PATH without touching the global prefix', used: false },
];

const SERVER = /^egress-triage\s+(mcp|serve|gateway|dashboard)\b/;

function where(f: Fence): string {
  return `${f.file}:${f.line}`;
}

function describeRun(r: RunResult): string {
  return `$ ${r.command}\nexit ${r.status}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

function elided(command: string): boolean {
  return command.includes('…') || /\.\.\.(?!\/)/.test(command);
}

async function runCommand(sb: DocSandbox, f: Fence, raw: string, expectFailure = false, shownOutput?: string): Promise<void> {
  const parts = raw.split(/\s+&&\s+/).filter((part) => {
    const exempt = PROVEN_ELSEWHERE.find((e) => e.pattern.test(part.trim()));
    if (exempt) exempt.used = true;
    return !exempt;
  });
  if (parts.length === 0) return;
  const command = await sb.localise(parts.join(' && '));
  assert.ok(!elided(command), `${where(f)}: "${raw}" elides part of itself with ... and cannot run as written`);
  const server = SERVER.exec(command);
  if (server) return runServer(sb, f, command, server[1]!);
  const r = sb.run(command);
  if (expectFailure) assert.ok(r.status !== 0 && r.status !== null, `${where(f)}: the transcript shows an error, but the command succeeded\n${describeRun(r)}`);
  else assert.equal(r.status, 0, `${where(f)}: command failed\n${describeRun(r)}`);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr), `${where(f)}: a stack trace reached the user\n${describeRun(r)}`);
  if (shownOutput !== undefined) {
    // "```text exact": the transcript is the real output, stdout then stderr as a terminal shows them
    assert.equal((r.stdout + r.stderr).trimEnd(), shownOutput, `${where(f)}: "${raw}" no longer prints what the docs show`);
  }
}

async function runServer(sb: DocSandbox, f: Fence, command: string, kind: string): Promise<void> {
  const http = kind === 'serve' || kind === 'dashboard' || /\s--listen\b/.test(command.split(' -- ')[0]!);
  if (http) {
    const url = await sb.startHttpServer(command);
    if (url.endsWith('/mcp')) assert.ok((await sb.listToolsOverHttp(url)).length > 0, `${where(f)}: ${command} lists no tools`);
    return;
  }
  const tools = await sb.listToolsOverStdio('bash', ['-c', `source ./.env\nexec ${command}`]);
  assert.ok(tools.length > 0, `${where(f)}: ${command} lists no tools`);
}

/** Makes sure a store a client config points at exists, as the reader would have after `npm run demo`. */
function ensureStore(sb: DocSandbox, args: string[]): void {
  const i = args.indexOf('--db');
  if (i < 0 || !args[i + 1] || existsSync(args[i + 1]!)) return;
  const r = sb.run(`egress-triage demo --db '${args[i + 1]}' --runs 6 --events 5000 >/dev/null`);
  assert.equal(r.status, 0, describeRun(r));
}

async function runJson(sb: DocSandbox, f: Fence): Promise<void> {
  if (f.flags.includes('output')) {
    JSON.parse(f.text);
    return;
  }
  const doc = JSON.parse(await sb.localise(f.text)) as Record<string, unknown>;
  const servers = (doc.mcpServers ?? doc.servers) as Record<string, { command?: string; args?: string[]; env?: Record<string, string>; url?: string }> | undefined;
  if (!servers) {
    const r = sb.run(`egress-triage ingest --strict --db .docs-records.db - <<'EOF'\n${JSON.stringify(doc)}\nEOF`);
    assert.equal(r.status, 0, `${where(f)}: the sample record does not ingest\n${describeRun(r)}`);
    return;
  }
  for (const [name, s] of Object.entries(servers)) {
    if (s.url) {
      const u = new URL(s.url);
      const store = join(sb.dir, '.egress-triage', 'demo.db');
      ensureStore(sb, ['--db', store]);
      const url = await sb.startHttpServer(`egress-triage serve --listen ${u.host} --db '${store}'`);
      assert.equal(new URL(url).host, u.host, `${where(f)}: ${name}: serve is not where the config points`);
      assert.ok((await sb.listToolsOverHttp(s.url)).length > 0, `${where(f)}: ${name} lists no tools`);
      continue;
    }
    assert.ok(s.command, `${where(f)}: server ${name} has neither command nor url`);
    ensureStore(sb, s.args ?? []);
    const tools = await sb.listToolsOverStdio(s.command!, s.args ?? [], s.env ?? {});
    assert.ok(tools.length > 0, `${where(f)}: ${name} lists no tools`);
  }
}

async function runYaml(sb: DocSandbox, f: Fence): Promise<void> {
  const text = await sb.localise(f.text);
  const named = /^#\s*(\S+\.ya?ml)\s*$/.exec(text.split('\n')[0] ?? '');
  const file = named ? named[1]! : `.docs-${f.line}.yaml`;
  writeFileSync(join(sb.dir, file), text);
  const doc = parseYaml(text) as Record<string, unknown>;
  if (doc && 'version' in doc) {
    const r = sb.run(`egress-triage policy validate '${file}'`);
    if (f.flags.includes('invalid')) assert.notEqual(r.status, 0, `${where(f)}: marked invalid but validates\n${describeRun(r)}`);
    else assert.equal(r.status, 0, `${where(f)}: policy does not validate\n${describeRun(r)}`);
    return;
  }
  if (doc && 'grants' in doc) {
    const { loadGrants } = (await import(join(sb.dir, 'dist/src/http/grants.js'))) as { loadGrants: (p: string, env: NodeJS.ProcessEnv) => unknown };
    loadGrants(join(sb.dir, file), sb.shellEnv());
    return;
  }
  if (doc && 'upstreams' in doc) {
    const { loadGatewayConfig } = (await import(join(sb.dir, 'dist/src/gateway/config.js'))) as { loadGatewayConfig: (p: string) => unknown };
    loadGatewayConfig(join(sb.dir, file));
    return;
  }
  const { loadConfig } = (await import(join(sb.dir, 'dist/src/config/config-file.js'))) as { loadConfig: (p: string) => unknown };
  loadConfig(join(sb.dir, file));
}

/**
 * Whether a file's snippets run npm or npx (beyond the commands proven elsewhere): `npm run demo`
 * builds, which writes dist/ in place, so its sandbox needs dist/ as its own copy, not hard links.
 */
function runsBuild(file: string): boolean {
  return readFences(file)
    .flatMap((f) => (['sh', 'bash', 'shell'].includes(f.lang) ? shellCommands(f.text) : f.lang === 'text' ? transcriptCommands(f.text).map((t) => t.command) : []))
    .flatMap((c) => c.split(/\s+&&\s+|\s*[;|]\s*/))
    .some((c) => /^(npm|npx)\s/.test(c.trim()) && !PROVEN_ELSEWHERE.some((e) => e.pattern.test(c.trim())));
}

for (const file of DOCS) {
  test(`every snippet in ${file} runs as written`, { timeout: 600_000 }, async () => {
    const sb = DocSandbox.create({ builds: runsBuild(file) });
    try {
      for (const f of readFences(file)) {
        if (['sh', 'bash', 'shell'].includes(f.lang)) for (const c of shellCommands(f.text)) await runCommand(sb, f, c);
        else if (f.lang === 'text') {
          for (const t of transcriptCommands(f.text)) {
            await runCommand(sb, f, t.command, /^egress-triage: /.test(t.firstOutput), f.flags.includes('exact') ? t.output : undefined);
          }
        }
        else if (f.lang === 'json') await runJson(sb, f);
        else if (f.lang === 'yaml' || f.lang === 'yml') await runYaml(sb, f);
        else if (f.lang === 'js') {
          writeFileSync(join(sb.dir, `.docs-${f.line}.mjs`), await sb.localise(f.text));
          const r = sb.run(`node .docs-${f.line}.mjs`);
          assert.equal(r.status, 0, `${where(f)}: script failed\n${describeRun(r)}`);
        } else assert.fail(`${where(f)}: a "${f.lang || '(no language)'}" block cannot be checked; use sh, text, json, yaml or js`);
      }
    } finally {
      await sb.close();
    }
  });
}

test('every command the snippet runner trusts to CI still appears in the docs', { timeout: 600_000 }, async (t) => {
  // Runs after the per-file tests above in this file; a stale entry would exempt nothing but hide a typo.
  await t.test('exemptions are used', () => {
    const all = DOCS.flatMap((f) => readFences(f))
      .filter((f) => ['sh', 'bash', 'shell'].includes(f.lang))
      .flatMap((f) => shellCommands(f.text))
      .flatMap((c) => c.split(/\s+&&\s+/));
    for (const e of PROVEN_ELSEWHERE) assert.ok(all.some((c) => e.pattern.test(c.trim())), `no snippet runs ${e.pattern}; drop the exemption`);
  });
});
