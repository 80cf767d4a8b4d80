/**
 * `npm run bench`: runs every benchmark, prints the numbers and writes them to
 * docs/benchmarks.json and the table in docs/benchmarks.md. Select suites with arguments,
 * e.g. `npm run bench -- ingest analysis`. The rules suite takes `--rule-matches=N` (bench/rules.ts).
 */
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

type Suite = () => Promise<Record<string, unknown>>;

const suites: Record<string, () => Promise<Suite>> = {
  adapters: async () => (await import('./adapters.js')).runAdapterBench as Suite,
  ingest: async () => (await import('./ingest.js')).runIngestBench as Suite,
  analysis: async () => (await import('./analysis.js')).runAnalysisBench as Suite,
  mcp: async () => (await import('./mcp.js')).runMcpBench as Suite,
  policy: async () => (await import('./policy.js')).runPolicyBench as Suite,
  'store-write': async () => (await import('./store-write.js')).runStoreWriteBench as Suite,
  rules: async () => (await import('./rules.js')).runRulesBench as Suite,
  'pg-ingest': async () => (await import('./pg-ingest.js')).runPgIngestBench as Suite,
  dashboard: async () => (await import('./dashboard.js')).runDashboardBench as Suite,
  'dashboard-queries': async () => (await import('./dashboard-queries.js')).runDashboardQueriesBench as Suite,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const names = wanted.length ? wanted : Object.keys(suites);
  const unknown = names.filter((n) => !suites[n]);
  if (unknown.length) throw new Error(`unknown bench suite(s) ${unknown.join(', ')}; choose from ${Object.keys(suites).join(', ')}`);
  const path = 'docs/benchmarks.json';
  const all: Record<string, unknown> = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
  all.machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version };
  for (const name of names) {
    process.stderr.write(`\n== ${name} ==\n`);
    const fn = await suites[name]!();
    const started = Date.now();
    const result = await fn();
    all[name] = { ...result, measured_at: new Date().toISOString(), wall_s: Math.round((Date.now() - started) / 100) / 10 };
    process.stdout.write(`${name}: ${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(path, JSON.stringify(all, null, 2) + '\n');
  }
  process.stderr.write(`\nwrote ${path}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
