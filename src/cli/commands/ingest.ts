import { Command, Option } from 'commander';
import { revealInvisible } from '../../domain/reveal-invisible.js';
import cliProgress from 'cli-progress';
import { withPorts, withStoreOptions, printJson, parseIntOption, wantsProgress, type StoreOptions, type PortsContext } from '../common.js';
import { InterruptedError, UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { out } from '../output.js';
import { IngestPipeline, type IngestOptions, type SourceSummary } from '../../ingest/pipeline.js';
import { SourceReadError } from '../../ingest/input.js';
import { INGEST_FORMATS, type IngestFormat } from '../../ingest/adapters/types.js';
import { AllowedEndpoints, parseAllowedEndpoints, RiskyCoverageError } from '../../detection/allowed-endpoints.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../detection/engine.js';
import type { ConfigFile } from '../../config/config-file.js';
import type { JobContext } from '../../domain/types.js';
import { riskyDestinations } from '../../analysis/risky-destinations.js';
import { rememberRiskyDestinations } from '../../rules/risky-memory.js';
import type { OpenStore } from '../../storage/open-store.js';
import { accessSync, constants, statSync } from 'node:fs';
import { IngestLeaseError } from '../../storage/store.js';
import { ingestLeaseTtlMs, reportLeaseEvent } from '../ingest-lease-settings.js';

/**
 * Refuses a path that cannot be a source before anything is stored: missing, unreadable, a directory.
 * Returns its size in bytes (null for standard input), for the progress bar.
 */
function checkSource(f: string): number | null {
  if (f === '-') return null;
  // an unset shell variable (`ingest "$FILE"`): no file is named, which is a wrong command line
  if (f === '') throw new UserError('ingest: a source path is empty; give a file, or - for standard input', EXIT.USAGE);
  let st;
  try {
    st = statSync(f);
    accessSync(f, constants.R_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${f}: no such file`, EXIT.NOT_FOUND);
    throw new UserError(`cannot read ${f}: ${(err as Error).message}`, EXIT.IO);
  }
  if (st.isDirectory()) throw new UserError(`cannot read ${f}: it is a directory; give the files in it (e.g. ${f}/*.ndjson.gz)`, EXIT.IO);
  return st.size;
}

interface IngestOpts extends StoreOptions {
  format: IngestFormat | 'auto';
  strict?: boolean;
  owner?: string;
  repo?: string;
  workflow?: string;
  job?: string;
  runId?: string;
  runAttempt?: number;
  jobId?: string;
  learningRuns?: number;
  promoteAfter?: number;
  allowedEndpoints?: string;
}

/** Flags override the config file, which overrides the built-in defaults. */
export function engineConfigFrom(opts: { learningRuns?: number; promoteAfter?: number; allowedEndpoints?: string }, config: ConfigFile): EngineConfig {
  let risky;
  try {
    risky = riskyDestinations(config.risky_destinations);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  let allowed;
  try {
    allowed = parseAllowedEndpoints(opts.allowedEndpoints ?? config.allowed_endpoints, opts.allowedEndpoints ? '--allowed-endpoints' : 'allowed_endpoints', risky);
  } catch (err) {
    throw new UserError((err as Error).message, err instanceof RiskyCoverageError ? EXIT.REFUSED : EXIT.USAGE);
  }
  return {
    ...DEFAULT_ENGINE_CONFIG,
    learningRuns: opts.learningRuns ?? config.learning_runs ?? DEFAULT_ENGINE_CONFIG.learningRuns,
    promoteAfterRuns: opts.promoteAfter ?? config.promote_after_runs ?? DEFAULT_ENGINE_CONFIG.promoteAfterRuns,
    allowed: new AllowedEndpoints(allowed),
    neverBaseline: (host) => risky.matchHost(host) !== null,
  };
}

export interface IngestRunResult {
  sources: SourceSummary[];
  totals: { records: number; accepted: number; duplicates: number; rejected: number; detections: number; suppressedOnIngest: number; releasedOnIngest: number; elapsedMs: number; eventsPerSecond: number; peakRssMiB: number; cpuMs: number };
}

/** What ingest needs of the store: the picker's ports (storage/open-store.ts), on either backend. */
export type IngestTarget = Pick<OpenStore, 'ingest' | 'setLearningRuns' | 'ingestSuppressor' | 'rulesPort'>;

/**
 * The engine, suppressor and parser settings of an ingest that judge by the risky list: what the
 * store remembers plus the config's (`configured`, rules/risky-memory.ts), read again whenever the
 * rules change. Remembering an entry bumps their version, so an ingest already running judges by
 * an entry another command adds from its next write on, and evaluates that write again if it was
 * pending. The parser keeps the list it started with.
 */
export function riskyRefreshing(engine: EngineConfig, configured: readonly string[] | undefined): Pick<IngestOptions<IngestTarget>, 'engine' | 'suppressorFor' | 'riskyDestinations'> {
  let risky = riskyDestinations(configured);
  return {
    engine: { ...engine, neverBaseline: (host) => engine.neverBaseline(host) || risky.matchHost(host) !== null },
    riskyDestinations: configured,
    suppressorFor: async (s, tenant) => {
      const { list } = await rememberRiskyDestinations(s, configured);
      risky = riskyDestinations(list);
      return s.ingestSuppressor(tenant, list);
    },
  };
}

/** Shared by `ingest` and `demo`. Shows a progress bar on a TTY. */
export async function runIngest(
  store: IngestTarget,
  files: string[],
  o: { tenant: string; format: IngestFormat | 'auto'; strict: boolean; defaults: Partial<JobContext>; engine: EngineConfig; progress: boolean; riskyDestinations?: string[] },
): Promise<IngestRunResult> {
  await store.setLearningRuns(o.engine.learningRuns);
  // one bar per source: a file's size is known, so it shows a percentage and an ETA; a pipe's is
  // not, so its bar shows what was read without pretending to a total (a 0/0 bar reads as 100%)
  let bar: cliProgress.SingleBar | null = null;
  const newBar = (sized: boolean) =>
    new cliProgress.SingleBar(
      {
        format: sized
          ? ' {source} |{bar}| {percentage}% | {read}/{size} MiB | {records} records | {rate} rec/s | ETA {eta_formatted}'
          : ' {source} | {read} MiB read | {records} records | {rate} rec/s',
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
  // The bar counts bytes, and shows MiB: a percentage of MiB rounded to tenths was up to 8 points
  // behind on a 1.2 MiB file.
  const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;
  const started = Date.now();
  let lastRecords = 0;
  // SIGINT / SIGTERM: give the terminal back at once (the bar hid the cursor and turned line wrap
  // off), then stop the ingest so it rolls back and releases its leases before the process ends by
  // that signal (main.ts). A second signal meanwhile, or one after the ingest, ends it at once. The
  // handlers stay until the process ends: removing the last one drops a signal that arrived but was
  // not yet handled (a Ctrl-C that also ended the input pipe, so the ingest finished just then).
  const stop = new AbortController();
  let running = true;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => () => {
    bar?.stop();
    if (running && !stop.signal.aborted) {
      stop.abort(new InterruptedError(signal));
      return;
    }
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', onSignal('SIGINT'));
  process.on('SIGTERM', onSignal('SIGTERM'));
  // where the ingest was, for the report of an interruption: sources stored in full, and the one being read
  const shown = (f: string) => (f === '-' ? '<stdin>' : f);
  let sourcesDone = 0;
  let reading = { source: files.length ? shown(files[0]!) : '', records: 0 };
  const sources: SourceSummary[] = [];
  // the binaries flagged while reading the current source (IngestPipeline.flaggedInSource)
  let flaggedNow: () => readonly FlaggedBinary[] = () => [];
  try {
    const result = await ingestSources();
    // a signal after the last batch: what was read is stored, and the process still ends by it
    stop.signal.throwIfAborted();
    return result;
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    const signal = (stop.signal.reason as InterruptedError).signal;
    // flags are stored as they are raised: an interrupted ingest still tells them, as its summary would have
    const flagged = [...sources.flatMap((s) => s.suspectedImpostors), ...flaggedNow()];
    throw new InterruptedError(signal, interruptionReport(signal, { sourcesDone, sources: files.length, reading, strict: o.strict, flagged }));
  } finally {
    running = false;
  }

  async function ingestSources(): Promise<IngestRunResult> {
    const pipeline = new IngestPipeline(store, {
      signal: stop.signal,
      tenant: o.tenant,
      format: o.format,
      strict: o.strict,
      defaults: o.defaults,
      ...riskyRefreshing(o.engine, o.riskyDestinations),
      leaseTtlMs: ingestLeaseTtlMs(process.env),
      onLeaseEvent: reportLeaseEvent,
      onProgress: (p) => {
        reading = { source: p.source, records: p.records };
        if (!bar) return;
        const secs = Math.max(0.001, (Date.now() - started) / 1000);
        lastRecords = p.records;
        if (p.size !== null && bar.getTotal() !== p.size) bar.setTotal(p.size);
        bar.update(p.bytes, { source: p.source, read: mib(p.bytes), size: mib(p.size ?? 0), records: p.records, rate: Math.round(lastRecords / secs) });
      },
    });
    flaggedNow = () => pipeline.flaggedInSource();
    const sizes = files.map(checkSource);
    for (const [i, f] of files.entries()) {
      reading = { source: shown(f), records: 0 };
      if (o.progress) {
        const size = sizes[i]!;
        bar = newBar(size !== null);
        bar.start(size ?? 0, 0, { source: f === '-' ? '<stdin>' : f, read: 0, size: mib(size ?? 0), records: 0, rate: 0 });
      }
      try {
        sources.push(await pipeline.ingest(f));
        sourcesDone++;
      } catch (err) {
        // Only a source that cannot be opened at all gets here; one that fails mid-way is in its summary.
        if (err instanceof SourceReadError) throw new UserError(err.message, EXIT.IO);
        if (err instanceof IngestLeaseError) throw new UserError(err.message, EXIT.IO);
        throw err;
      } finally {
        bar?.stop();
      }
    }
    const elapsedMs = Date.now() - started;
    const sum = (k: 'records' | 'accepted' | 'duplicates' | 'rejected' | 'detections' | 'suppressedOnIngest' | 'releasedOnIngest') =>
      sources.reduce((a, s) => a + s[k], 0);
    const accepted = sum('accepted');
    return {
      sources,
      totals: {
        records: sum('records'),
        accepted,
        duplicates: sum('duplicates'),
        rejected: sum('rejected'),
        detections: sum('detections'),
        suppressedOnIngest: sum('suppressedOnIngest'),
        releasedOnIngest: sum('releasedOnIngest'),
        elapsedMs,
        eventsPerSecond: Math.round(accepted / Math.max(0.001, elapsedMs / 1000)),
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        // user + system CPU of the whole process (every thread) since it started: on a shared machine
        // wall time says little, so the benchmark compares this too
        cpuMs: cpuMsSinceStart(),
      },
    };
  }
}

/**
 * What an interrupted ingest leaves in the store, said before the process ends by the signal: the
 * sources read in full are stored; of the one being read, what was committed before the signal stays
 * (all of it rolled back under --strict), and the batch in progress is rolled back. Calls and
 * detections have natural keys, so the same ingest run again stores nothing twice.
 */
export function interruptionReport(
  signal: 'SIGINT' | 'SIGTERM',
  at: { sourcesDone: number; sources: number; reading: { source: string; records: number }; strict: boolean; flagged?: readonly FlaggedBinary[] },
): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const flagged = at.flagged?.length
    ? revealInvisible(
        `; flagged and stored before the signal: ${at.flagged.length} suspected impostor binar${at.flagged.length === 1 ? 'y' : 'ies'}, kept visible whatever the rules ` +
          `(${at.flagged.slice(0, 3).map((b) => describeFlagged(b, null)).join('; ')}${at.flagged.length > 3 ? '; ...' : ''}; \`egress-triage analyze\` shows them)`,
      )
    : '';
  if (at.sourcesDone >= at.sources) return `ingest stopped by ${signal} after its last source: everything read is stored${flagged}`;
  const before = at.sourcesDone ? `; the ${plural(at.sourcesDone, 'source')} before it ${at.sourcesDone === 1 ? 'is' : 'are'} stored in full` : '';
  const kept = at.strict
    ? 'nothing of it is stored (--strict)'
    : 'what was committed of it stays stored, the batch in progress was rolled back';
  return (
    `ingest stopped by ${signal} while reading ${at.reading.source}, after ${plural(at.reading.records, 'record')} of it: ${kept}${before}; ` +
    `running the same ingest again stores nothing twice${flagged}`
  );
}

function cpuMsSinceStart(): number {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000);
}

/** EXIT.OK only when every record of every source was accepted (an empty source rejects nothing). */
export function ingestExitCode(r: IngestRunResult): number {
  return r.sources.some((s) => s.rejected > 0 || !s.stored) ? EXIT.REJECTED : EXIT.OK;
}

const MAX_IMPOSTOR_LINES = 10;

type FlaggedBinary = SourceSummary['suspectedImpostors'][number];

/** A flagged binary of the summary: its name and path as JSON strings, the tenant when the source wrote into several. */
function describeFlagged(b: FlaggedBinary, tenant: string | null): string {
  const id = b.sha256 ? `sha256 ${b.sha256.slice(0, 12)}` : `${JSON.stringify(b.path ?? '')} (no hash)`;
  return `${JSON.stringify(b.process)} ${id}${tenant !== null ? ` in tenant ${tenant}` : ''}: ${b.reason}`;
}

export function renderIngestSummary(r: IngestRunResult): string {
  const out: string[] = [];
  for (const s of r.sources) {
    const status = s.stored ? '' : '  (--strict: nothing stored from this source)';
    out.push(`${s.source} [${s.format ?? 'unknown'}]${status}`);
    out.push(`  records read      ${s.records}`);
    out.push(`  events accepted   ${s.accepted}  (${s.duplicates} repeat a call already stored for the same run)`);
    out.push(`  rejected          ${s.rejected}${s.rejected ? '  ' + Object.entries(s.rejectedByReason).map(([k, v]) => `${k}=${v}`).join(' ') : ''}`);
    const notes = Object.entries(s.notes ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
    if (notes) out.push(`  notes             ${notes}`);
    if (s.otherTenants?.length) out.push(`  other tenants     ${s.otherTenants.join(' ')}  (written there: named by the records' own "tenant" field)`);
    const types = Object.entries(s.detectionsByType).map(([k, v]) => `${k}=${v}`).join(' ');
    out.push(`  detections        ${s.detections}${types ? '  ' + types : ''}${s.suppressedOnIngest ? `  (${s.suppressedOnIngest} suppressed by existing rules)` : ''}`);
    // Said, not left to be found: a renamed binary, and what a rule hid of a daemon hash flagged now.
    // One binary a line, its name and path quoted: they are the attacker's text, and must not read
    // as another entry or as the end of this one.
    if (s.suspectedImpostors.length) {
      out.push(`  impostors         ${s.suspectedImpostors.length} binar${s.suspectedImpostors.length === 1 ? 'y' : 'ies'} suspected, kept visible whatever the rules:`);
      for (const b of s.suspectedImpostors.slice(0, MAX_IMPOSTOR_LINES)) out.push(revealInvisible(`    - ${describeFlagged(b, s.otherTenants?.length ? b.tenant : null)}`));
      if (s.suspectedImpostors.length > MAX_IMPOSTOR_LINES) out.push(`    - ... ${s.suspectedImpostors.length - MAX_IMPOSTOR_LINES} more (use --json for all of them)`);
    }
    if (s.releasedOnIngest) out.push(`  new again         ${s.releasedOnIngest} stored detection(s) of suspected impostors that were suppressed or resolved`);
    // a rejected record's message quotes its text: written by name, control characters cannot forge report lines
    for (const e of s.errors.slice(0, 10)) out.push(revealInvisible(`  ! ${e.location}: ${e.field && !e.message.startsWith(e.field + ':') ? e.field + ': ' : ''}${e.message}`));
    if (s.rejected > 10) out.push(`  ! ... ${s.rejected - Math.min(10, s.errors.length)} more rejected records (use --json for the first ${s.errors.length})`);
  }
  const t = r.totals;
  // "raised", not "new": a detection an existing rule suppressed on arrival is raised but not new
  const suppressed = r.sources.reduce((n, s) => n + (s.suppressedOnIngest ?? 0), 0);
  const raised = `${t.detections} detections raised${suppressed ? ` (${suppressed} suppressed by existing rules)` : ''}`;
  const again = t.releasedOnIngest ? `, ${t.releasedOnIngest} stored detections new again (suspected impostors)` : '';
  out.push(`total: ${t.accepted} events in ${(t.elapsedMs / 1000).toFixed(2)} s (${t.eventsPerSecond} events/s), ${raised}${again}, ${t.rejected} rejected`);
  return out.join('\n');
}

async function ingestCommand(files: string[], opts: IngestOpts, { ports, tenant, config, json }: PortsContext): Promise<void> {
  const defaults: Partial<JobContext> = {};
  if (opts.owner) defaults.owner = opts.owner;
  if (opts.repo) defaults.repo = opts.repo;
  if (opts.workflow) defaults.workflow = opts.workflow;
  if (opts.job) defaults.job = opts.job;
  if (opts.runId) defaults.runId = opts.runId;
  if (opts.runAttempt) defaults.runAttempt = opts.runAttempt;
  if (opts.jobId) defaults.jobId = opts.jobId;
  const result = await runIngest(ports, files, {
    tenant,
    format: opts.format,
    strict: Boolean(opts.strict),
    defaults,
    engine: engineConfigFrom(opts, config),
    progress: wantsProgress(json),
    riskyDestinations: config.risky_destinations,
  });
  if (json) printJson(result);
  else out(renderIngestSummary(result) + '\n');
  // Scripts must be able to tell "all accepted" from "something was rejected" (skipped without
  // --strict, or the whole source with it); the summary says which and where.
  process.exitCode = ingestExitCode(result);
}

export function register(program: Command): void {
  const cmd = program
    .command('ingest')
    .description('Ingest process-attributed network telemetry (NDJSON or JSON, optionally gzipped) and raise detections')
    .argument('[files...]', 'input files, or - for stdin (default: stdin)')
    .addOption(new Option('--format <format>', 'input format').choices(['auto', ...INGEST_FORMATS]).default('auto'))
    .option('--strict', 'reject a whole source if any record is bad (nothing from it is stored)')
    .option('--owner <owner>', 'job context for records that lack it (harden-runner, ecs)')
    .option('--repo <repo>', 'job context: repository')
    .option('--workflow <path>', 'job context: workflow path, e.g. .github/workflows/ci.yml')
    .option('--job <job>', 'job context: job name')
    .option('--run-id <id>', 'job context: run id')
    .option('--run-attempt <n>', 'job context: run attempt', parseIntOption('--run-attempt', 1))
    .option('--job-id <id>', 'job context: GitHub job id')
    .option('--learning-runs <n>', `completed runs a job learns before raising detections (default ${DEFAULT_ENGINE_CONFIG.learningRuns})`, parseIntOption('--learning-runs', 0))
    .option('--promote-after <n>', `completed runs after which a new endpoint joins the baseline (default ${DEFAULT_ENGINE_CONFIG.promoteAfterRuns})`, parseIntOption('--promote-after', 1))
    .option('--allowed-endpoints <list>', 'Harden-Runner allowed endpoints, e.g. "github.com:443 *.npmjs.org"');
  withStoreOptions(cmd).action(async (files: string[], opts: IngestOpts) => {
    const sources = files.length ? files : ['-'];
    // Before the store is opened: a mistyped input path must not create an empty store.
    for (const f of sources) checkSource(f);
    await withPorts(opts, (ctx) => ingestCommand(sources, opts, ctx), 'create');
  });
}
