import { spawn, type ChildProcess } from 'node:child_process';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../mcp/message-limit.js';
import { JsonLineReader, recoverEnvelope, type OversizeLine } from './json-lines.js';

export interface StdioUpstreamOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Largest message accepted from the upstream, in bytes: the same setting as the agent side. */
  maxMessageBytes?: number;
}

/**
 * Client-side stdio transport: spawns the upstream server and frames its stdout with the same reader
 * and the same limit as the agent side. Replaces the SDK's StdioClientTransport, whose reader has its
 * own 10 MiB cap and closes the transport (ending the gateway) when a reply is larger.
 *
 * An oversize message from the upstream is dropped, and:
 *   - if it was a request (its method and id can be read), the upstream gets -32600 for that id;
 *   - if it was a response with a readable id, the proxy receives a -32603 error for that id in its
 *     place, so the agent's call ends with an error (and, since the upstream ran it, keeps its quota);
 *   - otherwise it is reported through onerror.
 */
export class StdioUpstreamTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private child?: ChildProcess;
  private readonly reader: JsonLineReader;

  constructor(private readonly o: StdioUpstreamOptions) {
    const max = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.reader = new JsonLineReader(max, (l) => this.handleLine(l), (x) => this.oversize(x, max));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.o.command, this.o.args, {
        env: this.o.env,
        stdio: ['pipe', 'pipe', 'inherit'],
        shell: false,
        windowsHide: true,
      });
      this.child = child;
      child.once('error', (e) => {
        reject(e);
        this.onerror?.(e);
      });
      child.once('spawn', () => resolve());
      child.once('close', () => {
        this.child = undefined;
        this.onclose?.();
      });
      child.stdin!.on('error', (e) => this.onerror?.(e));
      child.stdout!.on('error', (e) => this.onerror?.(e));
      child.stdout!.on('data', (c: Buffer) => this.reader.push(c));
    });
  }

  private handleLine(line: string): void {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return this.onerror?.(new Error(`upstream sent a line that is not JSON (${line.length} chars), dropped`));
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return this.onerror?.(new Error('upstream sent a JSON value that is not a single JSON-RPC message, dropped'));
    }
    this.onmessage?.(v as JSONRPCMessage);
  }

  private oversize(o: OversizeLine, max: number): void {
    const { id, method } = recoverEnvelope(o);
    const what = `upstream message of ${o.bytes} bytes exceeds the limit of ${max} bytes (--max-message-bytes)`;
    if (id !== undefined && method !== undefined) {
      void this.send({ jsonrpc: '2.0', id, error: { code: -32600, message: `Invalid Request: message of ${o.bytes} bytes exceeds the limit of ${max} bytes` } });
      this.onerror?.(new Error(`${what}: request ${method} refused`));
    } else if (id !== undefined) {
      this.onerror?.(new Error(`${what}: the answer to request ${JSON.stringify(id)} was dropped`));
      this.onmessage?.({ jsonrpc: '2.0', id, error: { code: -32603, message: what } });
    } else {
      this.onerror?.(new Error(`${what}: dropped (no id could be read)`));
    }
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.child?.stdin;
      if (!stdin || stdin.destroyed) return reject(new Error('upstream is not running'));
      if (stdin.write(JSON.stringify(message) + '\n')) resolve();
      else stdin.once('drain', () => resolve());
    });
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    const within = (ms: number) => Promise.race([exited, new Promise<void>((r) => setTimeout(r, ms).unref())]);
    try {
      child.stdin?.end();
    } catch {
      // already gone
    }
    await within(2000);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await within(2000);
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
