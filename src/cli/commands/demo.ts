import { Command } from 'commander';
import { existsSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { dashboardUrlFor, withPorts, parseIntOption, wantsProgress, printJson, formatTable, storeLocation } from '../common.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { DEMO_EVENTS_FILE, demoStoreSources } from '../../storage/open-store.js';
import { runIngest, engineConfigFrom, renderIngestSummary } from './ingest.js';
import { writeTenant } from '../../generate/index.js';
import { analyzeAnomalousCallsByProcess } from '../../analysis/analyze-by-process.js';
import { renderAnalysisTable } from '../../analysis/render.js';

export const DEFAULT_DEMO_DB = './.egress-triage/demo.db';
interface DemoOpts {
  db?: string;
  runs: number;
  seed: number;
  events: number;
  json?: boolean;
  force?: boolean;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('Generate a realistic sample tenant, ingest it into a fresh demo store and show what it found')
    .option('--db <path>', 'demo store file (recreated if demo created it)', DEFAULT_DEMO_DB)
    .option('--runs <n>', 'runs per job', parseIntOption('--runs', 6, 10_000), 20)
    .option('--seed <n>', 'random seed', parseIntOption('--seed', 0), 1)
    .option('--events <n>', 'approximate number of events', parseIntOption('--events', 1_000, 10_000_000), 120_000)
    .option('--json', 'print the ingest summary and analysis as JSON')
    .option('--force', 'replace --db even if demo did not create it (its data is deleted)')
    .action(async (opts: DemoOpts) => {
      const given = storeLocation(opts.db ?? DEFAULT_DEMO_DB);
      if (given.backend === 'postgres') {
        throw new UserError(`--db: demo builds a sample store on the embedded SQLite store; give it a file path, not ${given.display}`);
      }
      const db = resolve(opts.db ?? DEFAULT_DEMO_DB);
      const exists = existsSync(db);
      const demo = exists ? demoStoreSources(db) : null;
      const madeByDemo = demo !== null;
      if (exists && !opts.force && !madeByDemo) {
        throw new UserError(
          `${db} exists and was not created by demo: refusing to delete it. Give another --db, or --force to replace it`,
          EXIT.REFUSED,
        );
      }
      // demo's "Try next" points EGRESS_TRIAGE_DB at its store: telemetry ingested there later is
      // the user's, and is not deleted without --force (rules and approvals made there are the tryout's)
      if (demo?.others.length && !opts.force) {
        const named = demo.others.slice(0, 3).join(', ') + (demo.others.length > 3 ? `, and ${demo.others.length - 3} more` : '');
        throw new UserError(
          `${db} was created by demo, but later ingests wrote into it (${named}): refusing to delete their data. Give another --db, or --force to replace it`,
          EXIT.REFUSED,
        );
      }
      // Said before it happens: rules or approvals made on an earlier demo store while trying the
      // tool go with it, and a user who forgot demo owns the file should not find them gone silently.
      if (exists) {
        const what = madeByDemo ? 'made by an earlier demo; its detections, rules and audit are deleted' : 'with --force; everything in it is deleted';
        process.stderr.write(`egress-triage: note: replacing ${relative(process.cwd(), db) || db} (${what})\n`);
      }
      for (const suffix of ['', '-wal', '-shm']) rmSync(db + suffix, { force: true });
      mkdirSync(dirname(db), { recursive: true });
      const events = join(dirname(db), DEMO_EVENTS_FILE);
      const log = (s: string) => {
        if (!opts.json) out(s + '\n');
      };
      log(`Generating a sample tenant (${opts.runs} runs per job, seed ${opts.seed}, ~${opts.events} events) ...`);
      const gen = await writeTenant({ runs: opts.runs, seed: opts.seed, events: opts.events }, events);
      log(`  ${gen.events} events, ${gen.jobRuns} job runs, ${gen.jobs} jobs in ${gen.repos} repos of ${gen.orgs} orgs -> ${relative(process.cwd(), events)}\n`);
      // Marked before anything else is written: a demo store cut short is still the demo's to replace.
      await withPorts({ db, tenant: 'default' }, ({ ports }) => ports.markAsDemo(), 'create');
      log('Ingesting into the embedded store ...');
      const ingest = await withPorts({ db, tenant: 'default' }, ({ ports, config, tenant }) =>
        runIngest(ports, [relative(process.cwd(), events) || events], {
          tenant, format: 'native', strict: false, defaults: {}, engine: engineConfigFrom({}, config), progress: wantsProgress(opts.json),
          riskyDestinations: config.risky_destinations,
        }),
      );
      await withPorts({ db, tenant: 'default' }, async ({ ports, config, tenant }) => {
        const analysis = await analyzeAnomalousCallsByProcess(ports, {
          tenant, limit: 15, dashboardUrl: dashboardUrlFor(undefined, config), extraRiskyDestinations: config.risky_destinations,
        });
        if (opts.json) return printJson({ db, generated: gen, ingest, analysis });
        log(renderIngestSummary(ingest) + '\n');
        const stats = await ports.detections.stats(tenant);
        log(formatTable(['detection type', 'status', 'count'], stats.detections.map((d) => [d.type, d.status, d.count])) + '\n');
        log(`Anomalous calls by process (new New-Outbound-Network-Call detections, ${analysis.total_anomalies_scanned} in all):\n`);
        log(renderAnalysisTable(analysis) + '\n');
        const rel = relative(process.cwd(), db) || db;
        const vpn = analysis.processes.find((p) => p.is_vpn_process_candidate && p.suggested_rule && !p.suggested_rule.blocked_reason);
        log('Try next:');
        log(`  export EGRESS_TRIAGE_DB=${rel}`);
        log('  egress-triage analyze --json | less                     # the full analysis, with evidence and samples');
        if (vpn?.suggested_rule) {
          const conds = Object.entries(vpn.suggested_rule.conditions).filter(([, v]) => v !== '*').map(([k, v]) => `--condition ${k}=${v}`).join(' ');
          log(`  egress-triage rules preview ${conds}`);
          log(`  egress-triage rules create ${conds} --name "${vpn.process} mesh traffic" --yes`);
        }
        log('  egress-triage detections list --process tailscaled --status new');
        log('  egress-triage serve                                       # the dashboard on http://127.0.0.1:8787/, MCP on /mcp');
      }, 'create');
    });
}
