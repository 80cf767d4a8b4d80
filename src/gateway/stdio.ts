import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { LineStdioServerTransport } from './stdio-transport.js';
import { StdioUpstreamTransport } from './stdio-upstream.js';
import { EraSwitch, type Era } from './era/index.js';
import { PolicyProxy } from './proxy.js';
import { createPolicyRuntime, modernSessionFor } from './runtime.js';

export interface StdioGatewayOptions {
  policyPath: string;
  dbPath: string;
  auditFile?: string | false;
  /** Shared policy state, `redis://host:port[/db]`; without it, the store at dbPath. */
  stateUrl?: string;
  command: string;
  args: string[];
  /** "client" rate-limit scope key and audit identity; default `local:<os user>`. */
  identity?: string;
  /**
   * Session key for "session" scope and approval binding. Random per run by default; set it to let an
   * agent restarted with the same value pick up approvals filed before a gateway restart.
   */
  sessionId?: string;
  /**
   * The revision the child speaks, when known: no question is asked to find out (src/gateway/era/switch.ts).
   * Default: found out on the first request.
   */
  upstreamRevision?: Era;
  /** Largest JSON-RPC message in either direction (src/mcp/message-limit.ts). */
  maxMessageBytes?: number;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /**
   * End the session cleanly on SIGTERM/SIGINT (default true): in-flight calls are answered, every audit
   * record is written, then the returned promise resolves with 0.
   */
  handleSignals?: boolean;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Runs one stdio session: our stdin/stdout <-> policy <-> a spawned child. Resolves with an exit code. */
export async function runStdioGateway(o: StdioGatewayOptions): Promise<number> {
  const runtime = createPolicyRuntime({ policyPath: o.policyPath, dbPath: o.dbPath, auditFile: o.auditFile, stateUrl: o.stateUrl });
  try {
    await runtime.state.ready();
  } catch (e) {
    runtime.close();
    throw e;
  }
  const session = o.sessionId ?? `stdio-${randomUUID()}`;
  let identity = o.identity;
  if (!identity) {
    try {
      identity = `local:${userInfo().username}`;
    } catch {
      identity = 'local';
    }
  }
  const child = new StdioUpstreamTransport({
    command: o.command,
    args: o.args,
    // A transparent wrapper: the server sees the environment it would see without us.
    env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string')),
    maxMessageBytes: o.maxMessageBytes,
  });
  const log = (l: string) => process.stderr.write(`egress-triage gateway: ${l}\n`);
  // The agent's revision is known from its first message only: the switch then finds out on this one child
  // whether it speaks the same, and translates if not (src/gateway/era/switch.ts).
  const upstream = new EraSwitch(child, { log, upstreamEra: o.upstreamRevision });
  const downstream = new LineStdioServerTransport(
    (o.input ?? process.stdin) as import('node:stream').Readable,
    (o.output ?? process.stdout) as import('node:stream').Writable,
    { maxMessageBytes: o.maxMessageBytes },
  );
  let closedBy: 'upstream' | 'downstream' | 'signal' | undefined;
  return new Promise<number>((resolve, reject) => {
    const proxy = new PolicyProxy({
      downstream,
      upstream,
      holder: runtime.holder,
      state: runtime.state,
      session: () => session,
      identity: identity!,
      modernSession: modernSessionFor(runtime, identity!),
      log,
      onClose: () => {
        for (const sig of SIGNALS) process.off(sig, onSignal);
        // Closing the runtime flushes whatever audit records are still buffered.
        runtime.close();
        resolve(closedBy === 'upstream' ? 1 : 0);
      },
    });
    // Without this the default action kills the process with records of answered calls still in memory.
    const onSignal = () => {
      closedBy ??= 'signal';
      void proxy.close();
    };
    if (o.handleSignals !== false) for (const sig of SIGNALS) process.once(sig, onSignal);
    proxy.start().then(
      () => {
        // Remember which side ended the session for the exit code.
        const up = upstream.onclose;
        upstream.onclose = () => {
          closedBy ??= 'upstream';
          up?.();
        };
        const down = downstream.onclose;
        downstream.onclose = () => {
          closedBy ??= 'downstream';
          down?.();
        };
      },
      (e) => {
        for (const sig of SIGNALS) process.off(sig, onSignal);
        runtime.close();
        reject(e);
      },
    );
  });
}
