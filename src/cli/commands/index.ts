import type { Command } from 'commander';

// One line per command module; keep in the order `ambit --help` should list them.
const modules: ((program: Command) => void)[] = [];

export function registerCommands(program: Command): void {
  for (const register of modules) register(program);
}
