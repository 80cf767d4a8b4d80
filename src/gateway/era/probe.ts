import type { Transport } from '@modelcontextprotocol/server';
import { UpstreamRequests } from './upstream-requests.js';
import { offersModernRetry } from '../modern-http.js';
import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LEGACY, MODERN, PROTOCOL_VERSION_META_KEY, isObj, type Msg, type Obj } from './wire.js';

export type EraProbe = { era: 'modern'; discover: Obj } | { era: 'legacy'; initialize: Obj };

export interface ProbeOptions {
  clientInfo: { name: string; version: string };
  /** Bound on each of the two questions. Default 10 s. */
  timeoutMs?: number;
}

function reason(m: Msg): string {
  const e = isObj(m.error) ? m.error : {};
  return typeof e.message === 'string' ? e.message : JSON.stringify(m.error ?? m.result);
}

/** Opens a connection, asks one question, closes it. A closed or refusing connection is an error answer. */
async function ask(connect: () => Transport | Promise<Transport>, method: string, params: Obj, timeoutMs: number): Promise<Msg> {
  const transport = await connect();
  let closed: (m: Msg) => void = () => {};
  const gone = new Promise<Msg>((resolve) => (closed = resolve));
  const requests = new UpstreamRequests(transport, () => {});
  transport.onclose = () => closed({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'the upstream closed the connection' } });
  transport.onerror = () => {};
  try {
    await transport.start();
    if (method === 'initialize') transport.setProtocolVersion?.(LEGACY);
    const answer = await Promise.race([requests.request(method, params, timeoutMs), gone]);
    if (method === 'initialize' && isObj(answer.result)) {
      await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' }).catch(() => {});
    }
    return answer;
  } catch (e) {
    return { jsonrpc: '2.0', id: null, error: { code: -32603, message: (e as Error).message } };
  } finally {
    await transport.close().catch(() => {});
  }
}

/**
 * Which revision an upstream speaks, asked on throwaway connections so the real one starts clean: first
 * `server/discover` with a 2026-07-28 envelope (a 2026 server must answer it and list 2026-07-28; asked twice when
 * the first is refused with -32022 listing 2026-07-28), and when that is refused, `initialize` at 2025-11-25. Throws when neither is answered, with both reasons.
 */
export async function probeUpstreamEra(connect: () => Transport | Promise<Transport>, o: ProbeOptions): Promise<EraProbe> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const envelope = { [PROTOCOL_VERSION_META_KEY]: MODERN, [CLIENT_INFO_META_KEY]: o.clientInfo, [CLIENT_CAPABILITIES_META_KEY]: {} };
  let discover = await ask(connect, 'server/discover', { _meta: envelope }, timeoutMs);
  // A -32022 refusal that lists 2026-07-28 as supported asks for the retry the version negotiation prescribes.
  if (offersModernRetry(discover)) discover = await ask(connect, 'server/discover', { _meta: envelope }, timeoutMs);
  if (isObj(discover.result) && Array.isArray(discover.result.supportedVersions) && discover.result.supportedVersions.includes(MODERN)) {
    return { era: 'modern', discover: discover.result };
  }
  const init = await ask(connect, 'initialize', { protocolVersion: LEGACY, capabilities: {}, clientInfo: o.clientInfo }, timeoutMs);
  if (isObj(init.result)) return { era: 'legacy', initialize: init.result };
  throw new Error(`the upstream answered neither server/discover (${reason(discover)}) nor initialize (${reason(init)})`);
}
