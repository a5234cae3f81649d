// `ambit ztunnel-config workload|service|policy|certificate|connections|all`: istioctl ztunnel-config against the
// local cluster's RUNNING ztunnels. The supervisor GETs each node's ztunnel /config_dump on its loopback admin port;
// the tables are istioctl's (src/cli/ztunnel-config.ts). Without --node the nodes' dumps are merged: the shared
// workloads, services and policies once, every node's certificates and connections.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { ADMIN_PORT } from '../../telemetry/admin.js';
import {
  ZTUNNEL_CONFIG_ALIASES,
  certificateSummary,
  connectionsSummary,
  filterPolicies,
  filterServices,
  filterWorkloadStates,
  filterWorkloads,
  fullSummary,
  mergeDumps,
  parseDump,
  policySummary,
  serviceSummary,
  workloadSummary,
  type ZtunnelDump,
} from '../ztunnel-config.js';

const FORMATS = ['short', 'json', 'yaml'];

interface CommonOptions {
  node?: string;
  output: string;
  cluster?: string;
}

export interface AdminResult {
  node?: string;
  status: number;
  body: string;
  error?: string;
}

/** GETs `path` from a component's admin port on every node (or one); fails naming the nodes that did not answer. */
export async function componentAdminGet(client: ClusterClient, name: string, port: number, path: string, node?: string): Promise<AdminResult[]> {
  const query = new URLSearchParams({ name, port: String(port), path, ...(node ? { node } : {}) });
  const { results } = await client.call<{ results: AdminResult[] }>('GET', `/v1/component/admin?${query}`, undefined, { timeoutMs: 30_000 });
  const failed = results.filter((r) => r.error !== undefined || r.status !== 200);
  if (failed.length > 0) {
    const why = failed.map((r) => `${name}${r.node ? ` on ${r.node}` : ''}: ${r.error ?? `HTTP ${r.status}: ${r.body.trim()}`}`);
    throw new Error(`cannot read ${path}: ${why.join('; ')}`);
  }
  return results;
}

async function fetchDump(opts: CommonOptions): Promise<ZtunnelDump> {
  if (!FORMATS.includes(opts.output)) throw new Error(`output format "${opts.output}" not supported (expected one of: ${FORMATS.join(', ')})`);
  const results = await componentAdminGet(ClusterClient.fromOptions(opts), 'ztunnel', ADMIN_PORT, '/config_dump', opts.node);
  return mergeDumps(results.map((r) => parseDump(r.body)));
}

/** -o json|yaml as istioctl prints a section: the items themselves, 4-space JSON. */
function printItems(items: unknown, output: string): void {
  process.stdout.write(output === 'yaml' ? stringify(items) : `${JSON.stringify(items, null, 4)}\n`);
}

function common(cmd: Command): Command {
  return cmd.option('--node <name>', 'read the ztunnel of this node only (default: every node, merged)').option('-o, --output <format>', 'short, json or yaml', 'short');
}

export function register(program: Command): void {
  const zc = withClusterOption(
    program
      .command('ztunnel-config')
      .alias('zc')
      .description("Show the running ztunnels' configuration and connections, as istioctl ztunnel-config does (read from each node's /config_dump)"),
  ).configureHelp({ showGlobalOptions: true });

  common(zc.command('workload').aliases(ZTUNNEL_CONFIG_ALIASES.workload).description('Workloads the ztunnels know'))
    .option('--workload-namespace <ns>', 'only workloads of this namespace')
    .option('--workload-node <node>', 'only workloads on this node')
    .option('--address <ip>', 'only the workload with this address')
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<CommonOptions & { workloadNamespace?: string; workloadNode?: string; address?: string }>();
      const d = await fetchDump(opts);
      const filter = { namespace: opts.workloadNamespace, node: opts.workloadNode, address: opts.address };
      if (opts.output === 'short') process.stdout.write(workloadSummary(d, filter));
      else printItems(filterWorkloads(d, filter), opts.output);
    });

  common(zc.command('service').aliases(ZTUNNEL_CONFIG_ALIASES.service).description('Services the ztunnels know'))
    .option('--service-namespace <ns>', 'only services of this namespace')
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<CommonOptions & { serviceNamespace?: string }>();
      const d = await fetchDump(opts);
      if (opts.output === 'short') process.stdout.write(serviceSummary(d, opts.serviceNamespace));
      else printItems(filterServices(d, opts.serviceNamespace), opts.output);
    });

  common(zc.command('policy').aliases(ZTUNNEL_CONFIG_ALIASES.policy).description('Authorization policies the ztunnels enforce'))
    .option('--policy-namespace <ns>', 'only policies of this namespace')
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<CommonOptions & { policyNamespace?: string }>();
      const d = await fetchDump(opts);
      if (opts.output === 'short') process.stdout.write(policySummary(d, opts.policyNamespace));
      else printItems(filterPolicies(d, opts.policyNamespace), opts.output);
    });

  common(zc.command('certificate').aliases(ZTUNNEL_CONFIG_ALIASES.certificate).description('Workload certificates the ztunnels hold'))
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<CommonOptions>();
      const d = await fetchDump(opts);
      if (opts.output === 'short') process.stdout.write(certificateSummary(d));
      else printItems(d.certificates, opts.output);
    });

  common(zc.command('connections').aliases(ZTUNNEL_CONFIG_ALIASES.connections).description("Captured pods' open connections"))
    .option('--direction <dir>', 'inbound or outbound only')
    .option('--raw', 'show addresses instead of service and workload names')
    .option('--workload-namespace <ns>', 'only workloads of this namespace')
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<CommonOptions & { direction?: string; raw?: boolean; workloadNamespace?: string }>();
      if (opts.direction !== undefined && opts.direction !== 'inbound' && opts.direction !== 'outbound') {
        throw new Error(`--direction must be inbound or outbound, got "${opts.direction}"`);
      }
      const d = await fetchDump(opts);
      const filter = { namespace: opts.workloadNamespace, direction: opts.direction as 'inbound' | 'outbound' | undefined, raw: opts.raw };
      if (opts.output === 'short') process.stdout.write(connectionsSummary(d, filter));
      else printItems(filterWorkloadStates(d, filter), opts.output);
    });

  common(zc.command('all').description('Every table above; -o json|yaml prints the whole dump'))
    .option('--with-headers', 'a heading above each table')
    .action(async (_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<CommonOptions & { withHeaders?: boolean }>();
      const d = await fetchDump(opts);
      if (opts.output === 'short') process.stdout.write(fullSummary(d, opts.withHeaders ?? false));
      else printItems(d, opts.output);
    });
}
