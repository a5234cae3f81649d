#!/usr/bin/env node
// The `ambit` command line. Each command lives in its own file under ./commands and registers itself there, so
// components can add commands without touching each other.
import { Command } from 'commander';
import { registerCommands } from './commands/index.js';
import { AMBIT_VERSION } from '../common/version.js';

const program = new Command();
program
  .name('ambit')
  .description('Sidecarless service mesh that speaks Istio ambient APIs')
  .version(AMBIT_VERSION)
  .showHelpAfterError();
registerCommands(program, process.argv)
  .then(() => program.parseAsync(process.argv))
  .catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
