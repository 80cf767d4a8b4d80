import type { CallFacts, Suppressor } from '../domain/subject.js';
import { callContradiction } from '../analysis/impostor.js';
import { vpnSignatureFor } from '../analysis/vpn-signatures.js';
import type { RiskyDestinations } from '../analysis/risky-destinations.js';
import { ImpostorSet } from './guards.js';

/**
 * The ingest-time suppressor of a store that holds no rules (PostgreSQL, until rules move onto
 * it): it matches nothing, so nothing is suppressed. It still watches for impostor binaries, as
 * the rules suppressor does (suppressor.ts): a call that contradicts the VPN daemon it claims to be
 * marks the binary, and a marked binary's calls never teach the baseline, so an impostor cannot
 * teach its own destinations in. The marks live for one source, in memory: nothing is written.
 */
export function noRulesSuppressor(risky: RiskyDestinations): Suppressor {
  const impostors = new ImpostorSet();
  return {
    match: () => 0,
    observe(call: CallFacts): boolean {
      if (!vpnSignatureFor(call.process)) return false;
      const b = { process: call.process, sha256: call.processSha256, path: call.processPath };
      if (impostors.get(b)) return true;
      const reason = callContradiction({ ...b, parentChain: call.parentChain, host: call.host, port: call.port, isIp: call.isIp, risky: risky.matchHost(call.host) });
      if (!reason) return false;
      impostors.add({ ...b, path: b.sha256 ? null : b.path, reason });
      return true;
    },
  };
}
