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

/** A message the transport refused and answered itself, before anyone else saw it: reported for the audit. */
export interface TransportRefusal {
  /** the message, when its line parsed as JSON */
  message?: unknown;
  /** its method, when only that could be read (from the head of an oversize line) */
  method?: string;
  /** why it was refused, as the audit records it */
  reason: string;
}

const BATCH = 'Invalid Request: JSON-RPC batches are not supported by this gateway';

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
  /**
   * Told of every message refused here, before its answer is sent: these never reach `onmessage`, so the
   * policy proxy audits them through this (docs/policy.md: every refused message has a record).
   */
  onrefused?: (refusal: TransportRefusal) => void;
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
    const { id, method } = recoverEnvelope(o);
    const message = `Invalid Request: message of ${o.bytes} bytes exceeds the limit of ${max} bytes`;
    this.reject(id ?? null, -32600, message, { method, reason: message });
  }

  private handleLine(line: string): void {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return this.reject(null, -32700, 'Parse error', { reason: 'Parse error: the line is not valid JSON' });
    }
    if (Array.isArray(v)) return this.reject(null, -32600, BATCH, { message: v, reason: BATCH });
    const id = typeof v === 'object' && v !== null ? (v as { id?: unknown }).id : undefined;
    if (typeof v !== 'object' || v === null) {
      return this.reject(isValidId(id) ? id : null, -32600, 'Invalid Request', { message: v, reason: 'Invalid Request: a message must be a JSON object' });
    }
    if ((v as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      return this.reject(isValidId(id) ? id : null, -32600, 'Invalid Request', { message: v, reason: 'Invalid Request: "jsonrpc" must be "2.0"' });
    }
    if (this.validate && !isJsonRpcMessage(v)) {
      const reason = 'Invalid Request: not a valid JSON-RPC message';
      return this.reject(isValidId(id) ? id : null, -32600, reason, { message: v, reason });
    }
    try {
      this.onmessage?.(v as JSONRPCMessage);
    } catch (e) {
      this.onerror?.(e as Error);
    }
  }

  /** Answers a refused message; reported first, so a synchronous audit record precedes the answer. */
  private reject(id: RpcId | null, code: number, message: string, refusal: TransportRefusal): void {
    try {
      this.onrefused?.(refusal);
    } catch (e) {
      this.onerror?.(e as Error);
    }
    void this.send({ jsonrpc: '2.0', id, error: { code, message } } as unknown as JSONRPCMessage);
  }

  async start(): Promise<void> {
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('error', this.onErr);
  }

  /**
   * While the agent does not read what it was sent, nothing more is read from it: an agent that sent
   * calls and never read their answers made the gateway buffer every answer (1.7 GB for 400 answers of
   * 1 MB) until it ran out of memory. One wait for the output to drain, shared by every send meanwhile.
   */
  private draining: Promise<void> | null = null;

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.output.write(JSON.stringify(message) + '\n')) return this.draining ?? Promise.resolve();
    this.draining ??= new Promise((resolve) => {
      this.input.pause();
      this.output.once('drain', () => {
        this.draining = null;
        if (!this.closed) this.input.resume();
        resolve();
      });
    });
    return this.draining;
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
