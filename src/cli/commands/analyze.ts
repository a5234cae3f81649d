// `ambit analyze [FILE…]`: istioctl analyze for an ambient mesh. Reads the running local cluster (unless
// --use-kube=false) and the files given, lets files replace the cluster's objects of the same name, and prints the
// analyzers' messages with Istio's codes, texts, output formats, thresholds, suppressions and exit codes
// (79: issues at or above --failure-threshold; 65: files that could not be parsed).
import type { Command } from 'commander';
import { ROOT_NAMESPACE, resourceKey, type Resource } from '../../api/types.js';
import { analyze, atLeast, formatMessages, listAnalyzers, originOf, type AnalyzedObject, type ForeignObject, type Message, type OutputFormat, type Suppression } from '../../analysis/analyze.js';
import { LEVELS, MESSAGES, isKnownCode, type Level } from '../../analysis/messages.js';
import { formatIssue, loadPaths, type ConfigIssue, type OtherObject } from '../../config/loader.js';
import { RESOURCE_TYPES } from '../../api/kinds.js';
import { isRecord } from '../../api/schemas/common.js';
import { ClusterClient, withClusterOption } from '../../local/client.js';
import { AmbientIndex } from '../../model/ambient.js';
import { ConfigStore } from '../../model/store.js';
import { deployWaypoints } from '../offline.js';

const FORMATS: OutputFormat[] = ['log', 'json', 'yaml'];
const EXIT_DATA_ERROR = 65;
const EXIT_ANALYZER_FOUND_ISSUES = 79;
const ANALYSIS_DOCS = 'https://istio.io/latest/docs/reference/config/analysis';
/** The registry's types of the kinds in ForeignObject: networking.istio.io's Sidecar, EnvoyFilter and Gateway. */
const FOREIGN_TYPES = RESOURCE_TYPES.filter((t) => t.group === 'networking.istio.io' && ['Sidecar', 'EnvoyFilter', 'Gateway'].includes(t.kind));

interface Options {
  filename?: string[];
  useKube: string;
  allNamespaces?: boolean;
  namespace?: string;
  output: string;
  suppress: string[];
  failureThreshold: string;
  outputThreshold: string;
  listAnalyzers?: boolean;
  analyzer: string[];
  ignoreUnknown?: boolean;
  cluster?: string;
}

function parseLevel(flag: string, value: string): Level {
  const level = LEVELS.find((l) => l.toUpperCase() === value.toUpperCase());
  if (!level) throw new Error(`invalid argument "${value}" for "${flag}" flag: ${JSON.stringify(value)} not a valid option, please choose from: [${LEVELS.map((l) => l.toUpperCase()).join(' ')}]`);
  return level;
}

function parseSuppressions(values: string[]): Suppression[] {
  return values.map((s) => {
    const parts = s.split('=');
    if (parts.length !== 2) throw new Error(`${s} is not a valid suppression value. See ambit analyze --help`);
    if (!isKnownCode(parts[0]!)) process.stderr.write(`Warning: Supplied message code '${parts[0]}' is an unknown message code and will not have any effect.\n`);
    return { code: parts[0]!, resource: parts[1]! };
  });
}

function parseBool(flag: string, value: string): boolean {
  if (['true', '1', 't'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'f'].includes(value.toLowerCase())) return false;
  throw new Error(`invalid argument "${value}" for "${flag}" flag: expected true or false`);
}

const isStringMap = (v: unknown): v is Record<string, string> =>
  v === undefined || (isRecord(v) && Object.values(v).every((x) => typeof x === 'string'));
const isStringList = (v: unknown): v is string[] => v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string'));

/** An object of a kind the mesh does not read, as written: from a file (where it starts) or from the cluster. */
export type WrittenObject = Pick<OtherObject, 'raw' | 'type'> & { location?: OtherObject['location'] };

// The shape of the spec fields the analyzers read, per foreign kind.
function specProblems(kind: string, spec: Record<string, unknown>): string[] {
  if (kind === 'Gateway') {
    const servers = spec.servers;
    if (servers === undefined) return [];
    if (!Array.isArray(servers)) return ['spec.servers: expected a list'];
    return servers.flatMap((server: unknown, i) => {
      if (!isRecord(server)) return [`spec.servers[${i}]: expected a mapping`];
      return isStringList(server.hosts) ? [] : [`spec.servers[${i}].hosts: expected a list of strings`];
    });
  }
  const selector = spec.workloadSelector;
  return selector !== undefined && (!isRecord(selector) || !isStringMap(selector.labels)) ? ['spec.workloadSelector.labels: expected a map of strings'] : [];
}

/** One foreign object read: what the analyzers see of it, or the problems that keep it out. */
interface ForeignRead {
  /** `Kind/namespace/name`: a file's object replaces the cluster's with the same key, as for the mesh's kinds. */
  key: string;
  object?: ForeignObject;
  invalid: Message[];
}

/**
 * A kind the mesh does not read but analyze has something to say about (Sidecar, EnvoyFilter, Istio's Gateway), read as
 * it is: only the fields the analyzers use are checked, and an object whose are malformed is reported (IST0106) and
 * left out. Undefined for any other kind, and for an object without a name.
 */
function readForeign(u: WrittenObject, defaultNamespace: string): ForeignRead | undefined {
  const kind = u.type.kind;
  const meta = isRecord(u.raw.metadata) ? u.raw.metadata : {};
  if (!FOREIGN_TYPES.includes(u.type) || typeof meta.name !== 'string' || meta.name === '') return undefined;
  const namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : defaultNamespace;
  const spec = u.raw.spec ?? {};
  const problems = [
    ...(isStringMap(meta.labels) ? [] : ['metadata.labels: expected a map of strings']),
    ...(isStringMap(meta.annotations) ? [] : ['metadata.annotations: expected a map of strings']),
    ...(isRecord(spec) ? specProblems(kind, spec) : ['spec: expected a mapping']),
  ];
  const metadata = { name: meta.name, namespace, ...(meta.labels ? { labels: meta.labels as Record<string, string> } : {}) };
  const origin = originOf({ kind, metadata: { ...metadata, ...(meta.annotations && problems.length === 0 ? { annotations: meta.annotations as Record<string, string> } : {}) } }, u.location);
  const key = `${kind}/${namespace}/${meta.name}`;
  if (problems.length > 0) return { key, invalid: problems.map((p) => ({ type: MESSAGES.SchemaValidationError, text: MESSAGES.SchemaValidationError.text(p), origin })) };
  // The kind's spec fields were checked just above.
  return { key, object: { kind, metadata, spec, origin } as ForeignObject, invalid: [] };
}

/**
 * A cluster's objects of the foreign kinds, from its Kubernetes API (`kubeconfig`): the supervisor lists only the
 * kinds the mesh reads, the API server stores every kind it serves.
 */
export async function clusterForeignObjects(kubeconfig: string): Promise<WrittenObject[]> {
  // client-node is only loaded when a cluster is read.
  const { KubeClient, loadKubeConfig } = await import('../../controlplane/kube-client.js');
  const kube = new KubeClient(loadKubeConfig(kubeconfig));
  try {
    const lists = await Promise.all(
      FOREIGN_TYPES.map(async (type) => {
        const list = await kube.get<{ items?: Array<Record<string, unknown>> }>(`/apis/${type.group}/${type.versions[0]}/${type.plural}`);
        return (list.items ?? []).map((raw) => ({ raw, type }));
      }),
    );
    return lists.flat();
  } finally {
    kube.close();
  }
}

/** Schema errors and warnings of file objects, as istioctl's schema analyzer reports them (IST0106, IST0133). */
function schemaMessages(issues: ConfigIssue[]): { messages: Message[]; rest: ConfigIssue[] } {
  const messages: Message[] = [];
  const rest: ConfigIssue[] = [];
  for (const i of issues) {
    if (!i.subject?.name) {
      rest.push(i);
      continue;
    }
    const type = i.severity === 'error' ? MESSAGES.SchemaValidationError : MESSAGES.SchemaWarning;
    const detail = i.path ? `${i.path}: ${i.message}` : i.message;
    const origin = originOf({ kind: i.subject.kind, metadata: { name: i.subject.name, ...(i.subject.namespace ? { namespace: i.subject.namespace } : {}) } }, i.location);
    messages.push({ type, text: type.text(detail), origin });
  }
  return { messages, rest };
}

/**
 * The statuses the control plane would write on objects read from files (their policies' ZtunnelAccepted, Services'
 * WaypointBound, routes' parents), from a model of the cluster's objects with the files applied and their
 * waypoints deployed. Gateways keep what the files say: whether a waypoint is programmed is only known live.
 */
function withComputedStatus(objects: AnalyzedObject[]): void {
  const store = new ConfigStore();
  store.apply(objects.map((o) => o.resource));
  deployWaypoints(store);
  const statuses = new Map(new AmbientIndex(store).statuses().map((s) => [`${s.kind}/${s.namespace}/${s.name}`, s]));
  for (const o of objects) {
    if (!o.fromFile || o.resource.kind === 'Gateway') continue;
    const s = statuses.get(resourceKey(o.resource));
    if (!s) continue;
    const status = { ...((o.resource as { status?: object }).status ?? {}), conditions: s.conditions, ...(s.parents ? { parents: s.parents } : {}) };
    o.resource = { ...o.resource, status } as Resource;
  }
}

export function register(program: Command): void {
  withClusterOption(
    program
      .command('analyze')
      .description('Analyze the mesh configuration (the running cluster and/or files) and print validation messages, as istioctl analyze')
      .argument('[files...]', 'files or directories (*.yaml, *.yml, *.json) to analyze with the cluster\'s objects; - for stdin')
      .option('-f, --filename <path...>', 'more files, as kubectl takes them')
      .option('-k, --use-kube <bool>', 'read the running local cluster (false: analyze the files alone)', 'true')
      .option('-A, --all-namespaces', 'analyze all namespaces')
      .option('-n, --namespace <ns>', 'namespace to analyze', 'default')
      .option('-o, --output <format>', 'log, json or yaml', 'log')
      .option('-S, --suppress <CODE=RESOURCE>', 'suppress a message code on a resource, e.g. "IST0102=Namespace frod" (* matches any characters)', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--failure-threshold <level>', 'messages at or above this level (Info, Warning, Error) make the exit code 79', 'Error')
      .option('--output-threshold <level>', 'messages at or above this level are printed', 'Info')
      .option('-L, --list-analyzers', 'list the analyzers and exit')
      .option('--analyzer <name>', 'run only this analyzer (repeatable; see -L)', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--ignore-unknown', 'do not fail on files that cannot be parsed'),
  ).action(async (files: string[], opts: Options) => {
    const format = opts.output.toLowerCase() as OutputFormat;
    if (!FORMATS.includes(format)) throw new Error(`${opts.output} not a valid option for format. See ambit analyze --help`);
    if (opts.listAnalyzers) {
      process.stdout.write(listAnalyzers());
      return;
    }
    const failureThreshold = parseLevel('--failure-threshold', opts.failureThreshold);
    const outputThreshold = parseLevel('--output-threshold', opts.outputThreshold);
    const suppressions = parseSuppressions(opts.suppress);
    const useKube = parseBool('--use-kube', opts.useKube);
    const paths = [...files, ...(opts.filename ?? [])];
    if (!useKube && paths.length === 0) throw new Error('no files to analyze: with --use-kube=false, name files or directories');
    const namespace = opts.allNamespaces ? undefined : (opts.namespace ?? 'default');
    const target = namespace === undefined ? 'all namespaces' : `namespace: ${namespace}`;

    const objects = new Map<string, AnalyzedObject>();
    const foreign = new Map<string, ForeignRead>();
    const readAll = (written: WrittenObject[]) => {
      for (const u of written) {
        const read = readForeign(u, namespace ?? 'default');
        if (read) foreign.set(read.key, read);
      }
    };
    if (useKube) {
      const client = ClusterClient.fromOptions(opts);
      const { items } = await client.call<{ items: Resource[] }>('GET', '/v1/resources').catch((err: Error) => {
        throw new Error(`${err.message}; to analyze files without a cluster, add --use-kube=false`);
      });
      if (namespace !== undefined && !items.some((r) => r.kind === 'Namespace' && r.metadata.name === namespace)) {
        process.stderr.write(`namespace ${JSON.stringify(namespace)} not found\n`);
        return;
      }
      for (const r of items) objects.set(resourceKey(r), { resource: r, origin: originOf(r), fromFile: false });
      if (client.kubeconfig() === undefined) throw new Error(`cluster "${client.name}" has no kubeconfig yet: its API server has not written ${client.layout.kubeconfig}`);
      readAll(await clusterForeignObjects(client.layout.kubeconfig));
    }
    let parseErrors = 0;
    const found: Message[] = [];
    if (paths.length > 0) {
      // As istioctl: objects that name no namespace are in the one analyzed, and an empty file is no error. Unknown
      // fields and kinds are reported (IST0133), not refused: analysis says what is wrong rather than stopping.
      const loaded = await loadPaths(paths, undefined, { defaultNamespace: namespace ?? 'default', emptyFile: 'warning', validate: 'warn', unknownKinds: 'warning' });
      readAll(loaded.others);
      const { messages, rest } = schemaMessages(loaded.issues);
      found.push(...messages);
      const unparsed = new Set<string>();
      for (const issue of rest) {
        process.stderr.write(`${formatIssue(issue)}\n`);
        if (issue.severity === 'error') unparsed.add(issue.location.file);
      }
      parseErrors = unparsed.size;
      const fromFiles: AnalyzedObject[] = loaded.objects.map((o) => ({
        resource: o.resource,
        origin: originOf(o.resource, o.location),
        fromFile: true,
        fieldLine: (path) => o.fieldLocation([...path])?.line,
      }));
      for (const o of fromFiles) objects.set(resourceKey(o.resource), o);
      withComputedStatus([...objects.values()]);
    }

    for (const read of foreign.values()) found.push(...read.invalid);
    const messages = analyze(
      { objects: [...objects.values()], foreign: [...foreign.values()].flatMap((read) => (read.object ? [read.object] : [])), rootNamespace: ROOT_NAMESPACE },
      { ...(namespace !== undefined ? { namespace } : {}), suppressions, analyzers: opts.analyzer },
      found,
    );
    const shown = messages.filter((m) => atLeast(m.type.level, outputThreshold));
    const colorize = format === 'log' && process.stdout.isTTY === true && process.env.TERM !== 'dumb';
    process.stdout.write(`${formatMessages(shown, format, colorize)}\n`);
    if (shown.length === 0) {
      if (parseErrors > 0) process.stderr.write(`No validation issues found when analyzing ${target} (but ${parseErrors} ${parseErrors === 1 ? 'file' : 'files'} could not be parsed).\n`);
      else if (paths.length > 0) process.stderr.write(`\u2714 No validation issues found when analyzing ${paths.length === 1 ? `${paths[0]}.` : `:\n  - ${paths.join('\n  - ')}`}\n`);
      else process.stderr.write(`\u2714 No validation issues found when analyzing ${target}.\n`);
    }
    // As istioctl: the exit code follows every message (not only those printed), and only for log output.
    if (format !== 'log') return;
    if (messages.some((m) => atLeast(m.type.level, failureThreshold))) {
      process.stderr.write(`Error: Analyzers found issues when analyzing ${target}.\nSee ${ANALYSIS_DOCS} for more information about causes and resolutions.\n`);
      process.exitCode = EXIT_ANALYZER_FOUND_ISSUES;
    } else if (parseErrors > 0 && !opts.ignoreUnknown) {
      process.stderr.write("Error: Some files couldn't be parsed.\n");
      process.exitCode = EXIT_DATA_ERROR;
    }
  });
}
