import type { Command } from 'commander';

type CommandModule = { register(program: Command): void };

// One entry per command module, in the order `ambit --help` lists them. Modules are imported lazily: a long-running
// process such as `ambit ztunnel` then loads only its own code (the YAML, zod and x509 libraries of other commands
// would otherwise add tens of MB to every proxy's RSS).
const modules: Record<string, () => Promise<CommandModule>> = {
  up: () => import('./up.js'),
  apply: () => import('./apply.js'),
  delete: () => import('./delete.js'),
  get: () => import('./get.js'),
  exec: () => import('./exec.js'),
  logs: () => import('./logs.js'),
  status: () => import('./status.js'),
  rollout: () => import('./rollout.js'),
  down: () => import('./down.js'),
  kubeconfig: () => import('./kubeconfig.js'),
  config: () => import('./config.js'),
  waypoint: () => import('./waypoint.js'),
  'ztunnel-config': () => import('./ztunnel-config.js'),
  'proxy-status': () => import('./proxy-status.js'),
  analyze: () => import('./analyze.js'),
  dashboard: () => import('./dashboard.js'),
  version: () => import('./version.js'),
  precheck: () => import('./precheck.js'),
  controlplane: () => import('./controlplane.js'),
  ztunnel: () => import('./ztunnel.js'),
  proxy: () => import('./proxy.js'),
};

/** Registers the command named in `argv` alone when it is known, otherwise every command (for help and errors). */
export async function registerCommands(program: Command, argv: string[]): Promise<void> {
  const named = argv[2];
  const wanted = named !== undefined && Object.hasOwn(modules, named) ? [named] : Object.keys(modules);
  const loaded = await Promise.all(wanted.map((name) => modules[name]!()));
  for (const m of loaded) m.register(program);
}
