import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { planTenant, writeTenant, SCENARIO, type GenerateSummary } from '../../generate/index.js';

interface GenerateFlags {
  runs: string;
  seed: string;
  events?: string;
  out?: string;
  tenant?: string;
  learningRuns: string;
  json?: boolean;
}

function positiveInt(flag: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new UserError(`${flag} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new UserError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Numeric seeds stay numbers in the summary; anything else is used as a string seed. */
function parseSeed(raw: string): number | string {
  const s = raw.trim();
  if (s === '') throw new UserError('--seed must not be empty');
  return /^-?\d{1,15}$/.test(s) ? Number(s) : s;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description(
      'Write a deterministic, realistic sample tenant as native NDJSON (normal CI traffic, then VPN daemons, ' +
        'new registries and domains, a renamed tailscaled impostor, a malicious npm postinstall, blocked calls).',
    )
    .option('--runs <n>', 'runs per job (every workflow runs once per round)', String(SCENARIO.defaults.runs))
    .option('--seed <s>', 'seed (integer or string); same arguments give byte-identical output', String(SCENARIO.defaults.seed))
    .option('--events <n>', 'target total events (scales the number of jobs; a few hundred to 10,000,000+)')
    .option('--out <file>', 'output file (".gz" suffix: gzip); default stdout')
    .option('--tenant <name>', 'add "tenant" to every event')
    .option('--learning-runs <n>', 'runs per job before any anomaly appears (match the engine)', String(SCENARIO.defaults.learningRuns))
    .option('--json', 'print a JSON summary to stdout (requires --out)')
    .addHelpText(
      'after',
      '\nThe tenant spans 30 days ending ' +
        SCENARIO.endDate +
        '. Without --events it has ~54 jobs over 4 orgs (~40 events per job run).\n' +
        'Anomalies start only at run index >= --learning-runs (0-based) of each job.',
    )
    .action(async (flags: GenerateFlags) => {
      const runs = positiveInt('--runs', flags.runs, 1, 1_000_000);
      const learningRuns = positiveInt('--learning-runs', flags.learningRuns, 0, 1_000_000);
      const events = flags.events === undefined ? undefined : positiveInt('--events', flags.events, 1, 2_000_000_000);
      const seed = parseSeed(flags.seed);
      if (flags.tenant !== undefined && flags.tenant.trim() === '') throw new UserError('--tenant must not be empty');
      if (flags.json && !flags.out) throw new UserError('--json needs --out (stdout carries the events)');
      const opts = { runs, seed, events, learningRuns, tenant: flags.tenant };
      const plan = planTenant(opts);

      let bar: cliProgress.SingleBar | null = null;
      if (process.stderr.isTTY && (flags.out || !process.stdout.isTTY)) {
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'generate [{bar}] {percentage}% | {value}/{total} events | {rate} ev/s | ETA {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
            etaBuffer: 50,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(plan.estimatedEvents, 0, { rate: 0 });
      }
      const t0 = performance.now();
      let summary: GenerateSummary;
      try {
        summary = await writeTenant(opts, flags.out ?? process.stdout, {
          onProgress: (n, est) => {
            if (!bar) return;
            if (n > est) bar.setTotal(n);
            const secs = (performance.now() - t0) / 1000;
            bar.update(n, { rate: secs > 0 ? Math.round(n / secs) : 0 });
          },
        });
      } catch (err) {
        bar?.stop();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') return; // downstream closed (e.g. `| head`): not an error
        // any system error of the write (a full disk, a missing folder): said as every command says it
        if (code !== undefined && /^E[A-Z]+$/.test(code)) {
          throw new UserError(`cannot write ${flags.out ?? 'output'}: ${(err as Error).message}`, EXIT.IO);
        }
        throw err;
      }
      bar?.stop();
      const secs = (performance.now() - t0) / 1000;
      if (flags.json) {
        // Headline keys first, then the rest of the summary.
        const out = { out: flags.out, ...summary, seconds: Number(secs.toFixed(3)) };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } else {
        const anomalies = summary.events - summary.scenarios.normal;
        process.stderr.write(
          `generated ${summary.events.toLocaleString('en-US')} events (${anomalies.toLocaleString('en-US')} anomalous) ` +
            `for ${summary.orgs} orgs, ${summary.repos} repos, ${summary.jobs} jobs x ${summary.runs} runs ` +
            `(learning ${summary.learningRuns}), seed ${String(summary.seed)} -> ${flags.out ?? 'stdout'} ` +
            `in ${secs.toFixed(1)}s (${Math.round(summary.events / Math.max(secs, 1e-6)).toLocaleString('en-US')} events/s)\n`,
        );
      }
    });
}
