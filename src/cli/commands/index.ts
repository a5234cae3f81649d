import type { Command } from 'commander';
import { register as upCommand } from './up.js';
import { register as applyCommand } from './apply.js';
import { register as deleteCommand } from './delete.js';
import { register as getCommand } from './get.js';
import { register as execCommand } from './exec.js';
import { register as logsCommand } from './logs.js';
import { register as statusCommand } from './status.js';
import { register as downCommand } from './down.js';
import { register as configCommand } from './config.js';
import { register as controlplaneCommand } from './controlplane.js';
import { register as ztunnelCommand } from './ztunnel.js';

// One line per command module; keep in the order `ambit --help` should list them.
const modules: ((program: Command) => void)[] = [
  upCommand, applyCommand, deleteCommand, getCommand, execCommand, logsCommand, statusCommand, downCommand, configCommand, controlplaneCommand, ztunnelCommand,
];

export function registerCommands(program: Command): void {
  for (const register of modules) register(program);
}
