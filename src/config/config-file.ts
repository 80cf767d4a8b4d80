import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseAllowedEndpoints, RiskyCoverageError } from '../detection/allowed-endpoints.js';
import { riskyDestinations } from '../analysis/risky-destinations.js';
import { resolveConfigPath } from './paths.js';
import { readYamlText } from './yaml-file.js';
import { readErrno, readErrorText } from './read-error.js';
import { dashboardUrlProblem } from '../domain/dashboard.js';

/** egress-triage.yaml: settings shared by every command. All keys are optional. */
export const ConfigSchema = z
  .object({
    learning_runs: z.number().int().min(0).max(10_000).optional(),
    promote_after_runs: z.number().int().min(1).max(10_000).optional(),
    allowed_endpoints: z.union([z.string(), z.array(z.string())]).optional(),
    risky_destinations: z.array(z.string()).optional(),
    dashboard_url: z.string().url().optional(),
  })
  .strict();
export type ConfigFile = z.infer<typeof ConfigSchema>;

/** A config file that exists but cannot be read (a directory, no permission): an I/O failure, not bad content. */
export class ConfigReadError extends Error {
  override name = 'ConfigReadError';
}

/** The config file at resolveConfigPath(flag, env) (config/paths.ts), or no settings when there is none. */
export function loadConfig(flag?: string, env: NodeJS.ProcessEnv = process.env): { path: string | null; config: ConfigFile } {
  const path = resolveConfigPath(flag, env);
  if (!path) return { path: null, config: {} };
  if (!existsSync(path)) throw new Error(`config file ${path} does not exist`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigReadError(`config file ${path}: ${readErrno(e) === 'EISDIR' ? 'is a directory; give the config file in it' : `cannot be read: ${readErrorText(e)}`}`);
  }
  const file = readYamlText(text, path);
  const parsed = ConfigSchema.safeParse(file.value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path}${file.lineOf(issue.path)}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  // Checked here, not only at ingest, so a config that would allow a risky destination fails every
  // command that reads it, with its line.
  const at = (key: string) => file.lineOf([key]);
  // and a dashboard_url no link can be built on, which only the commands that print links met
  const urlProblem = parsed.data.dashboard_url === undefined ? null : dashboardUrlProblem(parsed.data.dashboard_url);
  if (urlProblem) throw new Error(`${path}${at('dashboard_url')}: dashboard_url: ${urlProblem}`);
  let risky;
  try {
    risky = riskyDestinations(parsed.data.risky_destinations);
  } catch (err) {
    throw new Error(`${path}${at('risky_destinations')}: ${(err as Error).message}`);
  }
  try {
    parseAllowedEndpoints(parsed.data.allowed_endpoints, 'allowed_endpoints', risky);
  } catch (err) {
    const message = `${path}${at('allowed_endpoints')}: ${(err as Error).message}`;
    // a safety refusal stays one, as for the --allowed-endpoints flag (exit 4, not a bad file's 1)
    throw err instanceof RiskyCoverageError ? new RiskyCoverageError(message) : new Error(message);
  }
  return { path, config: parsed.data };
}
