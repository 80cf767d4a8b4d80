// Installs the MCP conformance tools (conformance/: the conformance CLI and the Node 22 it needs) when
// they are missing or older than their lockfile, so that `npm test` alone sets up what the suite
// runs. They live in their own package: in the root, Node 22 would run every npm script and the
// conformance CLI's v1 SDK would join the root tree.
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'conformance');
const installed = join(dir, 'node_modules', '.package-lock.json');
const wanted = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')).packages ?? {};
const have = existsSync(installed) ? (JSON.parse(readFileSync(installed, 'utf8')).packages ?? {}) : {};
const stale = Object.entries(wanted).some(([path, p]) => path !== '' && have[path]?.version !== p.version);
if (stale) {
  process.stderr.write('installing the MCP conformance tools (npm ci --prefix conformance)\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`npm ci --prefix conformance failed (exit ${r.status ?? r.signal}); the conformance tests need it\n`);
    process.exit(r.status ?? 1);
  }
}
