import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout root, found from this file (dist/test/conformance/tools.js) so any working directory works. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The isolated tools folder: its own package.json and lockfile, never part of the root install. */
export const TOOLS = join(ROOT, 'conformance');
/** The conformance CLI needs Node 22 (fs.globSync); the `node` package there provides it for this run only. */
export const NODE22 = join(TOOLS, 'node_modules', 'node', 'bin', 'node');
export const CONFORMANCE_CLI = join(TOOLS, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
export const REQUIREMENTS_DIR = join(TOOLS, 'node_modules', '@modelcontextprotocol', 'conformance', 'requirements');

/** The two protocol revisions every run covers, each with its own frozen requirement set. */
export const REVISIONS = ['2025-11-25', '2026-07-28'] as const;
export type Revision = (typeof REVISIONS)[number];

/** One expected-failures file per target and revision: a scenario may fail on one wire and pass on the other. */
export function expectedFailuresFile(target: string, revision: Revision): string {
  return join(TOOLS, `expected-failures.${target}.${revision}.yaml`);
}

/** Fails with the command that fixes it when the tools folder (default: conformance/) was never installed. */
export function assertToolsInstalled(tools = TOOLS): void {
  const modules = join(tools, 'node_modules');
  for (const path of [join(modules, 'node', 'bin', 'node'), join(modules, '@modelcontextprotocol', 'conformance', 'dist', 'index.js')]) {
    if (!existsSync(path)) {
      throw new Error(`the conformance tools are not installed (${path} is missing): run \`npm ci --prefix conformance\` from the checkout root`);
    }
  }
}
