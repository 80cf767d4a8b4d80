import { existsSync } from 'node:fs';
import { clip } from '../domain/clip.js';

export const DEFAULT_DB_PATH = './.egress-triage/egress.db';
export const DEFAULT_TENANT = 'default';
/** Tenant names: letters, digits, ".", "_" or "-", at most 128 characters. */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** --tenant, then EGRESS_TRIAGE_TENANT, then "default" */
export function resolveTenant(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const t = (flag ?? env.EGRESS_TRIAGE_TENANT ?? DEFAULT_TENANT).trim();
  if (!TENANT_PATTERN.test(t)) {
    throw new Error(`invalid tenant "${clip(t)}"${t.length > 60 ? ` (${t.length} characters)` : ''}: use letters, digits, ".", "_" or "-" (max 128 chars)`);
  }
  return t;
}

export const DEFAULT_CONFIG_NAME = 'egress-triage.yaml';

/**
 * --config, then EGRESS_TRIAGE_CONFIG, then ./egress-triage.yaml when present; null when none applies.
 * Apart from the parser (config-file.ts) so that a command run without a config file never loads its
 * YAML and schema libraries.
 */
export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string | null {
  return flag ?? env.EGRESS_TRIAGE_CONFIG ?? (existsSync(DEFAULT_CONFIG_NAME) ? DEFAULT_CONFIG_NAME : null);
}
