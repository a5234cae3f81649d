// `ambit config ztunnel|waypoint -f PATH…`: translate configuration files offline, exactly as the control plane
// would, and print what a ztunnel (in the shape of ztunnel's /config_dump) or one waypoint (its ambit.waypoint
// resources) would receive, plus the status conditions the control plane would write.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Gateway } from '../../api/types.js';
import { formatIssue, loadPaths, type ConfigIssue } from '../../config/loader.js';
import { ConfigStore } from '../../model/store.js';
import { AmbientIndex } from '../../model/ambient.js';
import { renderConfigDump, renderWaypointConfig, waypointKeys } from '../../model/configdump.js';
import { WAYPOINT_CLASS } from '../../model/waypoints.js';
import { deployWaypoints } from '../offline.js';

const FORMATS = ['json', 'yaml'];

function checkFormat(output: string): void {
  if (!FORMATS.includes(output)) {
    throw new Error(`unknown output format "${output}" for -o/--output (expected one of: ${FORMATS.join(', ')})`);
  }
}

/**
 * Loads the files into a store, reporting every issue on stderr (what did load is still used). An object with an
 * unknown field is left out, as the cluster would refuse it; kinds no cluster of the mesh serves are skipped with a
 * warning, since manifests hold more than the mesh's configuration.
 */
async function loadStore(paths: string[]): Promise<{ store: ConfigStore; issues: ConfigIssue[] }> {
  const { objects, issues } = await loadPaths(paths, undefined, { unknownKinds: 'warning' });
  for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
  const store = new ConfigStore();
  store.apply(objects.map((o) => o.resource));
  return { store, issues };
}

function print(doc: unknown, output: string, issues: ConfigIssue[]): void {
  // One bad document should not hide the translation of the rest, but it fails the command.
  process.stdout.write(output === 'yaml' ? stringify(doc) : `${JSON.stringify(doc, null, 2)}\n`);
  if (issues.some((i) => i.severity === 'error')) process.exitCode = 1;
}

/** The waypoint to show: the one named (`NS/NAME`), else the only one in the files. */
function selectWaypoint(store: ConfigStore, ref: string | undefined): string {
  const found = waypointKeys(store);
  const listing = found.length > 0 ? `waypoints (Gateways of class ${WAYPOINT_CLASS}) in the files: ${found.join(', ')}` : `the files hold no waypoint (Gateway of class ${WAYPOINT_CLASS})`;
  if (ref === undefined) {
    if (found.length === 1) return found[0]!;
    if (found.length === 0) throw new Error(`no waypoint to show: ${listing}`);
    throw new Error(`several waypoints in the files, name one as NS/NAME: ${found.join(', ')}`);
  }
  const parts = ref.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`waypoint "${ref}": expected NS/NAME (the waypoint Gateway's namespace and name)`);
  if (found.includes(ref)) return ref;
  const g = store.get(`Gateway/${ref}`) as Gateway | undefined;
  const why = g === undefined ? `no Gateway ${ref} in the files` : `Gateway ${ref} is of class "${g.spec.gatewayClassName}", not ${WAYPOINT_CLASS}`;
  throw new Error(`unknown waypoint "${ref}": ${why}; ${listing}`);
}

export function register(program: Command): void {
  const config = program.command('config').description('Inspect the configuration the control plane derives from your files');
  config
    .command('ztunnel')
    .description("Print the workloads, services and policies ztunnel would receive, like ztunnel's /config_dump")
    .requiredOption('-f, --filename <path...>', 'files or directories (*.yaml, *.yml, *.json) to read; - for stdin')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .action(async (opts: { filename: string[]; output: string }) => {
      checkFormat(opts.output);
      const { store, issues } = await loadStore(opts.filename);
      print(renderConfigDump(new AmbientIndex(store)), opts.output, issues);
    });
  config
    .command('waypoint')
    .argument('[NS/NAME]', 'the waypoint Gateway (class istio-waypoint); optional when the files hold only one')
    .description('Print what a waypoint would receive: itself, its bound Services with their routes in evaluation order, its policies, and the status of the Services, routes and policies involved')
    .requiredOption('-f, --filename <path...>', 'files or directories (*.yaml, *.yml, *.json) to read; - for stdin')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .action(async (ref: string | undefined, opts: { filename: string[]; output: string }) => {
      checkFormat(opts.output);
      const { store, issues } = await loadStore(opts.filename);
      const key = selectWaypoint(store, ref);
      deployWaypoints(store);
      const dump = renderWaypointConfig(new AmbientIndex(store), key);
      if (dump === undefined) throw new Error(`waypoint "${key}" received no configuration`);
      print(dump, opts.output, issues);
    });
}
