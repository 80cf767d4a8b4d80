import type { Readable, Writable } from 'node:stream';
import { parseJSONRPCMessage, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../mcp/message-limit.js';
import { isValidId, JsonLineReader, recoverEnvelope, type OversizeLine, type RpcId } from './json-lines.js';

export interface LineStdioOptions {
  /** Largest message accepted, in bytes (see src/mcp/message-limit.ts). */
  maxMessageBytes?: number;
  /**
   * Refuse messages that are not valid MCP JSON-RPC (the SDK's schema) with -32600 here. Off for the
   * policy proxy, which sees every message so it can audit a malformed tools/call; on for a plain server.
   */
  validate?: boolean;
}

/**
 * Server-side stdio transport that reads lines itself instead of using the SDK's, because the SDK's
 * ReadBuffer hands parsed values straight to the schema (a JSON array must be refused here with
 * -32600 before anything could treat its members as individual messages), has no limit one can share
 * with the other direction, and answers nothing for an oversize message.
 */
export class LineStdioServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private closed = false;
  private readonly reader: JsonLineReader;
  private readonly validate: boolean;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    opts: LineStdioOptions = {},
  ) {
    const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.validate = opts.validate ?? false;
    this.reader = new JsonLineReader(max, (l) => this.handleLine(l), (o) => this.oversize(o, max));
  }

  private readonly onData = (chunk: Buffer | string) => this.reader.push(chunk);
  private readonly onEnd = () => void this.close();
  private readonly onErr = (e: Error) => this.onerror?.(e);

  private oversize(o: OversizeLine, max: number): void {
    const { id } = recoverEnvelope(o);
    this.reject(id ?? null, -32600, `Invalid Request: message of ${o.bytes} bytes exceeds the limit of ${max} bytes`);
  }

  private handleLine(line: string): void {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return this.reject(null, -32700, 'Parse error');
    }
    if (Array.isArray(v)) return this.reject(null, -32600, 'Invalid Request: JSON-RPC batches are not supported by this gateway');
    const id = typeof v === 'object' && v !== null ? (v as { id?: unknown }).id : undefined;
    if (typeof v !== 'object' || v === null || (v as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      return this.reject(isValidId(id) ? id : null, -32600, 'Invalid Request');
    }
    if (this.validate && !isJsonRpcMessage(v)) {
      return this.reject(isValidId(id) ? id : null, -32600, 'Invalid Request: not a valid JSON-RPC message');
    }
    try {
      this.onmessage?.(v as JSONRPCMessage);
    } catch (e) {
      this.onerror?.(e as Error);
    }
  }

  private reject(id: RpcId | null, code: number, message: string): void {
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

/** The SDK's own JSON-RPC shape check (it throws on a mismatch). */
function isJsonRpcMessage(v: unknown): boolean {
  try {
    parseJSONRPCMessage(v);
    return true;
  } catch {
    return false;
  }
}
