import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { COMMAND_MODULES, loadCommandRegistrars } from '../../src/cli/commands/index.js';

/** The top-level command names a set of registrars puts on a fresh root program. */
function registered(registrars: Awaited<ReturnType<typeof loadCommandRegistrars>>): string[] {
  const program = new Command();
  for (const register of registrars) register(program);
  return program.commands.map((c) => c.name());
}

test('each command module registers exactly the names the index routes to it', async () => {
  for (const m of COMMAND_MODULES) {
    assert.deepEqual(registered([(await m.load()).register]), [...m.names], m.names.join(', '));
  }
});

test('a command line loads only the module of its command', async () => {
  for (const m of COMMAND_MODULES) {
    for (const name of m.names) {
      assert.deepEqual(registered(await loadCommandRegistrars(['--quiet-flag-before', name, '--db', 'x.db'])), [...m.names], name);
    }
  }
});

test('no command, help alone or of an unknown word, or an unknown word loads every command, in help order', async () => {
  const all = COMMAND_MODULES.flatMap((m) => m.names);
  for (const args of [[], ['--help'], ['help'], ['help', 'ingets'], ['ingets', 'a.ndjson'], ['-V', 'ingets']]) {
    assert.deepEqual(registered(await loadCommandRegistrars(args)), all, args.join(' '));
  }
});

test('help of a command loads its module only; the version alone loads none', async () => {
  for (const m of COMMAND_MODULES) {
    for (const name of m.names) assert.deepEqual(registered(await loadCommandRegistrars(['help', name])), [...m.names], `help ${name}`);
  }
  for (const v of ['-V', '--version']) assert.deepEqual(registered(await loadCommandRegistrars([v])), [], v);
});
