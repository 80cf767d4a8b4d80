import { basename, resolve } from 'node:path';
import { PolicyHolder, type ReloadEvent } from '../policy/holder.js';
import { policyChangeRecord, summarizePolicyChange } from '../policy/change-summary.js';
import { formatIssue, loadPolicyFile, PolicyLoadError } from '../policy/load.js';
import type { PolicyStateBackend } from '../storage/policy-state.js';
import { createModernSessionResolver, modernSessionSettings, type ModernSessionResolver } from '../policy/session-identity.js';
import { openPolicyState } from '../storage/open-policy-state.js';

export interface RuntimeOptions {
  policyPath: string;
  dbPath: string;
  auditFile?: string | false;
  /** Shared policy state, `redis://host:port[/db]`; without it, the store at dbPath (as before). */
  stateUrl?: string;
  /** Watch the policy file for changes (default true). */
  watch?: boolean;
  /**
   * The tenant of the server the policy guards (`mcp` / `serve`); none for a stand-alone gateway.
   * Its rate-limit counters are the tenant's own: two tenants' servers sharing one Redis with a
   * policy file of the same name do not spend each other's quotas.
   */
  tenant?: string;
  log?: (line: string) => void;
}

export interface PolicyRuntime {
  holder: PolicyHolder;
  state: PolicyStateBackend;
  close(): void;
}

/**
 * Counters of one policy file, named by its base name (or the shortest path tail that tells several
 * files apart, counterNamespaces), not its full path, so replicas that mount the same policy at
 * different paths still share them (with `--state redis://`); a tenant's server names its tenant too.
 */
function countersFor(state: PolicyStateBackend, name: string, tenant?: string) {
  // NUL never occurs in a path: a tenant's namespace is never a gateway's file name
  return state.counters(tenant === undefined ? name : `${tenant}\u0000${name}`);
}

/**
 * The counter names of the policy files one process serves (absolute paths): each file's base name,
 * or, for files whose base names collide, the shortest ending of their paths that tells them apart
 * (`a/policy.yaml`, `b/policy.yaml`). Two files of one process never share a counter: named by the
 * base name alone, two upstreams' or two grants' `policy.yaml` shared every rule path they had in
 * common, so one's calls spent the other's quota and one's shorter window pruned charges the
 * other's longer window still counted (9 calls in 17 s through "3 per hour"). Replicas laid out
 * alike (one config) get the same names.
 */
export function counterNamespaces(paths: readonly string[]): Map<string, string> {
  const parts = new Map(paths.map((p) => [p, p.split(/[\\/]+/).filter((x) => x !== '')]));
  const out = new Map<string, string>();
  for (const [p, segs] of parts) {
    let n = 1;
    for (;;) {
      const tail = segs.slice(-n).join('/');
      const clash = [...parts].some(([q, other]) => q !== p && other.slice(-n).join('/') === tail);
      if (!clash || n >= segs.length) {
        out.set(p, tail);
        break;
      }
      n++;
    }
  }
  return out;
}

/**
 * A new policy version in force is a `policy_change` audit record (who, both hashes, what changed),
 * written like a call's record before anything else reads the audit; a failed write is logged, and
 * the new version stays in force (the file on disk is already the change).
 */
function auditReload(state: PolicyStateBackend, file: string, ev: ReloadEvent, log: (line: string) => void): void {
  const change = summarizePolicyChange(ev.previous.engine.file, ev.current.engine.file);
  log(`reloaded (${ev.current.hash.slice(0, 12)}, by ${ev.by}): ${change.summary}`);
  try {
    const record = policyChangeRecord({ ts: new Date().toISOString(), by: ev.by, file, previousHash: ev.previous.hash, hash: ev.current.hash, change });
    const written = state.audit.append(record, true);
    if (written instanceof Promise) written.catch((e: Error) => log(`change could not be audited: ${e.message}`));
  } catch (e) {
    log(`change could not be audited: ${(e as Error).message}`);
  }
}

/**
 * Loads the policy (throws PolicyLoadError: an invalid policy refuses to start) and opens the policy
 * state. Await `state.ready()` before serving: a shared backend may still be connecting.
 */
export function createPolicyRuntime(o: RuntimeOptions): PolicyRuntime {
  const loaded = loadPolicyFile(resolve(o.policyPath));
  const state = openPolicyState({ dbPath: o.dbPath, auditFile: o.auditFile, stateUrl: o.stateUrl, log: o.log, tenant: o.tenant });
  const holder = new PolicyHolder(o.policyPath, loaded, countersFor(state, basename(o.policyPath), o.tenant));
  const log = o.log ?? ((l: string) => process.stderr.write(`egress-triage gateway: ${l}\n`));
  holder.on('invalid', (e: PolicyLoadError) => {
    log(`policy reload rejected, previous version stays in force:\n${e.issues.map((i) => `  ${formatIssue(e.file, i)}`).join('\n')}`);
  });
  holder.on('reload', (ev: ReloadEvent) => auditReload(state, holder.path, ev, (l) => log(`policy ${l}`)));
  if (o.watch !== false) holder.watch();
  return {
    holder,
    state,
    close() {
      holder.close();
      void state.close();
    },
  };
}

export interface PolicyRuntimeSet {
  /** The runtime of a policy file given to createPolicyRuntimeSet; throws for any other path. */
  runtimeFor(policyPath: string): PolicyRuntime;
  /** The one policy state all runtimes share. */
  state: PolicyStateBackend;
  close(): void;
}

/**
 * One runtime per distinct policy file (the default one and each grant's own), all created up front
 * and sharing one policy state: every session using a file charges the same counters, and an
 * invalid file refuses to start.
 */
export function createPolicyRuntimeSet(o: Omit<RuntimeOptions, 'policyPath'> & { policyPaths: string[] }): PolicyRuntimeSet {
  const loaded = new Map(o.policyPaths.map((p) => [resolve(p), undefined as ReturnType<typeof loadPolicyFile> | undefined]));
  for (const abs of loaded.keys()) loaded.set(abs, loadPolicyFile(abs));
  const state = openPolicyState({ dbPath: o.dbPath, auditFile: o.auditFile, stateUrl: o.stateUrl, log: o.log, tenant: o.tenant });
  const holders = new Map<string, PolicyHolder>();
  const log = o.log ?? ((l: string) => process.stderr.write(`egress-triage policy: ${l}\n`));
  const names = counterNamespaces([...loaded.keys()]);
  for (const [abs, policy] of loaded) {
    const holder = new PolicyHolder(abs, policy, countersFor(state, names.get(abs) ?? basename(abs), o.tenant));
    holders.set(abs, holder);
    holder.setMaxListeners(0); // one reload listener per session
    holder.on('invalid', (e: PolicyLoadError) => {
      log(`policy ${abs}: reload rejected, previous version stays in force:\n${e.issues.map((i) => `  ${formatIssue(e.file, i)}`).join('\n')}`);
    });
    holder.on('reload', (ev: ReloadEvent) => auditReload(state, abs, ev, (l) => log(`policy ${abs} ${l}`)));
    if (o.watch !== false) holder.watch();
  }
  return {
    state,
    runtimeFor(policyPath) {
      const holder = holders.get(resolve(policyPath));
      if (!holder) throw new Error(`no policy runtime for ${policyPath}`);
      return { holder, state, close: () => undefined };
    },
    close() {
      for (const h of holders.values()) h.close();
      void state.close();
    },
  };
}

/**
 * The "session" scope key of 2026-07-28 requests for one authenticated identity: the identity plus the
 * request's session handle, at most the policy's `sessions.max_handles` live ones (docs/policy.md). The
 * settings are read per call, so a policy reload applies to the next call.
 */
export function modernSessionFor(runtime: Pick<PolicyRuntime, 'holder' | 'state'>, identity: string, tenant?: string): ModernSessionResolver {
  return createModernSessionResolver({
    identity,
    // a tenant's identities hold their own handles (see RuntimeOptions.tenant)
    handleOwner: tenant === undefined ? undefined : JSON.stringify([tenant, identity]),
    state: runtime.state,
    settings: () => modernSessionSettings(runtime.holder.current.engine.file),
  });
}
