import { resolve } from 'node:path';
import { PolicyHolder } from '../policy/holder.js';
import { PolicyState } from '../policy/state.js';
import { formatIssue, PolicyLoadError } from '../policy/load.js';

export interface RuntimeOptions {
  policyPath: string;
  dbPath: string;
  auditFile?: string | false;
  /** Watch the policy file for changes (default true). */
  watch?: boolean;
  log?: (line: string) => void;
}

export interface PolicyRuntime {
  holder: PolicyHolder;
  state: PolicyState;
  close(): void;
}

/** Loads the policy (throws PolicyLoadError: an invalid policy refuses to start) and opens the state DB. */
export function createPolicyRuntime(o: RuntimeOptions): PolicyRuntime {
  const holder = new PolicyHolder(o.policyPath);
  const state = new PolicyState({ dbPath: o.dbPath, auditFile: o.auditFile });
  const log = o.log ?? ((l: string) => process.stderr.write(`egress-triage gateway: ${l}\n`));
  holder.on('invalid', (e: PolicyLoadError) => {
    log(`policy reload rejected, previous version stays in force:\n${e.issues.map((i) => `  ${formatIssue(e.file, i)}`).join('\n')}`);
  });
  holder.on('reload', () => log(`policy reloaded (${holder.current.hash.slice(0, 12)})`));
  if (o.watch !== false) holder.watch();
  return {
    holder,
    state,
    close() {
      holder.close();
      state.close();
    },
  };
}

export interface PolicyRuntimeSet {
  /** The runtime of a policy file given to createPolicyRuntimeSet; throws for any other path. */
  runtimeFor(policyPath: string): PolicyRuntime;
  close(): void;
}

/**
 * One runtime per distinct policy file (the default one and each grant's own), all created up front
 * and sharing one state DB handle: every session using a file charges the same counters, and an
 * invalid file refuses to start.
 */
export function createPolicyRuntimeSet(o: Omit<RuntimeOptions, 'policyPath'> & { policyPaths: string[] }): PolicyRuntimeSet {
  const state = new PolicyState({ dbPath: o.dbPath, auditFile: o.auditFile });
  const holders = new Map<string, PolicyHolder>();
  const log = o.log ?? ((l: string) => process.stderr.write(`egress-triage policy: ${l}\n`));
  try {
    for (const p of o.policyPaths) {
      const abs = resolve(p);
      if (holders.has(abs)) continue;
      const holder = new PolicyHolder(abs);
      holders.set(abs, holder);
      holder.setMaxListeners(0); // one reload listener per session
      holder.on('invalid', (e: PolicyLoadError) => {
        log(`policy ${abs}: reload rejected, previous version stays in force:\n${e.issues.map((i) => `  ${formatIssue(e.file, i)}`).join('\n')}`);
      });
      holder.on('reload', () => log(`policy ${abs} reloaded (${holder.current.hash.slice(0, 12)})`));
      if (o.watch !== false) holder.watch();
    }
  } catch (e) {
    for (const h of holders.values()) h.close();
    state.close();
    throw e;
  }
  return {
    runtimeFor(policyPath) {
      const holder = holders.get(resolve(policyPath));
      if (!holder) throw new Error(`no policy runtime for ${policyPath}`);
      return { holder, state, close: () => undefined };
    },
    close() {
      for (const h of holders.values()) h.close();
      state.close();
    },
  };
}
