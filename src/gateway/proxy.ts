import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import { limitCost, type ArgReadings, type Decision } from '../policy/engine.js';
import { MAX_ARGS_DEPTH, MAX_TOOL_NAME_LENGTH, auditedToolName, hashArgs, nestedDeeperThan } from '../policy/canonical.js';
import { limitScopeKey } from '../policy/limit-scope.js';
import type { PolicyHolder, ReloadEvent } from '../policy/holder.js';
import type {
  ApprovalOutcome,
  AuditDecision,
  AuditRecord,
  LimitRequest,
  PolicyStateBackend,
  Reservation,
  ReserveResult,
  UpstreamOutcome,
} from '../storage/policy-state.js';
import { argsPreview, filedFor, type ApprovalBinding } from '../storage/policy-state.js';
import { isValidId } from './json-lines.js';
import { RecentIds } from './recent-ids.js';
import { LineStdioServerTransport, type TransportRefusal } from './stdio-transport.js';
import {
  claimedEra, classifyInbound, CLIENT_CAPABILITIES_KEY, metaOf, MODERN_PASS_REQUESTS, MODERN_REVISION, PASS_REQUESTS, SUBSCRIPTION_ID_KEY, type Era,
} from './methods.js';
import { APPROVAL_INPUT_KEY, approvalAnswer, approvalElicitation, approvalQuestion, boundTo, mintState, openState, type GatewayState, type StateBinding } from './mrtr.js';
import { quotaComesBack } from './quota.js';
import { refusalSubject } from './refusal.js';
import { clip } from '../domain/clip.js';

/**
 * A policy-enforcing MCP proxy at the JSON-RPC message level.
 *
 * `downstream` faces the agent (we play server), `upstream` faces the real server (we play client).
 * From the agent, only allow-listed methods pass (src/gateway/methods.ts); `tools/call` is decided by
 * the policy and everything else is refused and audited. `tools/list` responses lose hidden tools.
 * Whatever passes is forwarded as the same object in both directions, ids included. Nothing here awaits
 * one call before handling the next message, so a slow call or an elicitation in the middle of a call
 * never blocks other traffic.
 *
 * Both protocol revisions: a connection is 2025-11-25 when it opens with `initialize`, 2026-07-28 when
 * its first request carries the `_meta` envelope naming that revision, and a later request claiming
 * the other one (or any other version) is refused. On 2026-07-28 the client's capabilities come from
 * each request's envelope, approvals go over multi-round-trip requests (src/gateway/mrtr.ts), and the
 * gateway's own `notifications/tools/list_changed` goes only onto open `subscriptions/listen` streams.
 */

type Id = string | number;
type ModernSession = { ok: true; key: string } | { ok: false; reason: string };
type Msg = Record<string, unknown> & { jsonrpc?: string; id?: Id | null; method?: string; params?: unknown };

export const DENIED_PREFIX = '[POLICY DENIED]';

export interface ProxyOptions {
  downstream: Transport;
  upstream: Transport;
  /**
   * Frees what the upstream holds for a request the proxy gave up on (cancelled by its client, timed
   * out) under the id the proxy sent it with: an HTTP upstream's POST and its shared connection.
   */
  abandonUpstream?: (id: string | number) => void;
  /** The identity's in-flight call slots, shared by its proxies (an HTTP gateway's); none: unbounded. */
  inflight?: InflightSlots;
  holder: PolicyHolder;
  state: PolicyStateBackend;
  /**
   * Rate-limit "session" scope key of 2025-11-25 traffic; called lazily because HTTP session ids
   * appear after initialize.
   */
  session: () => string;
  /**
   * The "session" scope key of a 2026-07-28 request, from its `_meta`. Absent: the authenticated
   * identity. `{ ok: false }` denies the call (audited, fail closed).
   */
  modernSession?: (meta: Record<string, unknown> | undefined) => ModernSession | Promise<ModernSession>;
  /** Written into every audit record as `upstreamName` (multi-upstream gateway). */
  upstreamName?: string;
  /** The tenant of the server the proxy guards (`mcp` / `serve`), recorded and bound on its approvals; none for a stand-alone gateway. */
  tenant?: string;
  /** Rate-limit "client" scope key: the authenticated identity. */
  identity: string;
  /**
   * HTTP server transports route a server->client message by the request it relates to; stdio ignores it.
   */
  relateDownstream?: boolean;
  /**
   * The request whose upstream stream the message being delivered arrived on, when the upstream
   * transport knows it (the HTTP gateway's does); used to route server->client messages.
   */
  upstreamRelated?: () => Id | undefined;
  /** Replaces `upstream.close()` on shutdown, e.g. to end the upstream HTTP session first. */
  closeUpstream?: () => Promise<void>;
  /**
   * Methods beyond the default allow-list that this upstream is known to serve safely (the built-in
   * mode passes its own server's prompts).
   */
  passMethods?: readonly string[];
  /**
   * The arguments of a call as the upstream reads them, for the policy to judge (the audit keeps them
   * as sent). The built-in mode passes its own tools' (canonicalToolArgs: aliases folded); a generic
   * upstream's are judged as sent.
   */
  policyArgs?: (tool: string, args: Record<string, unknown>) => Record<string, unknown>;
  /** Top-level arguments a tool of the upstream reads ignoring case, and how it reads them (ArgReadings, PolicyEngine.decide). */
  argReadings?: (tool: string) => ArgReadings;
  /** Called once when either side closes; the proxy has already closed the other side. */
  onClose?: () => void;
  log?: (line: string) => void;
}

/** What a call's revision says about its client, resolved before the policy decides. */
interface CallCtx {
  era: Era;
  /** the client's declared capabilities: from initialize (2025-11-25) or the request's envelope */
  caps: Record<string, unknown>;
  /** the "session" scope key and the session the approval and audit name */
  session: string;
  /** our verified requestState, on a 2026-07-28 retry */
  gw?: GatewayState;
}

interface Call {
  id: Id;
  msg: Msg;
  ctx: CallCtx;
  tool: string;
  args: Record<string, unknown>;
  argsHash: string;
  decision: Decision;
  policyHash: string;
  reservation?: Reservation;
  /** The counters answer asynchronously (a shared backend) and have not answered yet. */
  reserving?: boolean;
  t0: number;
  forwarded: boolean;
  done: boolean;
  timer?: NodeJS.Timeout;
  /** Only calls that wait for approval need one (it stops the elicitation and the store poll). */
  abort?: AbortController;
  auditDecision: AuditDecision;
  approvalId?: string;
  /** It holds one of its identity's in-flight slots (ProxyOptions.inflight) until it ends. */
  slot?: boolean;
}

/**
 * How many calls an identity may have forwarded and unanswered at once, across its sessions and
 * requests (ProxyOptions.inflight). Each holds a connection to the upstream from the pool every
 * client shares (256): one client's 256 slow calls, none cancelled, left the others none until
 * the call time-out (5 minutes by default).
 */
export interface InflightSlots {
  take(): boolean;
  give(): void;
  readonly max: number;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why the approval of a call its client cancelled is withdrawn (listed with the expired row). */
const CANCEL_WITHDRAWAL = 'withdrawn: the client cancelled the call';

export class PolicyProxy {
  /** The audit write the next answer waits for (only a networked store has one). */
  private auditWrite?: Promise<void>;
  private readonly calls = new Map<Id, Call>();
  /** Ids of downstream requests forwarded and not yet answered (besides tools/call), for routing. */
  private readonly openRequests = new Map<Id, string>();
  private readonly listIds = new Set<Id>();
  /**
   * Ids of forwarded requests the gateway gave up on (cancelled, timed out) whose late answer is to be
   * dropped. An upstream need not answer a cancelled request, and SDK servers do not, so these are
   * bounded (RecentIds): remembered for ever, one client's cancels filled the gateway's memory.
   */
  private readonly droppedIds = new RecentIds();
  /** Ids of forwarded requests (not tools/call, not tools/list) the client cancelled: a late answer is passed on. Bounded as droppedIds. */
  private readonly cancelledOpen = new RecentIds();
  private readonly ownRequests = new Map<Id, (m: Msg) => void>();
  /** Requests the upstream sent to the client and not yet answered: the only responses forwarded up. */
  /** Bounded as droppedIds: an upstream can send requests the client never answers, each id megabytes long. */
  private readonly upstreamRequests = new RecentIds();
  private readonly passMethods: ReadonlySet<string>;
  private clientCaps: Record<string, unknown> = {};
  private initialized = false;
  private closed = false;
  /** The connection's revision, fixed by its first request. */
  private era?: Era;
  /** Open 2026-07-28 `subscriptions/listen` streams: id -> whether the client asked for tool list changes. */
  private readonly listens = new Map<Id, boolean>();
  /** 2026-07-28 calls whose session key and requestState are being resolved (before the policy). */
  private readonly preparing = new Map<Id, { cancelled: boolean; tool: string; args: Record<string, unknown>; t0: number }>();
  /**
   * Requests forwarded only because the policy's `forward:` names their method. The upstream has them, so
   * each gets exactly one audit record however it ends (endForward): answered, cancelled by the client,
   * the client gone, the gateway shutting down, the upstream gone or unreachable.
   */
  private readonly policyForwards = new Map<Id, { t0: number; method: string; args: Record<string, unknown>; policyHash: string }>();
  /** passMethods plus the policy's `forward:` list, rebuilt when a reload brings another engine. */
  private extra?: { engine: object; set: ReadonlySet<string> };
  private readonly onReload = (ev: ReloadEvent) => {
    if (!ev.hiddenChanged) return;
    if (this.era === 'modern') {
      // 2026-07-28 has no unsolicited notifications: only a listen stream that asked for them gets one,
      // stamped with its subscription id (the listen request's id).
      for (const [sid, wants] of this.listens) {
        if (wants) this.sendDown({ jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { _meta: { [SUBSCRIPTION_ID_KEY]: sid } } }, sid);
      }
    } else if (this.initialized) {
      this.sendDown({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    }
  };

  constructor(private readonly o: ProxyOptions) {
    this.passMethods = new Set(o.passMethods ?? []);
  }

  get inFlight(): number {
    return this.calls.size;
  }

  async start(): Promise<void> {
    const { downstream, upstream } = this.o;
    downstream.onmessage = (m) => this.fromDown(m as unknown as Msg);
    upstream.onmessage = (m) => this.fromUp(m as unknown as Msg);
    downstream.onclose = () => void this.shutdown('downstream');
    upstream.onclose = () => void this.shutdown('upstream');
    downstream.onerror = (e) => this.o.log?.(`downstream error: ${e.message}`);
    upstream.onerror = (e) => this.o.log?.(`upstream error: ${e.message}`);
    // The stdio reader answers batches, bad JSON and oversize lines itself; they are audited here all the same.
    if (downstream instanceof LineStdioServerTransport) downstream.onrefused = (r) => this.auditTransportRefusal(r);
    this.o.holder.on('reload', this.onReload);
    await upstream.start();
    await downstream.start();
  }

  async close(): Promise<void> {
    await this.shutdown('local');
  }

  // ---------------------------------------------------------------- agent -> server

  private fromDown(m: Msg): void {
    // Nothing deeper than any policy reads is passed on: serialising such a message overflowed the
    // stack in the 2026-07-28 HTTP transport and took the gateway down with every caller's calls. A
    // call's arguments have their own limit and denial (handleCall), so they are left to it here.
    if (nestedPastArguments(m)) {
      const id = isObj(m) && isValidId(m.id) ? m.id : undefined;
      const method = isObj(m) && typeof m.method === 'string' ? m.method : undefined;
      // the refusal's audit reads a shallow stand-in: the message itself is too deep to hash
      return this.refuse({ jsonrpc: '2.0', id, method } as Msg, id ?? (method !== undefined && isObj(m) && 'id' in m ? null : undefined), -32600, `Invalid Request: the message nests deeper than ${MAX_ARGS_DEPTH} levels`, method);
    }
    let era: Era = this.era ?? 'legacy';
    if (isObj(m) && typeof m.method === 'string' && isValidId(m.id)) {
      // A request names its revision; the connection keeps the one its first request named.
      const claim = claimedEra(m);
      if (typeof claim === 'object') {
        // UnsupportedProtocolVersionError: `data` names what the client can retry with (the versions the
        // envelope may claim; 2025-11-25 is reached through initialize, not through an envelope, as in the
        // SDK's own servers) and echoes what it asked for.
        const data = { supported: [MODERN_REVISION], requested: claim.unsupported };
        return this.refuse(m, m.id, -32022, `Unsupported protocol version "${claim.unsupported}": this gateway serves 2025-11-25 (after initialize) and ${MODERN_REVISION}`, m.method, data);
      }
      if (this.era !== undefined && claim !== this.era) {
        return this.refuse(m, m.id, -32600, `Invalid Request: this connection speaks ${REVISION[this.era]}; a request claiming ${REVISION[claim]} is refused`, m.method);
      }
      this.era ??= claim;
      era = claim;
    }
    const engine = this.o.holder.current.engine;
    if (this.extra?.engine !== engine) this.extra = { engine, set: engine.forwards.size ? new Set([...this.passMethods, ...engine.forwards]) : this.passMethods };
    const c = classifyInbound(m, this.extra.set, era);
    switch (c.kind) {
      case 'refuse':
        return this.refuse(m, c.reply, c.code, c.message, c.method);
      case 'call':
      case 'request':
        // A second request under an id still in flight would take over the first one's answer (and
        // leave the first call unaudited), and one under the id of a call that was cancelled or timed
        // out could be handed that call's late answer: refuse both.
        if (this.calls.has(c.id) || this.openRequests.has(c.id) || this.droppedIds.has(c.id) || this.cancelledOpen.has(c.id) || this.preparing.has(c.id)) {
          return this.refuse(m, c.id, -32600, `Invalid Request: id ${JSON.stringify(c.id)} is already in use by a request in flight`, m.method);
        }
        if (c.kind === 'call') {
          if (era === 'modern') return this.prepareModern(m, c.id);
          return this.handleCall(m, { era, caps: this.clientCaps, session: this.o.session() });
        }
        if (c.method === 'tools/list') this.listIds.add(c.id);
        if (engine.forwards.has(c.method) && !this.passMethods.has(c.method) && !(era === 'modern' ? MODERN_PASS_REQUESTS : PASS_REQUESTS).has(c.method)) {
          const { _meta: _m, ...args } = isObj(m.params) ? m.params : {};
          this.policyForwards.set(c.id, { t0: performance.now(), method: c.method, args, policyHash: this.o.holder.current.hash });
        }
        if (c.method === 'subscriptions/listen') {
          const p = isObj(m.params) ? m.params : {};
          this.listens.set(c.id, isObj(p.notifications) && p.notifications.toolsListChanged === true);
        }
        if (c.method === 'initialize' && isObj(m.params) && isObj(m.params.capabilities)) this.clientCaps = m.params.capabilities;
        this.openRequests.set(c.id, c.method);
        this.sendUp(m, c.id);
        return;
      case 'notification':
        if (c.method === 'notifications/initialized') this.initialized = true;
        if (c.method === 'notifications/cancelled' && isObj(m.params)) {
          const rid = m.params.requestId as Id;
          const prep = this.preparing.get(rid);
          if (prep) {
            prep.cancelled = true; // never decided, never forwarded
            return;
          }
          if (this.listens.delete(rid)) this.openRequests.delete(rid); // a listen stream ends without an answer
          // Any other forwarded request: the upstream need not answer it now (nor does an SDK server), so
          // it is no longer open, and what is kept of it is bounded. A late answer is still passed on,
          // but to a tools/list, whose hidden tools it would have to be filtered of: that is dropped.
          else if (this.openRequests.delete(rid)) {
            if (this.listIds.delete(rid)) this.droppedIds.add(rid);
            else this.cancelledOpen.add(rid);
            // over HTTP its POST is closed, freeing the connection: no late answer comes then
            this.abandonUp(rid);
          }
          // The upstream has this request already: its record is written now, and a late answer (still
          // passed on, as for any cancelled request that is not a tools/call) writes no second one.
          this.endForward(rid, 'cancelled', 'cancelled by the client');
          const call = this.calls.get(rid);
          if (call) {
            const wasForwarded = call.forwarded;
            this.finish(call, call.forwarded ? call.auditDecision : 'approval_cancelled', 'cancelled', undefined);
            // only a forwarded call can have a late answer to drop
            if (wasForwarded) {
              this.droppedIds.add(rid);
              this.abandonUp(rid);
            }
            if (!wasForwarded) {
              this.withdrawIfOrphaned(call.approvalId, CANCEL_WITHDRAWAL);
              return; // the upstream never saw this call
            }
          }
        }
        this.sendUp(m);
        return;
      case 'response': {
        // A response from the client: to one of our own requests (approval elicitation) or the upstream's.
        const own = this.ownRequests.get(c.id);
        if (own) {
          this.ownRequests.delete(c.id);
          own(m);
          return;
        }
        if (!this.upstreamRequests.delete(c.id)) {
          this.o.log?.(`dropped a response from the client to ${JSON.stringify(c.id)}: no such request from the upstream is open`);
          return;
        }
        this.sendUp(m);
        return;
      }
    }
  }

  /** Audits a message the transport refused and answered itself (a duplicate id on an HTTP session). */
  auditRefusal(m: Msg, message: string): Promise<void> | undefined {
    this.refuse(m, undefined, -32600, message, typeof m.method === 'string' ? m.method : undefined);
    return this.auditWrite;
  }

  /**
   * Audits a message the downstream transport refused and answered itself, so this proxy never saw it
   * (the stdio reader: a batch, a line that is not JSON, not JSON-RPC 2.0 or over the size limit; the
   * HTTP gateway: a POST it or the SDK's session transport refused). The transport's answer stands; this
   * writes the `deny` / `protocol` record docs/policy.md promises for every refused message. The
   * returned promise (a networked store's write) settles once the record is written or its failure
   * logged, so whoever answers the refusal over HTTP can wait for it.
   */
  auditTransportRefusal(r: TransportRefusal): Promise<void> | undefined {
    const m = r.message;
    this.auditProtocol(m, isObj(m) && typeof m.method === 'string' ? m.method : r.method, r.reason);
    return this.auditWrite;
  }

  /**
   * A message the gateway will not forward: answered with a JSON-RPC error when it has a usable id (or
   * null when the id is the problem), dropped when it is a notification. Audited unless it is a stray
   * response, since a refused message may be an attempt to get a call past the policy.
   */
  private refuse(m: Msg, reply: Id | null | undefined, code: number, message: string, method: string | undefined, data?: Record<string, unknown>): void {
    const strayResponse = reply === undefined && !(isObj(m) && 'method' in m);
    if (strayResponse) return this.o.log?.(message);
    this.auditProtocol(m, method, message);
    if (reply !== undefined) this.sendDown({ jsonrpc: '2.0', id: reply, error: data ? { code, message, data } : { code, message } }, reply ?? undefined);
  }

  /** The `deny` / `protocol` record of a refused message (src/gateway/refusal.ts names its subject). */
  private auditProtocol(m: unknown, method: string | undefined, reason: string): void {
    const t0 = performance.now();
    const s = refusalSubject(m, method, reason);
    this.audit({
      tool: s.tool, args: s.args, argsHash: safeHash(this.o.state.hashKey, s.args), decision: 'deny', rule: 'protocol',
      reason: s.reason, t0, upstream: 'not_forwarded', policyHash: this.o.holder.current.hash, auditArgs: 'hash',
    });
  }

  /**
   * A 2026-07-28 call: its session key (modernSession) and our requestState (if it carries one) are
   * resolved first, asynchronously; its id stays taken meanwhile, and a cancellation drops it.
   */
  private prepareModern(m: Msg, id: Id): void {
    const t0 = performance.now();
    const meta = metaOf(m);
    const p = isObj(m.params) ? m.params : {};
    const caps = isObj(meta?.[CLIENT_CAPABILITIES_KEY]) ? (meta[CLIENT_CAPABILITIES_KEY] as Record<string, unknown>) : {};
    const name = typeof p.name === 'string' ? p.name : '<invalid>';
    const args = isObj(p.arguments) ? p.arguments : {};
    const decide = (r: ModernSession | Error, gw: GatewayState | undefined, stateRefused: boolean) => {
      const bad = r instanceof Error
        ? { rule: 'session', reason: `session identity error: ${r.message}` }
        : !r.ok
          ? { rule: 'session', reason: `session identity refused: ${r.reason}` }
          : stateRefused
            ? { rule: 'request_state', reason: 'requestState refused: forged, altered, expired or not issued by this gateway' }
            : undefined;
      const ctx: CallCtx = { era: 'modern', caps, session: !(r instanceof Error) && r.ok ? r.key : this.o.identity, gw };
      if (bad?.rule === 'request_state') return this.refuseState(m, t0, name, args, bad.reason, this.o.holder.current.hash, undefined, ctx);
      if (bad) return this.deny(m, t0, name, args, bad.rule, 'deny', bad.reason, this.o.holder.current.hash, undefined, undefined, ctx);
      this.handleCall(m, ctx, t0);
    };
    let first: ModernSession | Promise<ModernSession>;
    try {
      first = this.o.modernSession ? this.o.modernSession(meta) : { ok: true, key: this.o.identity };
    } catch (e) {
      return decide(e as Error, undefined, false);
    }
    // The common case (no session handle, no requestState) needs no I/O: decided now, like a 2025-11-25 call.
    if (!(first instanceof Promise) && p.requestState === undefined) return decide(first, undefined, false);
    // Otherwise the session key and our requestState are resolved asynchronously; the id stays taken
    // meanwhile, and a cancellation ends the call there (audited, never forwarded).
    const slot = { cancelled: false, tool: name, args, t0 };
    this.preparing.set(id, slot);
    void (async () => {
      let r: ModernSession | Error;
      try {
        r = await first;
      } catch (e) {
        r = e as Error;
      }
      let gw: GatewayState | undefined;
      let stateRefused = false;
      if (!(r instanceof Error) && r.ok && p.requestState !== undefined) {
        gw = await openState(p.requestState);
        stateRefused = !gw;
      }
      this.preparing.delete(id);
      if (this.closed) return;
      if (slot.cancelled) {
        this.audit({
          tool: name, args, argsHash: safeHash(this.o.state.hashKey, args), decision: 'deny', rule: 'cancelled',
          reason: 'cancelled by the client before the policy decided', t0, upstream: 'not_forwarded',
          policyHash: this.o.holder.current.hash, auditArgs: 'hash', session: !(r instanceof Error) && r.ok ? r.key : undefined,
        });
        return;
      }
      decide(r, gw, stateRefused);
    })();
  }

  private handleCall(m: Msg, ctx: CallCtx, t0 = performance.now()): void {
    const id = m.id as Id;
    const loaded = this.o.holder.current;
    const p = m.params;
    const name = isObj(p) ? p.name : undefined;
    const rawArgs = isObj(p) ? p.arguments : undefined;
    if (typeof name !== 'string' || name.length === 0 || (rawArgs !== undefined && !isObj(rawArgs))) {
      this.deny(m, t0, typeof name === 'string' ? name : '<invalid>', {}, 'invalid_params', 'deny', 'tools/call params are invalid (need a string "name" and an object "arguments")', loaded.hash, undefined, undefined, ctx);
      return;
    }
    // Refused before anything reads them, and audited without them: what the audit could not write
    // would leave no record of the call (canonical.ts).
    if (name.length > MAX_TOOL_NAME_LENGTH) {
      this.deny(m, t0, auditedToolName(name), {}, 'invalid_params', 'deny', `tools/call params are invalid: a tool name is at most ${MAX_TOOL_NAME_LENGTH} characters, this one has ${name.length}`, loaded.hash, undefined, undefined, ctx);
      return;
    }
    if (rawArgs !== undefined && nestedDeeperThan(rawArgs, MAX_ARGS_DEPTH)) {
      this.deny(m, t0, name, {}, 'invalid_params', 'deny', `tools/call params are invalid: arguments nest deeper than ${MAX_ARGS_DEPTH} levels`, loaded.hash, undefined, undefined, ctx);
      return;
    }
    const args = (rawArgs ?? {}) as Record<string, unknown>;
    let decision: Decision;
    let argsHash: string;
    try {
      decision = loaded.engine.decide(name, this.o.policyArgs ? this.o.policyArgs(name, args) : args, this.o.argReadings?.(name));
      argsHash = hashArgs(this.o.state.hashKey, args);
    } catch (e) {
      this.deny(m, t0, name, args, 'state_error', 'deny', `policy state error: ${(e as Error).message}`, loaded.hash, undefined, undefined, ctx);
      return;
    }
    const gw = ctx.gw;
    if (gw) {
      // A retry: our state must have been minted for exactly this call, under this policy.
      if (!boundTo(gw, this.binding(name, argsHash))) {
        this.refuseState(m, t0, name, args, 'requestState refused: it was issued for another call (a different tool, arguments, identity, upstream or tenant)', loaded.hash, argsHash, ctx);
        return;
      }
      if (gw.policy !== loaded.hash) {
        this.deny(m, t0, name, args, 'request_state', 'deny', 'requestState refused: the policy changed since it was issued; call again without it', loaded.hash, argsHash, undefined, ctx);
        return;
      }
    }
    if (decision.action === 'deny') {
      this.deny(m, t0, name, args, decision.rule, 'deny', decision.reason ?? 'denied by policy', loaded.hash, argsHash, decision, ctx);
      return;
    }
    // Reserve quota before forwarding (or before asking a human): all limits or none.
    if (decision.limits.length) {
      const reqs: LimitRequest[] = [];
      for (const l of decision.limits) {
        // decide() has denied a call whose cost cannot be counted; should it not have, it is denied here
        const cost = limitCost(l, args);
        if (typeof cost === 'string') {
          this.deny(m, t0, name, args, l.rule, 'deny', cost, loaded.hash, argsHash, decision, ctx);
          return;
        }
        const scopeKey = limitScopeKey(l.scope, { session: ctx.session, identity: this.o.identity, upstreamName: this.o.upstreamName });
        reqs.push({ key: `${l.rule}\u0000${scopeKey}`, max: l.max, windowMs: l.windowMs, cost });
      }
      const call = this.newCall(m, ctx, name, args, argsHash, decision, loaded.hash, t0);
      let r: ReserveResult | Promise<ReserveResult>;
      try {
        r = this.o.holder.limiter.reserve(reqs);
      } catch (e) {
        this.deny(m, t0, name, args, 'state_error', 'deny', `policy state error: ${(e as Error).message}`, loaded.hash, argsHash, decision, ctx);
        return;
      }
      if (!(r instanceof Promise)) return this.reserved(call, reqs, r);
      // A shared backend answers later. The call is registered now, so a cancellation or a duplicate id
      // that arrives meanwhile is handled like for any call in flight.
      call.reserving = true;
      this.calls.set(id, call);
      r.then(
        (res) => this.reserved(call, reqs, res),
        (e: Error) => {
          call.reserving = false;
          if (call.done) return;
          this.calls.delete(id);
          this.deny(m, t0, name, args, 'state_error', 'deny', `policy state error: ${e.message}`, loaded.hash, argsHash, decision, ctx);
        },
      );
      return;
    }
    this.admit(this.newCall(m, ctx, name, args, argsHash, decision, loaded.hash, t0));
  }

  private newCall(m: Msg, ctx: CallCtx, tool: string, args: Record<string, unknown>, argsHash: string, decision: Decision, policyHash: string, t0: number): Call {
    return { id: m.id as Id, msg: m, ctx, tool, args, argsHash, decision, policyHash, t0, forwarded: false, done: false, auditDecision: 'allow' };
  }

  /** The counters' answer for a call: charge it and go on, or deny it as rate limited. */
  private reserved(call: Call, reqs: LimitRequest[], r: ReserveResult): void {
    call.reserving = false;
    if (call.done) {
      // Cancelled or the session ended while the counters were answering: it never ran.
      if (r.ok) this.settleQuota(r.reservation, true);
      return;
    }
    if (!r.ok) {
      this.calls.delete(call.id);
      const d = call.decision;
      const lim = d.limits[reqs.findIndex((q) => q.key === r.key)]!;
      const retry = Number.isFinite(r.retryAfterMs) ? `retry after ${Math.ceil(r.retryAfterMs / 1000)}s` : 'this call costs more than the limit allows and can never succeed';
      this.deny(
        call.msg, call.t0, call.tool, call.args, lim.rule, 'rate_limited',
        `rate limit exceeded for "${call.tool}": max ${lim.max} per ${lim.windowMs / 1000}s (scope ${lim.scope}); ${retry}`,
        call.policyHash, call.argsHash, d, call.ctx,
      );
      return;
    }
    call.reservation = r.reservation;
    this.admit(call);
  }

  private admit(call: Call): void {
    this.calls.set(call.id, call);
    // A retry of an approved call's round carries the approval filed for it (roundApproval), which
    // awaitApproval spends like any other: once.
    if (call.decision.action === 'require_approval') void this.awaitApproval(call);
    else this.forward(call);
  }

  /** Ends a reservation: refund when the upstream provably did not run the call, commit otherwise. */
  private settleQuota(res: Reservation, back: boolean): void {
    const counters = this.o.holder.limiter;
    try {
      const p = back ? counters.refund(res) : counters.commit(res);
      // A refund that cannot reach the backend leaves the charge in place: over-counting, never over-admitting.
      if (p instanceof Promise) p.catch((e: Error) => this.o.log?.(`quota ${back ? 'refund' : 'commit'} failed: ${e.message}`));
    } catch (e) {
      this.o.log?.(`quota ${back ? 'refund' : 'commit'} failed: ${(e as Error).message}`);
    }
  }

  private forward(call: Call): void {
    if (this.o.inflight) {
      if (!this.o.inflight.take()) {
        return this.denyCall(call, 'deny', `${this.o.inflight.max} calls of ${this.o.identity} are already in flight upstream (at most ${this.o.inflight.max}): it must wait for some to end`);
      }
      call.slot = true;
    }
    call.forwarded = true;
    if (call.ctx.era === 'modern' && isObj(call.msg.params)) {
      // Our requestState and our answer are ours alone: the upstream gets back only its own state and
      // its own answers (the wrapped `up`), or neither.
      const { requestState: _ours, inputResponses, ...rest } = call.msg.params;
      const theirs = isObj(inputResponses) ? Object.fromEntries(Object.entries(inputResponses).filter(([k]) => k !== APPROVAL_INPUT_KEY)) : undefined;
      const params: Record<string, unknown> = { ...rest };
      if (call.ctx.gw?.up !== undefined) params.requestState = call.ctx.gw.up;
      if (theirs && Object.keys(theirs).length) params.inputResponses = theirs;
      call.msg = { ...call.msg, params };
    }
    const timeoutMs = this.o.holder.current.engine.callTimeoutMs;
    call.timer = setTimeout(() => {
      if (call.done) return;
      this.sendUp({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: call.id, reason: 'policy gateway timeout' } });
      this.droppedIds.add(call.id);
      this.abandonUp(call.id);
      this.failCall(call, 'timeout', -32001, `upstream did not answer tools/call within ${timeoutMs / 1000}s`);
    }, timeoutMs);
    call.timer.unref?.();
    this.sendUp(call.msg, call.id);
  }

  /**
   * A held call its client cancelled: its pending approval is withdrawn (CANCEL_WITHDRAWAL), unless
   * another call of this connection still waits on it. The client said it no longer wants the call; approving it anyway
   * would hand the agent a pass to spend on a later identical call whenever it chose.
   */
  private withdrawIfOrphaned(approvalId: string | undefined, why: string): void {
    if (approvalId === undefined) return;
    for (const other of this.calls.values()) if (!other.done && other.approvalId === approvalId) return;
    this.o.state.approvals.withdraw(approvalId, why).catch((e: Error) => this.o.log?.(`could not withdraw approval ${approvalId}: ${e.message}`));
  }

  private async awaitApproval(call: Call): Promise<void> {
    const abort = (call.abort = new AbortController());
    const st = this.o.state.approvals;
    if (call.ctx.gw?.approvalId) return this.answeredApproval(call, call.ctx.gw.approvalId);
    const askClient = call.decision.elicitation && isObj(call.ctx.caps.elicitation);
    let req;
    try {
      // A 2026-07-28 question ends its call at once and gives its rate-limit unit back, and a held
      // 2025-11-25 call stays held after its client goes away (each one waited on, polled, for its
      // whole approval timeout: 12,000 held by one client slowed every session), so nothing else
      // bounds how many approvals one identity can leave pending: past MAX_PENDING_QUESTIONS, it asks
      // no more until a person decides some or they expire.
      const own = (await st.list({ status: 'pending', tenant: this.o.tenant || undefined })).filter((r) => r.identity === this.o.identity).length;
      if (call.done) return;
      if (own >= MAX_PENDING_QUESTIONS) {
        return this.denyCall(call, 'deny', `${own} approvals of ${this.o.identity} are already pending (at most ${MAX_PENDING_QUESTIONS}): a person must decide them, or they must expire, before it can ask for more`);
      }
      req = await st.request(this.approvalBinding(call, call.ctx.session));
    } catch (e) {
      return this.denyCall(call, 'deny', `policy state error: ${(e as Error).message}`);
    }
    if (call.done) {
      // cancelled while the approval was being filed
      this.withdrawIfOrphaned(req.row.id, CANCEL_WITHDRAWAL);
      return;
    }
    call.approvalId = req.row.id;
    let outcome: ApprovalOutcome;
    if (req.state === 'approved') outcome = { status: 'approved', decidedBy: req.row.decided_by ?? undefined };
    else {
      // Only where the policy opts in: the client that asked for the call is the one that answers. A
      // client that cannot be asked (no elicitation capability) is not: the call waits for a human
      // deciding elsewhere (CLI, HTTP API), as it always has.
      if (askClient && call.ctx.era === 'modern') return this.askOverMrtr(call, req.row.id, req.row.expires_at);
      const waits: Promise<ApprovalOutcome>[] = [st.wait(req.row.id, abort.signal)];
      if (askClient) waits.push(this.elicit(call, req.row.id, req.row.expires_at));
      outcome = await Promise.race(waits);
    }
    return this.settleApproval(call, req.row.id, outcome);
  }

  /**
   * 2026-07-28: the call ends now with an `input_required` result asking for the approval; the
   * client's retry (a new request) carries the answer and our signed state. The approval row stays
   * pending meanwhile, so a human can still decide it from the CLI or the HTTP API. Nothing ran: the
   * quota comes back. The round is audited (`approval_requested`), and so is the retry with its
   * outcome: an agent that tries a tool and never answers still leaves a record of the attempt.
   */
  private async askOverMrtr(call: Call, approvalId: string, expiresAt: number): Promise<void> {
    let state: string;
    try {
      state = await mintState({
        ...this.binding(call.tool, call.argsHash), policy: call.policyHash, approvalId, exp: expiresAt,
      });
    } catch (e) {
      return this.denyCall(call, 'deny', `approval state error: ${(e as Error).message}`);
    }
    if (call.done) return;
    this.finish(call, 'approval_requested', 'not_forwarded', `asked the client to approve ${approvalId}; the retry that answers is audited with its outcome`);
    this.sendDown({ jsonrpc: '2.0', id: call.id, result: approvalQuestion(this.approvalMessage(call, approvalId, expiresAt), state) });
  }

  /** A 2026-07-28 retry carrying the answer to our question (its state verified and bound already). */
  private async answeredApproval(call: Call, approvalId: string): Promise<void> {
    const st = this.o.state.approvals;
    call.approvalId = approvalId;
    const a = approvalAnswer(isObj(call.msg.params) ? call.msg.params.inputResponses : undefined);
    let outcome: ApprovalOutcome;
    try {
      // The state names the approval; the row itself must be this call's before it is answered or
      // spent (defence in depth: the state is bound to the call, the row is checked as well).
      const filed = await st.get(approvalId);
      if (call.done) return;
      if (!filed) return this.denyCall(call, 'approval_denied', `approval ${approvalId} does not exist`);
      if (!filedFor(filed, { tool: call.tool, argsHash: call.argsHash, identity: this.o.identity, upstreamName: this.o.upstreamName, tenant: this.o.tenant })) return this.denyCall(call, 'approval_denied', `approval ${approvalId} was filed for another call`);
      let row = filed;
      if (a.answer !== 'none') {
        // Already decided elsewhere (or used): the row read after the attempt says what happened.
        await st.decide(approvalId, a.answer === 'approve' ? 'approved' : 'denied', 'elicitation', a.reason).catch(() => undefined);
        const decided = await st.get(approvalId);
        if (call.done) return;
        if (!decided) return this.denyCall(call, 'approval_denied', `approval ${approvalId} does not exist`);
        row = decided;
      }
      if (row.status === 'consumed') return this.denyCall(call, 'approval_denied', `approval ${approvalId} was already used by another call`);
      if (row.status === 'pending') outcome = await st.wait(approvalId, call.abort!.signal);
      else if (row.status === 'approved') outcome = { status: 'approved', decidedBy: row.decided_by ?? undefined };
      else if (row.status === 'denied') outcome = { status: 'denied', decidedBy: row.decided_by ?? undefined, reason: row.reason ?? undefined };
      else outcome = { status: 'expired' };
    } catch (e) {
      return this.denyCall(call, 'deny', `policy state error: ${(e as Error).message}`);
    }
    return this.settleApproval(call, approvalId, outcome);
  }

  private async settleApproval(call: Call, approvalId: string, outcome: ApprovalOutcome): Promise<void> {
    const st = this.o.state.approvals;
    const abort = call.abort!;
    const req = { row: { id: approvalId } };
    if (call.done) return; // cancelled while waiting
    if (outcome.status === 'approved') {
      let used = false;
      try {
        used = await st.consume(req.row.id);
      } catch (e) {
        return this.denyCall(call, 'deny', `policy state error: ${(e as Error).message}`);
      }
      if (call.done) return;
      if (!used) return this.denyCall(call, 'approval_denied', `approval ${req.row.id} was already used by another call`);
      abort.abort(); // stop the elicitation / poll
      // The policy was reloaded while the call waited: it was held under rules no longer in force
      // (the tool may be denied now, or approval by the asking client no longer allowed). The
      // approval is spent above, so a retry is decided afresh under the policy now in force.
      if (call.policyHash !== this.o.holder.current.hash) {
        return this.denyCall(call, 'approval_denied', `the policy was reloaded while approval ${req.row.id} was pending: call again to be decided under the policy now in force`);
      }
      call.auditDecision = 'approved';
      this.forward(call);
      return;
    }
    abort.abort();
    if (outcome.status === 'denied') {
      this.denyCall(call, 'approval_denied', `approval ${req.row.id} was denied${outcome.decidedBy ? ` by ${outcome.decidedBy}` : ''}${outcome.reason ? `: ${outcome.reason}` : ''}`);
    } else if (outcome.status === 'expired') {
      this.denyCall(call, 'approval_expired', `approval ${req.row.id} expired without a decision (timeout ${call.decision.approvalTimeoutMs / 1000}s)`);
    }
  }

  /** Asks the human through the agent's client (MCP elicitation). Resolves only with a decision. */
  private approvalMessage(call: Call, approvalId: string, expiresAt: number): string {
    const secs = Math.max(1, Math.round((expiresAt - Date.now()) / 1000));
    return (
      `Policy requires approval for tool "${call.tool}" with arguments ${argsPreview(call.args, 2000)}.\n` +
      `Approval ${approvalId} (rule ${call.decision.rule}); it is denied automatically in ${secs}s.`
    );
  }

  private elicit(call: Call, approvalId: string, expiresAt: number): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      const rid = `policy-approval-${randomUUID()}`;
      const onAbort = () => {
        if (this.ownRequests.delete(rid)) {
          this.sendDown({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: rid, reason: 'decided elsewhere' } });
        }
      };
      const signal = call.abort!.signal;
      signal.addEventListener('abort', onAbort, { once: true });
      this.ownRequests.set(rid, (resp) => {
        signal.removeEventListener('abort', onAbort);
        const result = isObj(resp.result) ? resp.result : undefined;
        const content = result && isObj(result.content) ? result.content : {};
        if (result?.action === 'accept' && content.approve === true) {
          this.recordDecision(approvalId, 'approved', content.reason, resolve);
        } else if (result?.action === 'decline' || (result?.action === 'accept' && content.approve !== true)) {
          this.recordDecision(approvalId, 'denied', content.reason ?? 'declined in the client', resolve);
        }
        // "cancel" or an error (client could not ask): leave it to the CLI / HTTP API / timeout.
      });
      this.sendDown(
        {
          jsonrpc: '2.0',
          id: rid,
          method: 'elicitation/create',
          params: approvalElicitation(this.approvalMessage(call, approvalId, expiresAt)),
        },
        call.id,
      );
    });
  }

  private recordDecision(id: string, d: 'approved' | 'denied', reason: unknown, resolve: (o: ApprovalOutcome) => void): void {
    const why = typeof reason === 'string' ? reason : undefined;
    this.o.state.approvals.decide(id, d, 'elicitation', why).then(
      () => resolve({ status: d, decidedBy: 'elicitation', reason: why }),
      // Already decided through another channel: that decision reaches the waiter via the store.
      () => undefined,
    );
  }

  // ---------------------------------------------------------------- server -> agent

  private fromUp(m: Msg): void {
    const id = m.id;
    const isResponse = m.method === undefined && id !== undefined && id !== null;
    if (isResponse) {
      const call = this.calls.get(id);
      if (call) {
        if (!call.forwarded) {
          // Held by the policy (an approval, the counters): the upstream never had this call, so this is
          // no answer to it. Passed on, it would reach the agent as the call's result and be audited as
          // allowed and run, while the call is still waiting for its decision.
          this.o.log?.(`dropped a response from the upstream to ${JSON.stringify(id)}: that call was not forwarded to it`);
          return;
        }
        const isErr = m.error !== undefined;
        const code = isObj(m.error) && typeof m.error.code === 'number' ? m.error.code : undefined;
        const res = isObj(m.result) ? m.result : undefined;
        // Audit first: with `audit.sync` the record is written before the agent can see the answer. Only
        // the code is recorded: an upstream's error text may quote argument values the audit keeps hashed.
        this.finish(
          call, call.auditDecision, isErr ? 'rpc_error' : res?.isError === true ? 'tool_error' : 'ok',
          isErr ? `upstream error ${code ?? '(no code)'}` : undefined,
          code,
        );
        if (call.ctx.era === 'modern' && res?.resultType === 'input_required') return this.relayUpstreamQuestion(call, m, res);
        this.sendDown(m);
        return;
      }
      if (this.droppedIds.delete(id)) return; // late answer to a call we already failed or that was cancelled
      if (this.cancelledOpen.delete(id)) return this.sendDown(m); // its record was written at the cancel
      if (!this.openRequests.delete(id)) {
        // No request of the agent's is open under this id: an answer it never asked for, or a second one.
        this.o.log?.(`dropped a response from the upstream to ${JSON.stringify(id)}: no request under that id is open`);
        return;
      }
      this.listens.delete(id); // the upstream ended a listen stream
      if (this.policyForwards.has(id)) {
        const code = isObj(m.error) && typeof m.error.code === 'number' ? m.error.code : undefined;
        if (m.error !== undefined) this.endForward(id, 'rpc_error', `upstream error ${code ?? '(no code)'}`);
        else this.endForward(id, 'ok', undefined);
      }
      if (this.listIds.delete(id) && isObj(m.result) && Array.isArray(m.result.tools)) {
        const engine = this.o.holder.current.engine;
        const tools = m.result.tools as { name?: unknown }[];
        if (tools.some((t) => typeof t.name === 'string' && engine.isHidden(t.name))) {
          m = { ...m, result: { ...m.result, tools: tools.filter((t) => !(typeof t.name === 'string' && engine.isHidden(t.name))) } };
        }
      }
      this.sendDown(m);
      return;
    }
    if (m.method !== undefined && id !== undefined && id !== null) this.upstreamRequests.add(id);
    // Requests and notifications from the server. Relate them to the downstream request they belong to
    // so an HTTP client sees them on that request's stream: progress names its request via the token.
    let related: Id | undefined;
    if (this.o.relateDownstream) {
      const params = isObj(m.params) ? m.params : undefined;
      const token = params && m.method === 'notifications/progress' ? (params.progressToken as Id) : undefined;
      const via = this.o.upstreamRelated?.();
      if (token !== undefined && (this.calls.has(token) || this.openRequests.has(token))) related = token;
      else if (via !== undefined && (this.calls.has(via) || this.openRequests.has(via))) related = via;
      else if (this.calls.size === 1) related = this.calls.keys().next().value;
    }
    this.sendDown(m, related);
  }

  /**
   * The upstream asks the 2026-07-28 client something itself: its requestState travels inside ours,
   * bound to this call, so our verdict survives the upstream's rounds (inputResponses are per round).
   * A call a human approved carries into the retry an approval of its own, filed approved for that
   * one retry and spent by it: the human approved one run of the call, so the state cannot be
   * replayed to run the tool again with other answers, in this process or any other sharing the state.
   */
  private relayUpstreamQuestion(call: Call, m: Msg, res: Record<string, unknown>): void {
    const fail = (e: Error) => this.sendDown({ jsonrpc: '2.0', id: call.id, error: { code: -32603, message: `approval state error: ${e.message}` } });
    (call.auditDecision === 'approved' ? this.roundApproval(call) : Promise.resolve(undefined))
      .then((approvalId) =>
        mintState({
          ...this.binding(call.tool, call.argsHash), policy: call.policyHash, approvalId,
          up: typeof res.requestState === 'string' ? res.requestState : undefined,
          exp: Date.now() + call.decision.approvalTimeoutMs,
        }),
      )
      .then((state) => this.sendDown({ ...m, result: { ...res, requestState: state } }), fail);
  }

  /**
   * Files the approval the retry of an approved call spends: a new row (its session is its own, so no
   * other call's pending or approved row is found and taken instead), approved at once, used once.
   */
  private async roundApproval(call: Call): Promise<string> {
    const st = this.o.state.approvals;
    const filed = await st.request(this.approvalBinding(call, `round of ${call.approvalId ?? 'an approval'} ${randomUUID()}`));
    await st.decide(filed.row.id, 'approved', 'gateway', `the next round of approved call ${call.approvalId ?? ''}: the upstream asked the client a question`.trim());
    return filed.row.id;
  }

  // ---------------------------------------------------------------- plumbing

  /** What an approval of a call is filed for: the call, its identity, upstream and tenant, under `session`. */
  private approvalBinding(call: Call, session: string): ApprovalBinding {
    return {
      session, identity: this.o.identity, tool: call.tool, argsHash: call.argsHash, argsPreview: argsPreview(call.args), rule: call.decision.rule,
      timeoutMs: call.decision.approvalTimeoutMs,
      ...(this.o.upstreamName !== undefined ? { upstreamName: this.o.upstreamName } : {}),
      ...(this.o.tenant !== undefined ? { tenant: this.o.tenant } : {}),
    };
  }

  /** What this proxy binds a requestState to for a call (mrtr.ts boundTo checks it on the retry). */
  private binding(tool: string, argsHash: string): StateBinding {
    return { tool, argsHash, identity: this.o.identity, upstream: this.o.upstreamName, tenant: this.o.tenant };
  }

  private deny(
    m: Msg, t0: number, tool: string, args: Record<string, unknown>, rule: string, decision: AuditDecision,
    reason: string, policyHash: string, argsHash?: string, d?: Decision, ctx?: CallCtx,
  ): void {
    this.audit({
      tool, args, argsHash: argsHash ?? safeHash(this.o.state.hashKey, args), decision, rule: d && rule === d.rule && d.line ? `${rule} (line ${d.line})` : rule,
      reason, t0, upstream: 'not_forwarded', policyHash, auditArgs: d?.auditArgs ?? 'hash', session: ctx?.session,
    });
    this.sendDown({ jsonrpc: '2.0', id: m.id as Id, result: eraResult(deniedResult(reason), ctx?.era) });
  }

  /**
   * A retry whose requestState the gateway will not honour (not one it minted intact and unexpired, or
   * minted for another call) is invalid params, -32602, as the SDK's own servers answer a state that fails
   * verification: a protocol error the client can tell from a policy denial. Audited like a denial.
   */
  private refuseState(m: Msg, t0: number, tool: string, args: Record<string, unknown>, reason: string, policyHash: string, argsHash: string | undefined, ctx: CallCtx): void {
    this.audit({
      tool, args, argsHash: argsHash ?? safeHash(this.o.state.hashKey, args), decision: 'deny', rule: 'request_state',
      reason, t0, upstream: 'not_forwarded', policyHash, auditArgs: 'hash', session: ctx.session,
    });
    this.sendDown({ jsonrpc: '2.0', id: m.id as Id, error: { code: -32602, message: `Invalid params: ${reason}`, data: { reason: 'invalid_request_state' } } });
  }

  private denyCall(call: Call, decision: AuditDecision, reason: string): void {
    if (call.done) return;
    this.finish(call, decision, 'not_forwarded', reason);
    this.sendDown({ jsonrpc: '2.0', id: call.id, result: eraResult(deniedResult(reason), call.ctx.era) });
  }

  private failCall(call: Call, outcome: UpstreamOutcome, code: number, message: string): void {
    if (call.done) return;
    const returned = this.finish(call, call.auditDecision, outcome, message);
    const note = !call.reservation ? '' : returned ? ' (quota returned)' : ' (the call counts against its rate limit: the upstream may have run it)';
    this.sendDown({ jsonrpc: '2.0', id: call.id, error: { code, message: `${message}${note}` } });
  }

  /**
   * Ends a call exactly once: timers, quota (given back only where the upstream provably did not run
   * the call, see quota.ts), audit. Returns whether the quota came back.
   */
  private finish(call: Call, decision: AuditDecision, upstream: UpstreamOutcome, reason: string | undefined, rpcErrorCode?: number, audited = true): boolean {
    if (call.done) return false;
    call.done = true;
    if (call.slot) {
      call.slot = false;
      this.o.inflight?.give();
    }
    if (call.timer) clearTimeout(call.timer);
    call.abort?.abort();
    this.calls.delete(call.id);
    const back = quotaComesBack({ forwarded: call.forwarded, upstream, rpcErrorCode });
    if (call.reservation) this.settleQuota(call.reservation, back);
    if (!audited) return back;
    this.audit({
      tool: call.tool, args: call.args, argsHash: call.argsHash, decision,
      rule: call.decision.line ? `${call.decision.rule} (line ${call.decision.line})` : call.decision.rule,
      reason, t0: call.t0, upstream, policyHash: call.policyHash, auditArgs: call.decision.auditArgs, approvalId: call.approvalId, session: call.ctx.session,
    });
    return back;
  }

  private audit(a: {
    tool: string; args: Record<string, unknown>; argsHash: string; decision: AuditDecision; rule: string; reason?: string;
    t0: number; upstream: UpstreamOutcome; policyHash: string; auditArgs: 'hash' | 'plain'; approvalId?: string;
    /** the call's session key; absent: the connection's */
    session?: string;
  }): void {
    try {
      // Same key order as before; undefined fields are left out of the JSONL line and stored as NULL.
      const r: AuditRecord = {
        ts: new Date().toISOString(),
        session: a.session ?? (this.era === 'modern' ? this.o.identity : this.o.session()),
        identity: this.o.identity,
        tool: a.tool,
        args_hash: a.argsHash,
        args: a.auditArgs === 'plain' ? a.args : undefined,
        decision: a.decision,
        rule: a.rule,
        reason: a.reason || undefined,
        latency_ms: Math.round((performance.now() - a.t0) * 1000) / 1000,
        upstream: a.upstream,
        policy_hash: a.policyHash.slice(0, 16),
        approval_id: a.approvalId || undefined,
        upstreamName: this.o.upstreamName,
      };
      const written = this.o.state.audit.append(r, this.o.holder.current.engine.file.audit?.sync ?? true);
      if (written) {
        // A networked store writes asynchronously: answers wait for it (sendDown), in their order.
        const w = Promise.resolve(written).catch((e: Error) => this.o.log?.(`audit failed: ${e.message}`));
        this.auditWrite = w;
        void w.then(() => {
          if (this.auditWrite === w) this.auditWrite = undefined;
        });
      }
    } catch (e) {
      this.o.log?.(`audit failed: ${(e as Error).message}`);
    }
  }

  /** Frees what the upstream holds for a request given up on (ProxyOptions.abandonUpstream); over stdio nothing. */
  private abandonUp(id: Id): void {
    this.o.abandonUpstream?.(id);
  }

  private sendUp(m: Msg, requestId?: Id): void {
    if (this.closed) {
      if (requestId !== undefined) this.answerUnreachable(requestId, 'gateway is closing');
      return;
    }
    // a transport that throws rather than rejects fails this request, never the gateway
    let sent: Promise<void>;
    try {
      sent = this.o.upstream.send(m as unknown as JSONRPCMessage);
    } catch (e) {
      sent = Promise.reject(e as Error);
    }
    sent.catch((e: Error) => {
      if (requestId === undefined) return this.o.log?.(`upstream send failed: ${e.message}`);
      this.answerUnreachable(requestId, `upstream unreachable: ${e.message}`);
    });
  }

  /** Writes the one audit record of a request forwarded under the policy's `forward:` list; later calls do nothing. */
  private endForward(id: Id, upstream: UpstreamOutcome, reason: string | undefined): void {
    const fwd = this.policyForwards.get(id);
    if (!fwd) return;
    this.policyForwards.delete(id);
    this.audit({
      tool: `method:${fwd.method}`, args: fwd.args, argsHash: safeHash(this.o.state.hashKey, fwd.args), decision: 'allow', rule: 'forward',
      reason, t0: fwd.t0, upstream, policyHash: fwd.policyHash, auditArgs: 'hash',
    });
  }

  private answerUnreachable(requestId: Id, message: string): void {
    const call = this.calls.get(requestId);
    if (call) return this.failCall(call, 'unreachable', -32603, message);
    this.endForward(requestId, 'unreachable', message);
    this.openRequests.delete(requestId);
    this.listIds.delete(requestId);
    this.sendDown({ jsonrpc: '2.0', id: requestId, error: { code: -32603, message } });
  }

  private sendDown(m: Msg, relatedRequestId?: Id): void {
    if (this.auditWrite) {
      void this.auditWrite.then(() => this.sendDownNow(m, relatedRequestId));
      return;
    }
    this.sendDownNow(m, relatedRequestId);
  }

  private sendDownNow(m: Msg, relatedRequestId?: Id): void {
    const opts = this.o.relateDownstream && relatedRequestId !== undefined ? { relatedRequestId } : undefined;
    try {
      this.o.downstream.send(m as unknown as JSONRPCMessage, opts).catch((e: Error) => this.o.log?.(`downstream send failed: ${e.message}`));
    } catch (e) {
      this.o.log?.(`downstream send failed: ${(e as Error).message}`);
    }
  }

  private async shutdown(side: 'upstream' | 'downstream' | 'local'): Promise<void> {
    if (this.closed) return;
    // Fail what is in flight first, while the downstream can still receive the answers.
    for (const call of [...this.calls.values()]) {
      // A client that goes away leaves its pending approvals as they are: approved meanwhile, the same
      // call asked again after a restart goes through once (docs/policy.md, "Approvals").
      if (side === 'downstream') this.finish(call, call.forwarded ? call.auditDecision : 'approval_cancelled', 'cancelled', 'client disconnected');
      else this.failCall(call, side === 'upstream' ? 'crashed' : 'cancelled', -32603, side === 'upstream' ? 'upstream closed or crashed before answering' : 'gateway shutting down');
    }
    // Forwarded requests end like tools/call does on the same side: the upstream had them, so each is audited.
    const [outcome, why]: [UpstreamOutcome, string] =
      side === 'downstream' ? ['cancelled', 'client disconnected'] : side === 'upstream' ? ['crashed', 'upstream closed or crashed before answering'] : ['cancelled', 'gateway shutting down'];
    for (const id of [...this.policyForwards.keys()]) this.endForward(id, outcome, why);
    // 2026-07-28 calls whose session handle or requestState was still being resolved: never decided,
    // never forwarded, and audited here, since their resolution finds the proxy closed and stops.
    for (const [id, slot] of this.preparing) {
      this.audit({
        tool: slot.tool, args: slot.args, argsHash: safeHash(this.o.state.hashKey, slot.args), decision: 'deny', rule: 'cancelled',
        reason: `${why} before the policy decided`, t0: slot.t0, upstream: 'not_forwarded', policyHash: this.o.holder.current.hash, auditArgs: 'hash',
      });
      if (side !== 'downstream') this.sendDown({ jsonrpc: '2.0', id, error: { code: -32603, message: `${why} before the policy decided` } });
    }
    this.preparing.clear();
    for (const id of this.openRequests.keys()) {
      if (side !== 'downstream') this.sendDown({ jsonrpc: '2.0', id, error: { code: -32603, message: 'upstream closed or crashed before answering' } });
    }
    this.openRequests.clear();
    this.closed = true;
    this.o.holder.off('reload', this.onReload);
    await this.o.state.audit.flush();
    await this.auditWrite;
    const { downstream, upstream } = this.o;
    if (side !== 'upstream') await (this.o.closeUpstream ?? (() => upstream.close()))().catch(() => undefined);
    if (side !== 'downstream') await downstream.close().catch(() => undefined);
    this.o.onClose?.();
  }
}

const REVISION: Record<Era, string> = { legacy: '2025-11-25', modern: MODERN_REVISION };

/** 2026-07-28 results say they are complete (`resultType`); earlier revisions have no such field. */
function eraResult<T extends object>(r: T, era: Era | undefined): T {
  return era === 'modern' ? { ...r, resultType: 'complete' } : r;
}

export function deniedResult(reason: string): { content: { type: 'text'; text: string }[]; isError: true } {
  return { content: [{ type: 'text', text: `${DENIED_PREFIX} ${reason}` }], isError: true };
}

function safeHash(key: Buffer, args: unknown): string {
  try {
    return hashArgs(key, args);
  } catch {
    return 'unhashable';
  }
}

/** True when a message nests deeper than MAX_ARGS_DEPTH outside a tools/call's arguments (which handleCall judges). */
function nestedPastArguments(m: Msg): boolean {
  if (!isObj(m)) return false;
  if (m.method === 'tools/call' && isObj(m.params) && 'arguments' in m.params) {
    const { arguments: _args, ...params } = m.params;
    return nestedDeeperThan({ ...m, params }, MAX_ARGS_DEPTH);
  }
  return nestedDeeperThan(m, MAX_ARGS_DEPTH);
}

/** Approvals one identity may leave pending through 2026-07-28 questions (awaitApproval). */
export const MAX_PENDING_QUESTIONS = 32;
/** An HTTP gateway's in-flight calls per identity (InflightSlots): a quarter of the upstream pool. */
export const MAX_INFLIGHT_CALLS_PER_IDENTITY = 64;
