import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';
import { freePort } from './free-port.js';

/**
 * A real redis-server for a test: its own port and temp folder, no persistence
 * (`--save "" --appendonly no`), stopped and removed by stop(). stop() + start() restart it on the
 * same port with no data, like a Redis restarted without persistence.
 */
export interface TestRedis {
  port: number;
  url: string;
  /** the server's folder: a `SAVE` writes its snapshot there, and start() loads it, as a restart does */
  dir: string;
  /** (Re)starts the server on its port, with `extra` arguments for this start only. */
  start(extra?: string[]): Promise<void>;
  /** Kills the server (SIGKILL: nothing is saved) and waits until its port refuses connections. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const INSTALL = 'redis-server is not installed: install redis-server (apt-get install redis-server)';

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    let buf = '';
    c.setTimeout(1000, () => (c.destroy(), resolve(false)));
    c.once('error', () => resolve(false));
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        c.destroy();
        resolve(buf.startsWith('+PONG'));
      }
    });
  });
}


export async function startRedis(): Promise<TestRedis> {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(INSTALL);
  const dir = mkdtempSync(join(tmpdir(), 'et-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const start = async (extra: string[] = []) => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (c) => reject(new Error(`redis-server exited with ${c}:\n${log}`))));
    await Promise.race([waitFor(() => ping(port), 15_000, 25, `redis-server on port ${port}`), exited]);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
    await waitFor(async () => !(await ping(port)), 15_000, 25, `port ${port} to close`);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    dir,
    start,
    kill,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
