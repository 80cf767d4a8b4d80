#!/usr/bin/env node
import v8 from 'node:v8';
import { constants as osConstants } from 'node:os';
import { Command } from 'commander';
import { loadCommandRegistrars } from './commands/index.js';
import { failureOf, InterruptedError, UserError } from './errors.js';
import { refuseEmptyValues } from './empty-values.js';
import { EXIT } from './exit-codes.js';
import { guardOutput, out, outputFailure, outputSettled } from './output.js';
import { failIfUnfinished } from './unfinished.js';
import { VERSION } from '../version.js';

// Ingest allocates many short-lived objects: 16 MiB semi-spaces cut young-generation scavenges
// markedly while keeping the peak RSS of a 5M-event ingest under 500 MiB.
v8.setFlagsFromString('--max-semi-space-size=16');

const debug = Boolean(process.env.EGRESS_TRIAGE_DEBUG);

function report(err: unknown): number {
  if (err instanceof InterruptedError) {
    if (err.report) process.stderr.write(`egress-triage: ${err.report}\n`);
    // cleaned up: now end as the signal would have, without a handler
    process.removeAllListeners(err.signal);
    process.kill(process.pid, err.signal);
    return 128 + osConstants.signals[err.signal];
  }
  const f = failureOf(err, debug);
  if (f.message !== null) process.stderr.write(`egress-triage: ${f.message}\n`);
  return f.code;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('egress-triage')
    .description(
      'Triage anomalous CI egress: ingest process-attributed network telemetry, learn per-job baselines, ' +
        'analyse detections by calling process, suppress VPN noise safely, and serve it all over MCP.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // Parse errors (unknown option, missing argument) become CommanderErrors mapped to EXIT.USAGE;
    // subcommands inherit both settings.
    .exitOverride()
    // an empty option or argument is a usage error on every command, before it does anything
    .hook('preAction', (_program, action) => refuseEmptyValues(action))
    // Help and version text go through out(), as data output does: a closed reader ends them quietly,
    // and a device that refuses them (`--help > /dev/full`) is the I/O failure checked below.
    .configureOutput({
      writeOut: (text) => out(text),
      outputError: (msg, write) => write(`egress-triage: ${msg.replace(/^error: /, '')}`),
    })
    .addHelpText('after', '\nExit codes: 0 ok, 1 input rejected, 2 usage, 3 not found, 4 refused, 5 I/O, 70 internal (see README).\n');
  for (const register of await loadCommandRegistrars(argv.slice(2))) register(program);
  // `help nosuch`: commander prints the whole help (exit 2) but never says the name is unknown
  const [word, topic] = argv.slice(2);
  if (word === 'help' && topic !== undefined && !program.commands.some((c) => c.name() === topic || c.aliases().includes(topic))) {
    process.stderr.write(`egress-triage: help: unknown command '${topic}'\n(run with --help for usage)\n`);
    return EXIT.USAGE;
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = report(err);
    // --help and --version end through a CommanderError with code 0: their text must still be out
    if (code !== EXIT.OK) return code;
  }
  await outputSettled();
  const outErr = outputFailure();
  // Output that could not be written is an I/O failure whatever its errno: a socket stdout that ran
  // out of kernel buffers (ENOBUFS, seen once under heavy output) was mapped to 70, internal error.
  if (outErr) return report(new UserError(`cannot write output: ${outErr.message}`, EXIT.IO));
  return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
}

guardOutput();
// Errors thrown outside a command's promise (an event handler, a timer) still get a message and code.
process.on('uncaughtException', (err) => process.exit(report(err)));
process.on('unhandledRejection', (err) => process.exit(report(err)));

const run = main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.exitCode = report(err);
  },
);
failIfUnfinished(run);
