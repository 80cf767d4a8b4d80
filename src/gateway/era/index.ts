/**
 * Protocol-revision translation for the policy gateway, at the JSON-RPC message level.
 *
 * The gateway forwards message objects between a downstream agent and an upstream server. When the two speak
 * different MCP revisions it wraps its upstream Transport in one of these adapters; the proxy then sees the
 * downstream's revision on both sides and keeps enforcing on exactly the objects it forwards.
 *
 * Exported signatures:
 *
 *   type Era = 'modern' | 'legacy';                       // 'modern' = 2026-07-28, 'legacy' = 2025-11-25
 *   function adaptUpstream(upstream: Transport, o: AdaptOptions): Transport;
 *   interface AdaptOptions {
 *     upstreamEra: Era; downstreamEra: Era;
 *     clientInfo?: { name: string; version: string };   // the gateway's identity upstream (default egress-triage-gateway)
 *     discover?: Record<string, unknown>;                // legacy-over-modern: the upstream's server/discover result, if probed
 *     upstreamCapabilities?: Record<string, unknown>;    // modern-over-legacy: declared in the gateway's initialize
 *     holdMs?: number;                                   // modern-over-legacy: how long a held call waits for the retry
 *     stateKey?: Uint8Array | string;                    // modern-over-legacy: HMAC key of requestState (>= 32 bytes)
 *     maxRounds?: number;                                // legacy-over-modern: input rounds per call
 *     log?: (line: string) => void;
 *   }
 *   function probeUpstreamEra(connect: () => Transport | Promise<Transport>,
 *                             o: { clientInfo: { name: string; version: string }; timeoutMs?: number }): Promise<EraProbe>;
 *   type EraProbe = { era: 'modern'; discover: Record<string, unknown> } | { era: 'legacy'; initialize: Record<string, unknown> };
 *   class EraSwitch implements Transport {              // one live upstream, its revision decided on the first message
 *     constructor(upstream: Transport, o?: EraSwitchOptions); upstreamEra?: Era;
 *   }
 *
 * `adaptUpstream` returns `upstream` itself when the eras are equal. The returned Transport is started, sent
 * to and closed like the upstream it wraps; `start()` of the modern-over-legacy adapter performs the upstream
 * `initialize` handshake and rejects when the upstream refuses it.
 *
 * Ids: every request the adapter sends upstream gets an id the adapter issues (one counter per adapter), and
 * every answer goes back to the downstream under the downstream's own id, so two downstream requests, retries
 * and the adapter's own requests can never share an id upstream.
 *
 * Modern downstream, legacy upstream (ModernOverLegacy): the adapter opens the upstream session itself,
 * answers `server/discover` from the upstream's initialize result, strips the 2026 envelope and multi-round
 * keys before forwarding, adds `resultType` (and `ttlMs: 0`, `cacheScope: private` on cacheable results) on
 * the way back, and serves `subscriptions/listen` from the session's list_changed notifications. When the
 * upstream PUSHES a request (elicitation/create, sampling/createMessage, roots/list) during a call, the call is
 * HELD: the upstream request stays open, the downstream gets `input_required` with the pushed request and an
 * HMAC-sealed `requestState`, and the retry's `inputResponses` are sent upstream as the push's answer; the
 * call's final answer goes to the retry. The retry must be for the same method, name and arguments. Held state
 * lives in this adapter (same process, same upstream session) for `holdMs`; then the push is answered with an
 * error and the upstream call is cancelled. A push is refused (JSON-RPC error to the upstream, never guessed)
 * when more than one call is open, or when the downstream's envelope lacks the capability.
 *
 * Legacy downstream, modern upstream (LegacyOverModern): the adapter answers `initialize` from the upstream's
 * `server/discover`, adds the envelope (protocolVersion 2026-07-28 and the clientInfo, capabilities and log
 * level from the downstream's initialize / logging/setLevel) to every request, opens `subscriptions/listen`
 * after `notifications/initialized` so list changes arrive unasked as 2025 expects, strips `resultType` and
 * the cache fields on results, and turns an `input_required` result into real requests to the downstream,
 * retrying the upstream call with `inputResponses` + `requestState` (up to `maxRounds`).
 *
 * Cancellation: `notifications/cancelled` is re-addressed to the call's current upstream id; over a
 * per-request-stream upstream (2026 HTTP) the call's stream is aborted instead. Towards a 2025 upstream, a
 * `requestSignal` passed to `send()` with a 2026 request (its HTTP stream closed) cancels the call as well.
 *
 * Limits: pushes are attributed only while exactly one tools/call, prompts/get or resources/read is open on
 * the adapter, so a shared adapter under concurrent calls refuses pushes; held calls do not survive the
 * process or reach another replica; a 2025 client's resources/subscribe has no 2026 counterpart and is
 * forwarded as is (the upstream refuses it); `probeUpstreamEra` opens up to two throwaway connections (two
 * child processes for a stdio upstream).
 */
import type { Transport } from '@modelcontextprotocol/server';
import { LegacyOverModern } from './legacy-over-modern.js';
import { ModernOverLegacy } from './modern-over-legacy.js';
import type { Era, Obj } from './wire.js';

export { probeUpstreamEra, type EraProbe, type ProbeOptions } from './probe.js';
export { LegacyOverModern } from './legacy-over-modern.js';
export { ModernOverLegacy } from './modern-over-legacy.js';
export { EraSwitch, UNDECIDED_CODE, type EraSwitchOptions } from './switch.js';
export type { Era } from './wire.js';

export interface AdaptOptions {
  upstreamEra: Era;
  downstreamEra: Era;
  clientInfo?: { name: string; version: string };
  discover?: Obj;
  upstreamCapabilities?: Obj;
  holdMs?: number;
  stateKey?: Uint8Array | string;
  maxRounds?: number;
  log?: (line: string) => void;
}

const GATEWAY_INFO = { name: 'egress-triage-gateway', version: '0.1.0' };

export function adaptUpstream(upstream: Transport, o: AdaptOptions): Transport {
  if (o.upstreamEra === o.downstreamEra) return upstream;
  const clientInfo = o.clientInfo ?? GATEWAY_INFO;
  if (o.downstreamEra === 'modern') {
    return new ModernOverLegacy(upstream, {
      clientInfo,
      upstreamCapabilities: o.upstreamCapabilities,
      holdMs: o.holdMs,
      stateKey: o.stateKey,
      log: o.log,
    });
  }
  return new LegacyOverModern(upstream, { clientInfo, discover: o.discover, maxRounds: o.maxRounds, log: o.log });
}
