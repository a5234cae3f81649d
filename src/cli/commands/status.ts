// `ambit status`: the local cluster's nodes, components and their health, and what is not ready yet.
import type { Command } from 'commander';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { age } from '../../common/duration.js';
import { componentsTable, nodesTable } from '../../local/format.js';

export function register(program: Command): void {
  withClusterOption(
    program
      .command('status')
      .description('Show the local cluster: supervisor, nodes, components and their health')
      .option('-o, --output <format>', 'json for the raw status'),
  ).action(async (opts: { output?: string; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    const status = await client.status();
    if (!status) {
      process.stdout.write(`Cluster "${client.name}" is not running (state directory ${client.layout.dir}).\n`);
      process.exitCode = 3;
      return;
    }
    if (opts.output === 'json') {
      process.stdout.write(JSON.stringify(status, null, 2) + '\n');
      return;
    }
    process.stdout.write(`Cluster "${status.cluster}": supervisor pid ${status.pid}, up ${age(status.startedAt)}, state in ${status.stateDir}\n\n`);
    process.stdout.write(nodesTable(status, true) + '\n');
    process.stdout.write(componentsTable(status));
    if (status.notReady.length) process.stdout.write(`\nNot ready:\n${status.notReady.map((p) => `  ${p}`).join('\n')}\n`);
    else process.stdout.write('\nEverything is ready.\n');
  });
}
