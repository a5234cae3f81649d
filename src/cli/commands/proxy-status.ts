// `ambit proxy-status`: istioctl proxy-status against the local cluster: every proxy connected to the control plane
// (ztunnels, waypoints), the xDS types it subscribed to with their sync status (SYNCED, STALE = last push not yet
// ACKed, ERROR = NACKed, NOT SENT), its version and the control plane serving it. Read from the control plane's
// /debug/syncz, on its loopback debug port, through the supervisor.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { DEFAULT_DEBUG_LISTEN, parseListen } from '../../controlplane/server.js';
import { proxyStatusTable, type Syncz } from '../proxy-status.js';
import { componentAdminGet } from './ztunnel-config.js';

/** The control plane's syncz, from the running local cluster. */
export async function fetchSyncz(client: ClusterClient): Promise<Syncz> {
  const [r] = await componentAdminGet(client, 'controlplane', parseListen(DEFAULT_DEBUG_LISTEN).port, '/debug/syncz');
  return JSON.parse(r!.body) as Syncz;
}

export function register(program: Command): void {
  withClusterOption(
    program
      .command('proxy-status')
      .alias('ps')
      .description('Show each proxy connected to the control plane, the xDS types it subscribed to and whether it is in sync, as istioctl proxy-status does')
      .option('-o, --output <format>', 'table, json or yaml', 'table')
      .option('-v, --verbosity <n>', '0: subscribed types; 1: a column per xDS type with its status', '0'),
  ).action(async (opts: { output: string; verbosity: string; cluster?: string }) => {
    if (!['table', 'json', 'yaml'].includes(opts.output)) throw new Error(`output format "${opts.output}" not supported`);
    const verbosity = Number(opts.verbosity);
    if (!Number.isInteger(verbosity) || verbosity < 0) throw new Error(`--verbosity must be 0 or 1, got "${opts.verbosity}"`);
    const syncz = await fetchSyncz(ClusterClient.fromOptions(opts));
    if (opts.output === 'json') process.stdout.write(`${JSON.stringify(syncz, null, 4)}\n`);
    else if (opts.output === 'yaml') process.stdout.write(stringify(syncz));
    else process.stdout.write(proxyStatusTable(syncz, verbosity));
  });
}
