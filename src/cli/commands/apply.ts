// `ambit apply -f`: create or update objects in the running local cluster.
import type { Command } from 'commander';
import type { ApplyResult } from '../../local/cluster.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { loadManifests, printResults } from '../../local/manifests.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  withClusterOption(
    program
      .command('apply')
      .description('Create or update objects in the local cluster from manifests')
      .requiredOption('-f, --filename <path>', 'manifest file, directory or - for stdin (repeatable)', collect, [] as string[]),
  ).action(async (opts: { filename: string[]; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    const manifests = await loadManifests(opts.filename);
    let failed = manifests.failed;
    if (manifests.objects.length) {
      const { results } = await client.call<{ results: ApplyResult[] }>('POST', '/v1/apply', { objects: manifests.objects });
      failed = printResults(results, manifests.locations) || failed;
    }
    if (failed) process.exitCode = 1;
  });
}
