// `ambit get`: list nodes, namespaces, pods, services, deployments, config objects, or all, kubectl style.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { isNamespaced, type Kind, type Resource } from '../../api/types.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { nodesTable, resourceTable } from '../../local/format.js';
import { lookupModelKind, qualifiedResource } from '../../api/kinds.js';
import { parseSelector } from '../../api/label-selector.js';
import type { SupervisorStatus } from '../../local/supervisor.js';

const OUTPUTS = ['wide', 'json', 'yaml'];

export function register(program: Command): void {
  withClusterOption(
    program
      .command('get')
      .description('List objects of the local cluster: nodes, namespaces, pods, services, deployments, all, or any applied kind')
      .argument('<what>', 'nodes | namespaces | pods | services | deployments | all | any kind (e.g. authorizationpolicies)')
      .argument('[name]', 'only the object with this name')
      .option('-n, --namespace <ns>', 'namespace to list', 'default')
      .option('-A, --all-namespaces', 'list objects of every namespace')
      .option('-l, --selector <selector>', "label selector, e.g. -l 'app=web,tier in (front,back),!canary'")
      .option('-o, --output <format>', 'wide | json | yaml'),
  ).action(async (what: string, name: string | undefined, opts: { namespace: string; allNamespaces?: boolean; selector?: string; output?: string; cluster?: string }) => {
    if (opts.output && !OUTPUTS.includes(opts.output)) throw new Error(`unknown output format "${opts.output}": use one of ${OUTPUTS.join(', ')}`);
    if (name && opts.selector?.trim()) throw new Error('name cannot be provided when a selector is specified');
    const selector = parseSelector(opts.selector ?? '');
    const wanted = (metadata: { name: string; labels?: Record<string, string> }) => (!name || metadata.name === name) && selector.matches(metadata.labels);
    const client = ClusterClient.fromOptions(opts);
    const structured = opts.output === 'json' || opts.output === 'yaml';
    const emit = (items: unknown[]) => {
      const value = name && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } };
      process.stdout.write(opts.output === 'json' ? JSON.stringify(value, null, 4) + '\n' : stringify(value));
    };
    const w = what.toLowerCase();
    if (['nodes', 'node', 'no'].includes(w)) {
      const status = await client.call<SupervisorStatus>('GET', '/v1/status');
      // The labels every kubelet puts on its Node, so that `-l kubernetes.io/hostname=node-1` works as it does there.
      const nodeLabels = (node: string) => ({ 'kubernetes.io/hostname': node, 'kubernetes.io/os': 'linux' });
      const nodes = status.nodes.filter((n) => wanted({ name: n.name, labels: nodeLabels(n.name) }));
      if (name && nodes.length === 0) throw new Error(`Error from server (NotFound): nodes "${name}" not found`);
      if (structured) emit(nodes.map((n) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name, labels: nodeLabels(n.name), creationTimestamp: n.createdAt }, spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] }, status: { addresses: [{ type: 'InternalIP', address: n.ip }] } })));
      else if (nodes.length === 0) process.stderr.write('No resources found\n');
      else process.stdout.write(nodesTable({ ...status, nodes }, opts.output === 'wide'));
      return;
    }
    const kinds: (Kind | undefined)[] = w === 'all' ? ['Pod', 'Service', 'Deployment'] : [lookupModelKind(w)?.kind];
    if (!kinds[0]) throw new Error(`the server doesn't have a resource type "${what}"`);
    const nsQuery = opts.allNamespaces ? '' : `&namespace=${encodeURIComponent(opts.namespace)}`;
    const groups: Resource[][] = [];
    for (const kind of kinds) {
      const { items } = await client.call<{ items: Resource[] }>('GET', `/v1/resources?kind=${kind}${nsQuery}`);
      groups.push(items.filter((r) => wanted(r.metadata)));
    }
    const all = groups.flat();
    if (name && all.length === 0) throw new Error(`Error from server (NotFound): ${(() => { const t = lookupModelKind(w); return t ? qualifiedResource(t) : w; })()} "${name}" not found`);
    if (structured) return emit(all);
    if (all.length === 0) {
      const namespaced = w === 'all' || isNamespaced(kinds[0]!);
      process.stderr.write(namespaced && !opts.allNamespaces ? `No resources found in ${opts.namespace} namespace.\n` : 'No resources found\n');
      return;
    }
    const allNamespaces = Boolean(opts.allNamespaces) && all.some((r) => isNamespaced(r.kind));
    const out = groups.filter((g) => g.length).map((g) => resourceTable(g, { wide: opts.output === 'wide', allNamespaces, qualified: w === 'all' }));
    process.stdout.write(out.join('\n'));
  });
}
