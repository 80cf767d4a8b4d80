import { tempDir } from '../helpers.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { CLI, kill } from '../helpers/built-cli.js';

/** The real CLI (EGRESS_TRIAGE_TEST_CLI can point elsewhere while another module breaks main.js), and how a child of it ends. */
export { CLI, kill };
export const FIXTURE = fileURLToPath(new URL('./fixtures/echo-server.js', import.meta.url));

export function tmpDir(prefix = 'gw-'): ReturnType<typeof tempDir> & { db: string } {
  const t = tempDir(prefix);
  return { ...t, db: join(t.dir, 'state.db') };
}

const childEnv = () => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));

/** The two protocol revisions every end-to-end test runs against. */
export type Era = 'legacy' | 'modern';
export const ERAS: readonly Era[] = ['legacy', 'modern'];
export const REVISION: Record<Era, string> = { legacy: '2025-11-25', modern: '2026-07-28' };

/**
 * A real SDK v2 client pinned to one revision: "modern" speaks 2026-07-28 only (no initialize, the
 * envelope on every request), "legacy" does the 2025-11-25 initialize handshake.
 */
export function newClient(era: Era, capabilities: Record<string, unknown> = {}, name = 'gw-test'): Client {
  return new Client(
    { name, version: '1.0.0' },
    era === 'modern'
      ? { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } }
      : { capabilities, supportedProtocolVersions: ['2025-11-25'] },
  );
}

/** A real SDK client talking to `egress-triage gateway ... -- node echo-server.js` over stdio. */
export async function stdioGatewayClient(
  policy: string,
  db: string,
  opts: { extraArgs?: string[]; capabilities?: Record<string, unknown>; onStderr?: (s: string) => void; era?: Era } = {},
): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'gateway', '--policy', policy, '--db', db, ...(opts.extraArgs ?? []), '--', process.execPath, FIXTURE],
    env: childEnv(),
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    opts.onStderr?.(d.toString());
  });
  const client = newClient(opts.era ?? 'legacy', opts.capabilities ?? {});
  await client.connect(transport);
  return { client, transport, stderr: () => err };
}

export const run = promisify(execFile);

export async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: childEnv() });
    return { stdout: r.stdout, stderr: r.stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code };
  }
}

export function text(r: unknown): string {
  const c = (r as { content?: { type: string; text?: string }[] }).content ?? [];
  return c.map((x) => x.text ?? '').join('');
}

export { waitFor } from '../helpers/wait.js';

/** Spawns a process and resolves once a line on stdout/stderr matches; returns the match and the child. */
export function spawnUntil(cmd: string, args: string[], re: RegExp, timeoutMs = 15_000): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    let out = '';
    const t = setTimeout(() => {
      child.kill();
      reject(new Error(`timed out waiting for ${re} in: ${out}`));
    }, timeoutMs);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, match: m, output: () => out });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited ${code} before ${re}: ${out}`));
    });
  });
}

