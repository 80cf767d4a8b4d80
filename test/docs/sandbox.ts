import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { freePort } from '../helpers/free-port.js';

const CHECKOUT = resolve('.');
/** What a fresh checkout holds besides node_modules (see linkNodeModules) and dist (see DocSandbox.create). */
const SHARED = ['src', 'web', 'test', 'bench', 'scripts', 'docs', 'README.md', 'package.json', 'package-lock.json', 'tsconfig.json', '.dependency-cruiser.cjs'];
/** What `npm run bench` generated (gigabytes, ignored by git): no checkout has it. */
const GENERATED = join('bench', 'out');

/**
 * For a sandbox that builds, the checkout's node_modules as hard links (`cp -al`: half a second, no
 * bytes copied), so every path in it is the sandbox's own. tsc's incremental build info names the
 * files it read by path relative to dist/, typescript's own lib files by where tsc really runs from:
 * through a symlinked node_modules those were the checkout's paths, and each `npm run build` in the
 * sandbox (the README has two) rebuilt everything. Where hard links cannot be made (another file
 * system), a symlink still works, and only costs the full builds again. A sandbox that does not
 * build gets the symlink: the links of some 6,000 entries and their removal cost about 1.5 s of
 * system CPU per sandbox, for nothing that only reads the packages.
 */
function linkNodeModules(from: string, to: string, builds: boolean): void {
  if (builds && spawnSync('cp', ['-al', from, to]).status === 0) {
    // Vite's lock and temp files are written in place: those must not be the checkout's inodes.
    for (const own of ['.vite', '.vite-temp']) rmSync(join(to, own), { recursive: true, force: true });
    return;
  }
  rmSync(to, { recursive: true, force: true });
  symlinkSync(from, to);
}

export interface RunResult {
  command: string;
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A throwaway copy of the checkout in which documentation snippets run exactly as written:
 * `egress-triage` is on PATH (as `npm link` would put it), `export` lines carry over to later commands,
 * and fixed loopback ports in the docs are mapped to free ones so parallel runs never collide.
 */
export class DocSandbox {
  readonly dir: string;
  private readonly ports = new Map<string, string>();
  private readonly servers: ChildProcess[] = [];
  /** HTTP servers already started, by the command that started them, so two configs can share one. */
  private readonly started = new Map<string, Promise<string>>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * `builds`: the snippets run a build (`npm run demo` does), which writes dist/ in place, so dist/ is
   * copied; otherwise dist/ is hard-linked like the rest. Copying the checkout cost about 3 s of system
   * CPU per sandbox on the 2-core project machine (some 2,200 files, dist/ two thirds of them) and
   * hard links 0.03 s; close() fails the test if a snippet wrote into a file it shares with the checkout.
   */
  static create(opts: { builds: boolean }): DocSandbox {
    const dir = mkdtempSync(join(tmpdir(), 'egress-triage-docs-'));
    const sb = new DocSandbox(dir);
    const linked = [...SHARED, ...(opts.builds ? [] : ['dist'])].filter((name) => existsSync(join(CHECKOUT, name)));
    sb.linkOrCopy(linked);
    // `cp -a` keeps modification times, which `npm run build` compares: a copy newer than its sources
    // made tsc type-check the whole project again, 9-13 s of CPU
    if (opts.builds) sb.copy('dist');
    linkNodeModules(join(CHECKOUT, 'node_modules'), join(dir, 'node_modules'), opts.builds);
    mkdirSync(join(dir, '.bin'));
    const shim = join(dir, '.bin', 'egress-triage');
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${join(dir, 'dist/bundle/cli/main.js')}" "$@"\n`);
    chmodSync(shim, 0o755);
    writeFileSync(join(dir, '.env'), '');
    return sb;
  }

  /** Files hard-linked from the checkout, with their modification times, for close() to check. */
  private readonly shared = new Map<string, number>();

  /** Hard-links these checkout paths into the sandbox, or copies them where links cannot be made (another file system). */
  private linkOrCopy(names: string[]): void {
    if (spawnSync('cp', ['-al', '-t', this.dir, ...names], { cwd: CHECKOUT }).status !== 0) {
      for (const name of names) this.copy(name);
      return;
    }
    rmSync(join(this.dir, GENERATED), { recursive: true, force: true });
    const walk = (p: string): void => {
      const st = statSync(p);
      if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
      else this.shared.set(p, st.mtimeMs);
    };
    for (const name of names) walk(join(this.dir, name));
  }

  private copy(name: string): void {
    const generated = join(CHECKOUT, GENERATED);
    rmSync(join(this.dir, name), { recursive: true, force: true });
    cpSync(join(CHECKOUT, name), join(this.dir, name), { recursive: true, preserveTimestamps: true, filter: (src) => src !== generated });
  }

  /** The environment a reader's shell has: no egress-triage settings inherited, the CLI on PATH. */
  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('EGRESS_TRIAGE_') && k !== 'NODE_OPTIONS') env[k] = v;
    env.PATH = `${join(this.dir, '.bin')}:${process.env.PATH ?? ''}`;
    return env;
  }

  /** The environment after the `export` lines run so far, as a later command would see it. */
  shellEnv(): NodeJS.ProcessEnv {
    const res = spawnSync('bash', ['-c', 'source ./.env; env -0'], { cwd: this.dir, env: this.env(), encoding: 'utf8' });
    const env: NodeJS.ProcessEnv = {};
    for (const kv of res.stdout.split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return env;
  }

  /** Replaces the docs' placeholders and fixed ports with this sandbox's values. */
  async localise(text: string): Promise<string> {
    let out = text.replaceAll('/abs/path/', `${this.dir}/`).replaceAll('${workspaceFolder}', this.dir);
    for (const m of out.matchAll(/(127\.0\.0\.1|localhost):(\d{2,5})\b/g)) {
      const key = m[0];
      if (m[2] === '0' || this.ports.has(key)) continue;
      this.ports.set(key, `127.0.0.1:${await freePort()}`);
    }
    for (const [from, to] of this.ports) out = out.replaceAll(from, to);
    return out;
  }

  /** Runs one command line through bash from the sandbox root; `export` lines persist. */
  run(command: string, timeoutMs = 180_000): RunResult {
    const res = spawnSync('bash', ['-o', 'pipefail', '-c', `source ./.env\n${command}`], {
      cwd: this.dir,
      env: this.env(),
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 256 << 20,
    });
    if (res.status === 0 && /^export\s/.test(command)) writeFileSync(join(this.dir, '.env'), `${command}\n`, { flag: 'a' });
    return { command, status: res.status, stdout: res.stdout ?? '', stderr: (res.stderr ?? '') + (res.error ? String(res.error) : '') };
  }

  /** Starts a long-running HTTP server command and resolves the URL it announces on stderr. */
  startHttpServer(command: string): Promise<string> {
    let url = this.started.get(command);
    if (!url) this.started.set(command, (url = this.spawnHttpServer(command)));
    return url;
  }

  private async spawnHttpServer(command: string): Promise<string> {
    const child = spawn('bash', ['-c', `source ./.env\nexec ${command}`], { cwd: this.dir, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.servers.push(child);
    let err = '';
    return await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`"${command}" announced no URL within 30 s:\n${err}`)), 30_000);
      child.stderr!.on('data', (c: Buffer) => {
        err += c.toString();
        const m = /listening on (https?:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolveUrl(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`"${command}" exited with ${code} before listening:\n${err}`));
      });
    });
  }

  /** Connects a real SDK client to a stdio server command and lists its tools. */
  async listToolsOverStdio(command: string, args: string[], extraEnv: Record<string, string> = {}): Promise<string[]> {
    const env = { ...this.env(), ...extraEnv } as Record<string, string>;
    const transport = new StdioClientTransport({ command, args, env, cwd: this.dir, stderr: 'pipe' });
    let err = '';
    transport.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const client = new Client({ name: 'docs-snippets', version: '1.0.0' });
    try {
      await client.connect(transport);
      return (await client.listTools()).tools.map((t) => t.name);
    } catch (e) {
      throw new Error(`${command} ${args.join(' ')}: ${(e as Error).message}\n${err}`);
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** Connects a real SDK client over Streamable HTTP and lists the tools. */
  async listToolsOverHttp(url: string): Promise<string[]> {
    const client = new Client({ name: 'docs-snippets', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    try {
      return (await client.listTools()).tools.map((t) => t.name);
    } finally {
      await client.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    // A write into a hard-linked file wrote into the checkout too: say which, so the snippet is fixed.
    const touched = [...this.shared].filter(([p, mtime]) => existsSync(p) && statSync(p).mtimeMs !== mtime).map(([p]) => relative(this.dir, p));
    rmSync(this.dir, { recursive: true, force: true });
    if (touched.length) throw new Error(`snippets wrote into files the sandbox shares with the checkout by hard link (so into the checkout): ${touched.join(', ')}`);
  }
}

