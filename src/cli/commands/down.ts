// `ambit down`: stop the local cluster and remove everything it created, also after a supervisor crash.
import { existsSync, rmSync } from 'node:fs';
import type { Command } from 'commander';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { contextName, kubeconfigPaths, parseClusterKubeconfig, removeContext } from '../../local/kubeconfig.js';
import { Ledger, cleanUp } from '../../local/ledger.js';
import { isAlive } from '../../local/sys.js';

export function register(program: Command): void {
  withClusterOption(
    program
      .command('down')
      .description('Stop the local cluster and remove its namespaces, processes and state, and its kubectl context')
      .option('--kubeconfig <path>', 'kubeconfig file to remove the context ambit-<cluster> from (default: every file of $KUBECONFIG, else ~/.kube/config)'),
  ).action(async (opts: { cluster?: string; kubeconfig?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    // First, as kind does: the context goes even if removing the cluster fails, and a kubeconfig that cannot be
    // edited does not keep the cluster alive.
    try {
      const removedFrom = await removeContext(kubeconfigPaths(opts.kubeconfig), client.name, { servers: ownServer(client) });
      for (const file of removedFrom) process.stdout.write(`Removed kubectl context "${contextName(client.name)}" from ${file}\n`);
    } catch (err) {
      process.stderr.write(`error: could not remove the kubectl context "${contextName(client.name)}": ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
    const status = await client.status().catch(() => undefined);
    if (status) {
      // The supervisor removes what it created; wait for it to exit, then sweep anything left (e.g. if it hangs).
      await client.call('POST', '/v1/shutdown', {}).catch(() => undefined);
      const deadline = Date.now() + 60_000;
      while (isAlive(status.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    }
    if (!existsSync(client.layout.dir)) {
      process.stdout.write(`Cluster "${client.name}" does not exist.\n`);
      return;
    }
    const problems = await cleanUp(new Ledger(client.layout.ledger), { removeDir: client.layout.dir });
    if (problems.length) throw new Error(`could not remove everything of cluster "${client.name}":\n  ${problems.join('\n  ')}`);
    rmSync(client.layout.dir, { recursive: true, force: true });
    process.stdout.write(`Deleted cluster "${client.name}".\n`);
  });
}

/**
 * The server in the cluster's own kubeconfig, whose kubectl discovery cache goes with the cluster even when the
 * user's kubeconfig no longer names it. A missing or damaged file only means there is nothing more to clear.
 */
function ownServer(client: ClusterClient): string[] {
  try {
    const text = client.kubeconfig();
    return text === undefined ? [] : [parseClusterKubeconfig(text, client.layout.kubeconfig).server];
  } catch {
    return [];
  }
}
