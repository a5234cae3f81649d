// `ambit up`: start the local cluster if needed, apply manifests, wait until every pod is ready, print a summary.
import type { Command } from 'commander';
import type { Resource } from '../../api/types.js';
import type { ApplyResult } from '../../local/cluster.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { kubeconfigPathForMerge, mergeContext, parseClusterKubeconfig } from '../../local/kubeconfig.js';
import { nodesTable, resourceTable } from '../../local/format.js';
import { DEFAULT_NODES, MAX_NODES } from '../../local/layout.js';
import { loadManifests, parseValidate, printResults } from '../../local/manifests.js';
import { ambitCommand } from '../invocation.js';
import type { SupervisorStatus } from '../../local/supervisor.js';

const collect = (value: string, previous: string[]) => [...previous, value];

// How long a new supervisor may take to write the cluster's kubeconfig after it answers: its API server starts with it.
const KUBECONFIG_WAIT_MS = 30_000;

export function register(program: Command): void {
  withClusterOption(
    program
      .command('up')
      .description('Start the local cluster (network namespaces as nodes and pods) and apply manifests to it')
      .option('-f, --filename <path>', 'manifest file, directory or - for stdin (repeatable)', collect, [] as string[])
      .option('--nodes <n>', `number of nodes when creating the cluster (default ${DEFAULT_NODES})`)
      .option('--timeout <seconds>', 'how long to wait for every pod to be ready', '180')
      .option('--kubeconfig <path>', 'kubeconfig file to add the context ambit-<cluster> to (default: $KUBECONFIG, else ~/.kube/config)')
      .option('--validate [mode]', 'unknown fields in the manifests: strict (or true) refuses the object, warn prints a warning, ignore (or false) drops them', 'strict'),
  ).action(async (opts: { filename: string[]; nodes?: string; timeout: string; validate: string | boolean; cluster?: string; kubeconfig?: string }) => {
    const nodes = opts.nodes === undefined ? DEFAULT_NODES : Number(opts.nodes);
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new Error(`--nodes must be an integer from 1 to ${MAX_NODES}, got "${opts.nodes}"`);
    const timeout = Number(opts.timeout);
    if (!(timeout >= 0)) throw new Error(`--timeout must be a number of seconds, got "${opts.timeout}"`);
    const validate = parseValidate(opts.validate);
    const client = ClusterClient.fromOptions(opts);
    // Read the manifests first: a typo should not cost a cluster start.
    const manifests = opts.filename.length ? await loadManifests(opts.filename, validate) : { objects: [] as Resource[], locations: [], failed: false };
    const started = await client.ensureRunning(nodes, (line) => process.stderr.write(line + '\n'));
    let status = await client.call<SupervisorStatus>('GET', '/v1/status');
    if (started) process.stdout.write(`Cluster "${client.name}" created with ${status.nodes.length} node(s) (state in ${client.layout.dir})\n`);
    else if (opts.nodes !== undefined && status.nodes.length !== nodes) {
      process.stderr.write(`warning: cluster "${client.name}" is already running with ${status.nodes.length} node(s); --nodes ${nodes} ignored (ambit down first to change it)\n`);
    }
    let failed = manifests.failed;
    // As kind does on create, so kubectl reaches the new cluster: only then, or when asked with --kubeconfig, since
    // every later `up` (to apply more) would otherwise switch the user's current context back.
    let context: string | undefined;
    if (started || opts.kubeconfig !== undefined) {
      try {
        context = await setKubectlContext(client, opts.kubeconfig);
        process.stdout.write(`Set kubectl context to "${context}"\n`);
      } catch (err) {
        process.stderr.write(`error: could not set the kubectl context: ${(err as Error).message}\n`);
        failed = true;
      }
    }
    if (manifests.objects.length) {
      const { results } = await client.call<{ results: ApplyResult[] }>('POST', '/v1/apply', { objects: manifests.objects });
      failed = printResults(results, manifests.locations) || failed;
    }
    const { pending } = await client.call<{ pending: string[] }>('POST', '/v1/wait', { timeoutMs: timeout * 1000 }, { timeoutMs: timeout * 1000 + 30_000 });
    status = await client.call<SupervisorStatus>('GET', '/v1/status');
    const { items } = await client.call<{ items: Resource[] }>('GET', '/v1/resources?kind=Pod');
    process.stdout.write('\n' + nodesTable(status, true));
    if (items.length) process.stdout.write('\n' + resourceTable(items, { wide: true, allNamespaces: true, qualified: false }));
    if (pending.length) {
      process.stderr.write(`\nnot ready after ${timeout}s:\n${pending.map((p) => `  ${p}`).join('\n')}\n`);
      process.exitCode = 1;
      return;
    }
    const services = (await client.call<{ items: Resource[] }>('GET', '/v1/resources?kind=Service')).items;
    process.stdout.write(`\nCluster "${client.name}" is ready. Try:\n${nextSteps(client.name, items, services)}`);
    if (context) {
      // kind's words; the file is named when it is not one kubectl reads by itself.
      const where = opts.kubeconfig === undefined ? '' : ` --kubeconfig ${shellQuote(opts.kubeconfig)}`;
      process.stdout.write(`\nYou can now use your cluster with:\n\nkubectl cluster-info --context ${context}${where}\n`);
    }
    if (failed) process.exitCode = 1;
  });
}

/** Merges the cluster's kubeconfig into the user's (see src/local/kubeconfig.ts); returns the context's name. */
async function setKubectlContext(client: ClusterClient, explicit: string | undefined): Promise<string> {
  const deadline = Date.now() + KUBECONFIG_WAIT_MS;
  let text: string | undefined;
  while ((text = client.kubeconfig()) === undefined) {
    if (Date.now() > deadline) {
      throw new Error(`cluster "${client.name}" wrote no kubeconfig to ${client.layout.kubeconfig} within ${KUBECONFIG_WAIT_MS / 1000}s; see ${client.layout.supervisorLog}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const cluster = parseClusterKubeconfig(text, client.layout.kubeconfig);
  return mergeContext(await kubeconfigPathForMerge(explicit), cluster);
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Commands worth trying next, with a real pod and Service of this cluster: a request through the mesh, then the
 * identities ztunnel logged for it. Spelled as this CLI can be run again (`ambit` only when it is on PATH).
 */
function nextSteps(cluster: string, pods: Resource[], services: Resource[]): string {
  const flag = cluster === (process.env.AMBIT_CLUSTER ?? 'ambit') ? '' : ` --cluster ${cluster}`;
  const ambit = ambitCommand();
  const lines = [`${ambit} get pods -A -o wide${flag}`];
  const pod = pods.find((r) => r.kind === 'Pod' && r.status?.phase === 'Running');
  if (pod) {
    // A Service of another namespace shows the mesh across namespaces (and nodes, usually).
    const ns = pod.metadata.namespace!;
    const svc = services.find((s) => s.kind === 'Service' && s.metadata.namespace !== ns && s.spec.ports?.length);
    const port = svc?.kind === 'Service' ? svc.spec.ports?.[0]?.port : undefined;
    if (svc && port !== undefined) lines.push(`${ambit} exec ${ns}/${pod.metadata.name}${flag} -- ambit-client http://${svc.metadata.name}.${svc.metadata.namespace}:${port}/ -n 5`);
  }
  lines.push(`${ambit} logs ztunnel --node node-1${flag} | grep identity    # each connection's mTLS identities`, `${ambit} status${flag}`);
  return lines.map((l) => `  ${l}\n`).join('');
}
