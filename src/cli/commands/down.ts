// `ambit down`: stop the local cluster and remove everything it created, also after a supervisor crash.
import { existsSync, rmSync } from 'node:fs';
import type { Command } from 'commander';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { Ledger, cleanUp } from '../../local/ledger.js';
import { isAlive } from '../../local/sys.js';

export function register(program: Command): void {
  withClusterOption(
    program.command('down').description('Stop the local cluster and remove its namespaces, processes and state'),
  ).action(async (opts: { cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
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
