import { join } from 'node:path';
import { request } from 'node:http';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Client, StreamableHTTPClientTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { openStore } from '../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../src/storage/location.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { writeTenant } from '../../src/generate/index.js';
import { CLI, tempDir } from '../helpers.js';
import { copyCachedStore, offerStore } from '../helpers/demo-cache.js';
import { before, after } from 'node:test';

export const TENANT = 'demo';

/**
 * Generates a small demo tenant to a temp file and ingests it into `opts.db` (a SQLite path or a
 * postgres:// URL; default `<dir>/egress.db`); returns the store's location.
 */
export async function buildDemoDb(dir: string, opts: { events?: number; runs?: number; db?: string } = {}): Promise<string> {
  const dbPath = opts.db ?? join(dir, 'egress.db');
  // the same tenant for every file of a suite run that asks for this size (test/helpers/demo-cache.ts)
  const key = `mcp_demo_${opts.events ?? 12_000}_${opts.runs ?? 12}`;
  if (await copyCachedStore(key, dbPath)) return dbPath;
  await ingestDemoTenant(dir, dbPath, opts);
  await offerStore(key, dbPath);
  return dbPath;
}

async function ingestDemoTenant(dir: string, dbPath: string, opts: { events?: number; runs?: number }): Promise<void> {
  const file = join(dir, 'demo.ndjson');
  await writeTenant({ seed: 1, events: opts.events ?? 12_000, runs: opts.runs ?? 12 }, file);
  const store = await openStore(resolveStoreLocation(dbPath, {}), 'create');
  try {
    const pipe = new IngestPipeline(store, {
      tenant: TENANT,
      format: 'auto',
      strict: false,
      defaults: {},
      engine: DEFAULT_ENGINE_CONFIG,
      suppressorFor: (s, tenant) => s.ingestSuppressor(tenant),
    });
    await pipe.ingest(file);
  } finally {
    await store.close();
  }
}

export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('EGRESS_TRIAGE_')) env[k] = v;
  return { ...env, ...extra };
}

/** A real SDK client over stdio, spawning the built CLI. */
export async function stdioClient(
  dbPath: string,
  opts: { tenant?: string; elicitation?: boolean; extraArgs?: string[] } = {},
): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', '--db', dbPath, '--tenant', opts.tenant ?? TENANT, '--dashboard-url', 'https://dash.example', ...(opts.extraArgs ?? [])],
    env: cleanEnv(),
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const client = new Client({ name: 'egress-triage-test', version: '1.0.0' }, { capabilities: opts.elicitation ? { elicitation: { form: {} } } : {} });
  await client.connect(transport);
  return { client, transport, stderr: () => err };
}

/** Starts `serve --listen 127.0.0.1:0` as a child process and resolves the URL it prints to stderr. */
export async function startServe(dbPath: string, extraArgs: string[] = []): Promise<{ child: ChildProcessWithoutNullStreams; url: URL; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--db', dbPath, '--tenant', TENANT, '--listen', '127.0.0.1:0', '--dashboard-url', 'https://dash.example', ...extraArgs],
    { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let err = '';
  const url = await new Promise<URL>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not print its URL: ${err}`)), 15_000);
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(new URL(m[1]!));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`serve exited with ${code}: ${err}`));
    });
  });
  return { child, url, stderr: () => err };
}

export async function httpClient(url: URL, opts: { elicitation?: boolean } = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(url);
  const client = new Client({ name: 'egress-triage-http-test', version: '1.0.0' }, { capabilities: opts.elicitation ? { elicitation: { form: {} } } : {} });
  await client.connect(transport);
  return { client, transport };
}

export async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** structuredContent of a successful call; fails loudly with the error text otherwise. */
export async function callOk<T = Record<string, any>>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = await call(client, name, args);
  if (r.isError) throw new Error(`${name} returned isError: ${textOf(r)}`);
  return r.structuredContent as T;
}

export function textOf(r: CallToolResult): string {
  return r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

export function killChild(child: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * A demo store and a real SDK client over stdio on it, for the tests of one describe block: built in
 * its before hook, closed in its after hook. Call it inside the describe callback. `store` gives
 * the location to build it in (a fresh PostgreSQL database, say); default a SQLite file.
 */
export function useDemoClient(prefix: string, store?: () => Promise<string>): { readonly db: string; readonly client: Client } {
  const tmp = tempDir(prefix);
  const fx = {} as { db: string; client: Client; close?: () => Promise<void> };
  before(async () => {
    fx.db = await buildDemoDb(tmp.dir, { db: await store?.() });
    const c = await stdioClient(fx.db);
    fx.client = c.client;
    fx.close = () => c.client.close();
  });
  after(async () => {
    await fx.close?.().catch(() => undefined);
    tmp.cleanup();
  });
  return fx;
}

/** One raw HTTP POST to an MCP endpoint, the body as text (status -1 when the server closed the socket first). */
export function rawPost(url: URL, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
      (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
      },
    );
    req.on('error', (e) => {
      // the server may close the socket after answering 413
      if ((e as NodeJS.ErrnoException).code === 'EPIPE' || (e as NodeJS.ErrnoException).code === 'ECONNRESET') resolve({ status: -1, body: '', headers: {} });
      else reject(e);
    });
    req.end(body);
  });
}
