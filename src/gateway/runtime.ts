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
