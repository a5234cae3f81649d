// `ambit apply -f`: create or update objects in the running local cluster.
import type { Command } from 'commander';
import type { ApplyResult } from '../../local/cluster.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { loadManifests, parseValidate, printResults } from '../../local/manifests.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  withClusterOption(
    program
      .command('apply')
      .description('Create or update objects in the local cluster from manifests')
      .requiredOption('-f, --filename <path>', 'manifest file, directory or - for stdin (repeatable)', collect, [] as string[])
      .option('--validate [mode]', 'unknown fields: strict (or true) refuses the object, warn prints a warning, ignore (or false) drops them', 'strict'),
  ).action(async (opts: { filename: string[]; validate: string | boolean; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    const manifests = await loadManifests(opts.filename, parseValidate(opts.validate));
    let failed = manifests.failed;
    if (manifests.objects.length) {
      const { results } = await client.call<{ results: ApplyResult[] }>('POST', '/v1/apply', { objects: manifests.objects });
      failed = printResults(results, manifests.locations) || failed;
    }
    if (failed) process.exitCode = 1;
  });
}
