import type { Grant } from '../http/grants.js';
import { fileExit, UserError } from './errors.js';
import { EXIT } from './exit-codes.js';

/**
 * The grants of `--grants FILE` (serve, dashboard, gateway), or none when the option is left out.
 * An option given with an empty or blank path is refused, not read as "no grants": `--grants "$FILE"`
 * with the variable unset would otherwise start a loopback server open to every local process, with
 * full rights on its dashboard (found by review).
 */
export async function loadGrantsOption(path: string | undefined): Promise<Grant[]> {
  if (path === undefined) return [];
  if (path.trim() === '') {
    throw new UserError('--grants: the path is empty; give the grants file, or leave --grants out to serve loopback clients without tokens');
  }
  const { loadGrants } = await import('../http/grants.js');
  try {
    return loadGrants(path);
  } catch (e) {
    // as for a policy file, but an invalid grants file is a usage error
    throw new UserError(`--grants ${(e as Error).message}`, fileExit((e as { readErrno?: string }).readErrno, EXIT.REJECTED));
  }
}
