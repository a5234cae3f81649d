// `ambit waypoint`: istioctl's waypoint commands (generate, apply, list, status, delete) against the local cluster,
// with istioctl's flags, lines and tables (istioctl/pkg/waypoint/waypoint.go and its goldens), so the commands of
// Istio's waypoint guides work unchanged with `istioctl` replaced by `ambit`.
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { Gateway, Namespace } from '../../api/types.js';
import type { ApplyResult } from '../../local/cluster.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { table } from '../../local/format.js';
import { parseBool, parseDuration } from '../../common/settings.js';

const WAYPOINT_CLASS = 'istio-waypoint';
/** Sorted, as istioctl lists them in its help and errors. */
const TRAFFIC_TYPES = ['all', 'none', 'service', 'workload'];
const LABEL_WAYPOINT_FOR = 'istio.io/waypoint-for';
const LABEL_REV = 'istio.io/rev';
const LABEL_USE_WAYPOINT = 'istio.io/use-waypoint';
const LABEL_DATAPLANE_MODE = 'istio.io/dataplane-mode';
/** istioctl's tables are Go tabwriters with padding 5 that keep the spaces of empty last cells. */
const ISTIOCTL_TABLE = { padding: 5, trimEnd: false };
const POLL_INTERVAL_MS = 1000;

export interface WaypointSpec {
  name: string;
  /** Omitted from the YAML when undefined, as `istioctl waypoint generate` without -n does. */
  namespace?: string;
  trafficType?: string;
  revision?: string;
}

/** The waypoint Gateway istioctl generates and applies; throws istioctl's messages for a bad name or traffic type. */
export function makeWaypoint(spec: WaypointSpec): Gateway {
  if (spec.name === 'none') throw new Error("failed to create gateway: invalid name provided for waypoint, 'none' is a reserved value");
  const labels: Record<string, string> = {};
  // Without --for there is no label: the control plane then takes the GatewayClass's default (service).
  if (spec.trafficType !== undefined && spec.trafficType !== '') {
    if (!TRAFFIC_TYPES.includes(spec.trafficType)) {
      throw new Error(`failed to create gateway: invalid traffic type: ${spec.trafficType}. Valid options are: [${TRAFFIC_TYPES.join(' ')}]`);
    }
    labels[LABEL_WAYPOINT_FOR] = spec.trafficType;
  }
  if (spec.revision) labels[LABEL_REV] = spec.revision;
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name: spec.name || 'waypoint',
      ...(spec.namespace ? { namespace: spec.namespace } : {}),
      ...(Object.keys(labels).length ? { labels } : {}),
    },
    spec: { gatewayClassName: WAYPOINT_CLASS, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  };
}

/** YAML as istioctl prints it (sigs.k8s.io/yaml): keys sorted, list items not indented under their key. */
export function waypointYaml(gateway: Gateway): string {
  return stringify(gateway, { sortMapEntries: true, indentSeq: false });
}

/** Gateways of the waypoint class, by namespace then name. */
function onlyWaypoints(gateways: Gateway[]): Gateway[] {
  const byte = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return gateways
    .filter((g) => g.spec.gatewayClassName === WAYPOINT_CLASS)
    .sort((a, b) => byte(a.metadata.namespace ?? '', b.metadata.namespace ?? '') || byte(a.metadata.name, b.metadata.name));
}

const programmed = (g: Gateway) => g.status?.conditions?.find((c) => c.type === 'Programmed');
const isProgrammed = (g: Gateway) => programmed(g)?.status === 'True';

/**
 * `waypoint list`: REVISION is `default` and TRAFFIC TYPE `none` without their labels (istioctl shows `none` even
 * though the control plane then treats the waypoint as `service`), PROGRAMMED `False` without the condition.
 */
export function waypointListTable(gateways: Gateway[], allNamespaces: boolean): string {
  const waypoints = onlyWaypoints(gateways);
  if (waypoints.length === 0) return 'No waypoints found.\n';
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'];
  const rows = waypoints.map((g) => [
    ...(allNamespaces ? [g.metadata.namespace ?? ''] : []),
    g.metadata.name,
    g.metadata.labels?.[LABEL_REV] || 'default',
    g.metadata.labels?.[LABEL_WAYPOINT_FOR] || 'none',
    programmed(g)?.status ?? 'False',
  ]);
  return table(header, rows, ISTIOCTL_TABLE);
}

/** `waypoint status`: each waypoint's Programmed condition; empty cells until the control plane has reported one. */
export function waypointStatusTable(gateways: Gateway[], allNamespaces: boolean): string {
  const waypoints = onlyWaypoints(gateways);
  if (waypoints.length === 0) return 'No waypoints found.\n';
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'STATUS', 'TYPE', 'REASON', 'MESSAGE'];
  const rows = waypoints.map((g) => {
    const c = programmed(g);
    return [...(allNamespaces ? [g.metadata.namespace ?? ''] : []), g.metadata.name, c?.status ?? '', c?.type ?? '', c?.reason ?? '', c?.message ?? ''];
  });
  return table(header, rows, ISTIOCTL_TABLE);
}

/** What a timeout error says about a waypoint that never became Programmed. */
export function notProgrammedDetail(gateway: Gateway | undefined): string {
  if (!gateway) return 'the Gateway no longer exists';
  const c = programmed(gateway);
  if (!c) return 'no Programmed condition yet: the control plane has not reported on this Gateway';
  return `Programmed=${c.status}, reason ${c.reason || '(none)'}${c.message ? `: ${c.message}` : ''}`;
}

/** Which waypoints `delete` removes: the named ones (the rest are reported missing), or all / one revision's. */
export function selectForDeletion(
  waypoints: Gateway[],
  request: { names: string[]; all: boolean; revision?: string },
): { names: string[]; missing: string[] } {
  const existing = onlyWaypoints(waypoints);
  if (request.all || request.revision) {
    const names = existing.filter((g) => !request.revision || g.metadata.labels?.[LABEL_REV] === request.revision).map((g) => g.metadata.name);
    return { names, missing: [] };
  }
  const known = new Set(existing.map((g) => g.metadata.name));
  return { names: request.names.filter((n) => known.has(n)), missing: request.names.filter((n) => !known.has(n)) };
}

// ---- talking to the cluster ----------------------------------------------------------------------------------------

interface GlobalOptions {
  name: string;
  namespace: string;
  cluster?: string;
}

async function listGateways(client: ClusterClient, namespace: string | undefined): Promise<Gateway[]> {
  const query = namespace === undefined ? '' : `&namespace=${encodeURIComponent(namespace)}`;
  return (await client.call<{ items: Gateway[] }>('GET', `/v1/resources?kind=Gateway${query}`)).items;
}

async function getNamespace(client: ClusterClient, name: string): Promise<Namespace> {
  const { items } = await client.call<{ items: Namespace[] }>('GET', '/v1/resources?kind=Namespace');
  const ns = items.find((n) => n.metadata.name === name);
  if (!ns) throw new Error(`namespace: ${name} not found`);
  return ns;
}

async function applyObject(client: ClusterClient, object: Gateway | Namespace): Promise<void> {
  const { results } = await client.call<{ results: ApplyResult[] }>('POST', '/v1/apply', { objects: [object] });
  if (results[0]?.error) throw new Error(results[0].error);
}

/** Loads until `done` or the timeout; returns the last load either way (istioctl checks once a second). */
async function pollUntil<T>(load: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await load();
    if (done(value) || Date.now() >= deadline) return value;
    await sleep(Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())));
  }
}

const out = (line: string) => process.stdout.write(`${line}\n`);
/** `-w` alone means true; a value (istioctl's `--wait=false`) is parsed. */
const waitValue = (value: string) => parseBool(value, '--wait');

export function register(program: Command): void {
  const waypoint = withClusterOption(
    program
      .command('waypoint')
      .description('Manage waypoints as istioctl waypoint does: generate, apply, list, status, delete')
      .option('--name <name>', 'name of the waypoint', 'waypoint')
      .option('-n, --namespace <ns>', 'namespace of the waypoint', 'default'),
  ).configureHelp({ showGlobalOptions: true });
  const explicit = (option: string) => waypoint.getOptionValueSource(option) !== 'default';
  const trafficTypeHelp = `Specify the traffic type [${TRAFFIC_TYPES.join(' ')}] for the waypoint`;

  waypoint
    .command('generate')
    .summary('Generate a waypoint configuration')
    .description('Generate a waypoint configuration as YAML')
    .option('--for <type>', trafficTypeHelp)
    .option('-r, --revision <rev>', 'The revision to label the waypoint with')
    .action((_opts, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { for?: string; revision?: string }>();
      const namespace = explicit('namespace') ? o.namespace : undefined;
      process.stdout.write(waypointYaml(makeWaypoint({ name: o.name, namespace, trafficType: o.for, revision: o.revision })));
    });

  waypoint
    .command('apply')
    .summary('Apply a waypoint configuration')
    .description('Apply a waypoint configuration to the cluster')
    .option('--for <type>', trafficTypeHelp)
    .option('--enroll-namespace', 'If set, the namespace will be labeled with the waypoint name')
    .option('--overwrite', 'Overwrite the existing Waypoint used by the namespace')
    .option('-r, --revision <rev>', 'The revision to label the waypoint with')
    .option('-w, --wait [bool]', 'Wait for the waypoint to be ready', waitValue, false)
    .option('--waypoint-timeout <duration>', 'Timeout for waiting for waypoint ready', '90s')
    .action(async (_opts, cmd: Command) => {
      const o = cmd.optsWithGlobals<
        GlobalOptions & { for?: string; enrollNamespace?: boolean; overwrite?: boolean; revision?: string; wait: boolean; waypointTimeout: string }
      >();
      const timeoutMs = parseDuration(o.waypointTimeout, '--waypoint-timeout');
      const gateway = makeWaypoint({ name: o.name, namespace: o.namespace, trafficType: o.for, revision: o.revision });
      const { name } = gateway.metadata;
      const client = ClusterClient.fromOptions(o);
      const ns = await getNamespace(client, o.namespace);
      if (o.enrollNamespace) {
        const enrolled = ns.metadata.labels?.[LABEL_USE_WAYPOINT];
        if (enrolled && enrolled !== name && !o.overwrite) {
          out(`⚠️ Warning: namespace (${o.namespace}) already has an enrolled Waypoint. Consider adding the \`--overwrite\` flag to your apply command.`);
          return;
        }
        if (ns.metadata.labels?.[LABEL_DATAPLANE_MODE] !== 'ambient') {
          out(`⚠️ Warning: namespace is not enrolled in ambient. Consider running\t\`kubectl label namespace ${o.namespace} istio.io/dataplane-mode=ambient\``);
        }
      }
      await applyObject(client, gateway);
      out(`✅ waypoint ${o.namespace}/${name} applied`);
      if (o.wait) {
        const load = async () => (await listGateways(client, o.namespace)).find((g) => g.metadata.name === name);
        const last = await pollUntil(load, (g) => g !== undefined && isProgrammed(g), timeoutMs);
        if (!last || !isProgrammed(last)) throw new Error(`timed out while waiting for waypoint\t${o.namespace}/${name}: ${notProgrammedDetail(last)}`);
        out(`✅ waypoint ${o.namespace}/${name} is ready!`);
      }
      if (o.enrollNamespace) {
        // Read again: the namespace may have changed while the waypoint came up.
        const current = await getNamespace(client, o.namespace);
        current.metadata.labels = { ...current.metadata.labels, [LABEL_USE_WAYPOINT]: name };
        await applyObject(client, current).catch((err: Error) => {
          throw new Error(`failed to label namespace with waypoint: failed to update namespace ${o.namespace}: ${err.message}`);
        });
        out(`✅ namespace ${o.namespace} labeled with "${LABEL_USE_WAYPOINT}: ${name}"`);
      }
    });

  waypoint
    .command('list')
    .summary('List managed waypoint configurations')
    .description('List managed waypoint configurations in the cluster')
    .option('-A, --all-namespaces', 'List all waypoints in all namespaces')
    .action(async (_opts, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { allNamespaces?: boolean }>();
      const gateways = await listGateways(ClusterClient.fromOptions(o), o.allNamespaces ? undefined : o.namespace);
      process.stdout.write(waypointListTable(gateways, Boolean(o.allNamespaces)));
    });

  waypoint
    .command('status')
    .summary('Show the status of waypoints')
    .description('Show the status of waypoints in the cluster (only the one named by --name, when given)')
    .option('-A, --all-namespaces', 'Show the status of waypoints in all namespaces')
    .option('-w, --wait [bool]', 'Wait for the waypoint to be ready', waitValue, true)
    .option('--waypoint-timeout <duration>', 'Timeout for retrieving status for waypoint', '90s')
    .action(async (_opts, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { allNamespaces?: boolean; wait: boolean; waypointTimeout: string }>();
      const timeoutMs = parseDuration(o.waypointTimeout, '--waypoint-timeout');
      const client = ClusterClient.fromOptions(o);
      const named = explicit('name');
      const load = async () =>
        onlyWaypoints(await listGateways(client, o.allNamespaces ? undefined : o.namespace)).filter((g) => !named || g.metadata.name === o.name);
      const waypoints = await pollUntil(load, (gws) => !o.wait || gws.every(isProgrammed), timeoutMs);
      if (named && waypoints.length === 0) {
        throw new Error(o.allNamespaces ? `waypoint ${o.name} not found in any namespace` : `waypoint ${o.namespace}/${o.name} not found`);
      }
      const late = o.wait ? waypoints.find((g) => !isProgrammed(g)) : undefined;
      if (late) {
        throw new Error(
          `failed to print waypoint status: timed out while retrieving status for waypoint\t${late.metadata.namespace}/${late.metadata.name}: ${notProgrammedDetail(late)}`,
        );
      }
      process.stdout.write(waypointStatusTable(waypoints, Boolean(o.allNamespaces)));
    });

  waypoint
    .command('delete')
    .summary('Delete a waypoint configuration')
    .description('Delete a waypoint configuration from the cluster')
    .argument('[names...]', 'waypoints to delete')
    .option('--all', 'Delete all waypoints in the namespace')
    .option('-r, --revision <rev>', 'Delete the specified version of the waypoint in the namespace')
    .action(async (names: string[], _opts, cmd: Command) => {
      const o = cmd.optsWithGlobals<GlobalOptions & { all?: boolean; revision?: string }>();
      const byGroup = Boolean(o.all || o.revision);
      if (byGroup && names.length) throw new Error('cannot specify waypoint names when deleting all waypoints');
      if (!byGroup && !names.length) throw new Error('must specify a waypoint name or delete all using --all or delete specific revision using --revision');
      const client = ClusterClient.fromOptions(o);
      const chosen = selectForDeletion(await listGateways(client, o.namespace), { names, all: Boolean(o.all), revision: o.revision });
      for (const name of chosen.missing) out(`waypoint ${o.namespace}/${name} not found`);
      if (chosen.names.length === 0) return;
      const objects = chosen.names.map((name) => ({ kind: 'Gateway', metadata: { name, namespace: o.namespace } }));
      const { results } = await client.call<{ results: ApplyResult[] }>('POST', '/v1/delete', { objects });
      const errors: string[] = [];
      results.forEach((r, i) => {
        const target = `${o.namespace}/${chosen.names[i]}`;
        if (!r.error) out(`waypoint ${target} deleted`);
        // Gone between the listing and the delete: istioctl reports it like a name that never existed.
        else if (r.error.includes('(NotFound)')) out(`waypoint ${target} not found`);
        else errors.push(r.error);
      });
      if (errors.length) throw new Error(errors.join('\n'));
    });
}
