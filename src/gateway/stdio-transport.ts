import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

const MAX_LINE = 16 * 1024 * 1024;

/**
 * Server-side stdio transport that reads lines itself instead of using the SDK's, because the SDK's
 * ReadBuffer hands parsed values straight to the schema: a JSON array (batch) must be refused here
 * with -32600 before anything could treat its members as individual messages.
 */
export class LineStdioServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private buf = '';
  private closed = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {}

  private readonly onData = (chunk: Buffer | string) => {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) !== -1) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line.trim()) this.handleLine(line);
    }
    if (this.buf.length > MAX_LINE) {
      this.buf = '';
      this.reject(null, -32600, 'Invalid Request: message too large');
    }
  };
  private readonly onEnd = () => void this.close();
  private readonly onErr = (e: Error) => this.onerror?.(e);

  private handleLine(line: string): void {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return this.reject(null, -32700, 'Parse error');
    }
    if (Array.isArray(v)) return this.reject(null, -32600, 'Invalid Request: JSON-RPC batches are not supported by this gateway');
    if (typeof v !== 'object' || v === null || (v as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      const id = typeof v === 'object' && v !== null ? ((v as { id?: unknown }).id ?? null) : null;
      return this.reject(typeof id === 'string' || typeof id === 'number' ? id : null, -32600, 'Invalid Request');
    }
    try {
      this.onmessage?.(v as JSONRPCMessage);
    } catch (e) {
      this.onerror?.(e as Error);
    }
  }

  private reject(id: string | number | null, code: number, message: string): void {
    void this.send({ jsonrpc: '2.0', id, error: { code, message } } as unknown as JSONRPCMessage);
  }

  async start(): Promise<void> {
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('error', this.onErr);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      if (this.output.write(JSON.stringify(message) + '\n')) resolve();
      else this.output.once('drain', () => resolve());
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('error', this.onErr);
    this.input.pause();
    this.onclose?.();
  }
}
