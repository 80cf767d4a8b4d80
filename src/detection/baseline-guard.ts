import { splitEndpoint } from '../domain/endpoint.js';
import { riskyDestinations, type RiskyDestinations } from '../analysis/risky-destinations.js';
import { BaselineError } from '../storage/baseline-port.js';

/**
 * A risky destination (payload staging, exfiltration) must keep raising detections: no person can
 * make it expected. Every baseline backend calls this before it writes, so no path skips it.
 */
export function assertExpectable(endpoint: string, risky: RiskyDestinations = riskyDestinations()): void {
  const covered = risky.coveredBy(splitEndpoint(endpoint).host);
  if (covered) {
    throw new BaselineError(
      'refused_risky',
      `${endpoint} is the risky destination ${covered} (payload staging / exfiltration): it can never be expected or join a baseline`,
    );
  }
}
