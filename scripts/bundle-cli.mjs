// Bundles the compiled CLI (dist/src/cli/main.js) and its parse worker into dist/bundle/cli/, the
// program that package.json's `bin`, the npm scripts and the tests run.
//
// Why: Node 20 has no module compile cache, and resolving, reading and linking the ~360 modules a
// command loads (commander, the MCP SDK, zod, our own) was most of each run's CPU. CPU per run,
// unbundled against bundled, on the shared 2-core machine (2026-12-02): `--help` 0.84-1.09 s against
// 0.41-0.52 s, `stats` 0.47-0.55 s against 0.25-0.33 s, a stdio `gateway` start and stop 1.07-1.14 s
// against 0.79-0.87 s. Dynamic imports stay chunk boundaries, so a command still loads only its own
// code (test/cli/lazy-load.test.ts checks it on this bundle).
//
// Left outside: native and CommonJS drivers, which our code already requires lazily
// (better-sqlite3, pg, pg-copy-streams, ioredis, stream-json) and playwright-core.
//
// Two paths in the code are relative to the module that holds them, and the checks below hold them:
// - the parse worker, `new URL('./parse-worker.js', import.meta.url)`: every chunk sits in one folder
//   beside the worker entry;
// - the dashboard's assets, `new URL('../../web/', import.meta.url)`: dist/bundle/cli/ is as deep
//   as dist/src/dashboard/, so both reach dist/web/.
import { build } from 'rolldown';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist/bundle/cli');

rmSync(out, { recursive: true, force: true });
await build({
  cwd: root,
  input: { main: 'dist/src/cli/main.js', 'parse-worker': 'dist/src/ingest/parse-worker.js' },
  platform: 'node',
  external: [/^node:/, /^unhomoglyph(\/|$)/, 'better-sqlite3', 'pg', 'pg-copy-streams', 'ioredis', /^stream-json(\/|$)/, 'playwright-core'],
  logLevel: 'warn',
  output: { dir: out, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js', sourcemap: true },
});

const problems = [];
const entries = readdirSync(out, { withFileTypes: true });
if (entries.some((e) => e.isDirectory())) problems.push('chunks must sit in one folder beside parse-worker.js');
if (!entries.some((e) => e.name === 'parse-worker.js')) problems.push('no parse-worker.js beside the chunks');
const assets = new URL('../../web/.vite/manifest.json', pathToFileURL(join(out, 'main.js')));
if (!existsSync(assets)) problems.push(`the dashboard assets are not at ${fileURLToPath(assets)} (build the web UI first: npx vite build --config web/vite.config.mjs, or npm run build for everything)`);
if (problems.length) {
  process.stderr.write(`bundle-cli: ${problems.join('; ')}\n`);
  process.exit(1);
}
