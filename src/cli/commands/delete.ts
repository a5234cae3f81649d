// `ambit delete`: remove objects from the local cluster, named by manifests (-f) or as KIND NAME….
import type { Command } from 'commander';
import type { ApplyResult } from '../../local/cluster.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { lookupModelKind } from '../../api/kinds.js';
import { loadManifests, printResults } from '../../local/manifests.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  withClusterOption(
    program
      .command('delete')
      .description('Delete objects from the local cluster (by manifest with -f, or KIND NAME...)')
      .argument('[kind]', 'kind of the objects to delete, e.g. pod, deployment, svc, authorizationpolicy')
      .argument('[names...]', 'names of the objects')
      .option('-f, --filename <path>', 'manifest file, directory or - for stdin (repeatable)', collect, [] as string[])
      .option('-n, --namespace <ns>', 'namespace of named objects', 'default'),
  ).action(async (kindWord: string | undefined, names: string[], opts: { filename: string[]; namespace: string; cluster?: string }) => {
    const client = ClusterClient.fromOptions(opts);
    let refs: { apiVersion?: string; kind: string; metadata: { name: string; namespace?: string } }[] = [];
    let locations: string[] | undefined;
    let failed = false;
    if (opts.filename.length) {
      if (kindWord) throw new Error('give either -f or KIND NAME..., not both');
      // As kubectl delete: the objects are only named, so their other fields are not validated.
      const manifests = await loadManifests(opts.filename, 'ignore');
      refs = manifests.objects;
      locations = manifests.locations;
      failed = manifests.failed;
    } else {
      if (!kindWord || names.length === 0) throw new Error('nothing to delete: give -f PATH or KIND NAME...');
      const info = lookupModelKind(kindWord);
      if (!info) throw new Error(`the server doesn't have a resource type "${kindWord}"`);
      refs = names.map((name) => ({ kind: info.kind, metadata: { name, namespace: opts.namespace } }));
    }
    if (refs.length) {
      const { results } = await client.call<{ results: ApplyResult[] }>('POST', '/v1/delete', { objects: refs }, { timeoutMs: 300_000 });
      failed = printResults(results, locations) || failed;
    }
    if (failed) process.exitCode = 1;
  });
}
