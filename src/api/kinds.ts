// The one registry of resource types the cluster serves: group, versions, names, scope, subresources and the CRDs'
// printer columns. API discovery, the API server's routes, validation (which apiVersions a kind accepts), kubectl-
// style name resolution in the CLI and `ambit get`'s columns all derive from this list; adding a kind is one entry
// here (plus a schema in ./schemas when the mesh reads it).
import type { Kind } from './types.js';

/** A CRD's `additionalPrinterColumns` entry (apiextensions.k8s.io/v1). */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 1: shown only with `-o wide`. */
  priority?: number;
}

export interface ResourceType {
  /** API group; '' is the core group (`/api/v1`). */
  group: string;
  /** Served versions, preferred (and stored) first. */
  versions: readonly string[];
  kind: string;
  /** Lowercase plural: the URL segment and what `kubectl get` takes. */
  plural: string;
  /** Lowercase kind. */
  singular: string;
  namespaced: boolean;
  shortNames: readonly string[];
  categories: readonly string[];
  /** Has a `status` subresource: main writes keep the stored status, `/status` writes change only it. */
  status: boolean;
  /** Has a `scale` subresource (`autoscaling/v1` Scale over spec.replicas). */
  scale?: boolean;
  /** Verbs; default: every verb of a stored resource. */
  verbs?: readonly string[];
  /** Custom resources (served as CRDs are): their table columns; built-in kinds print with kube-apiserver's printers. */
  printerColumns?: readonly PrinterColumn[];
  /** A kind the mesh model reads (it has a schema under ./schemas and a type in ./types). */
  model?: boolean;
}

export const STORED_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

interface Entry {
  kind: string;
  plural: string;
  namespaced?: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  scale?: boolean;
  verbs?: readonly string[];
  printerColumns?: PrinterColumn[];
  model?: boolean;
}

function group(name: string, versions: readonly string[], entries: Entry[], defaults: { categories?: string[]; custom?: boolean } = {}): ResourceType[] {
  return entries.map((e) => ({
    group: name,
    versions,
    kind: e.kind,
    plural: e.plural,
    singular: e.kind.toLowerCase(),
    namespaced: e.namespaced ?? true,
    shortNames: e.shortNames ?? [],
    categories: e.categories ?? defaults.categories ?? [],
    status: e.status ?? false,
    ...(e.scale ? { scale: true } : {}),
    ...(e.verbs ? { verbs: e.verbs } : {}),
    // A CRD without additionalPrinterColumns prints NAME and AGE.
    ...(defaults.custom ? { printerColumns: e.printerColumns ?? [AGE] } : {}),
    ...(e.model ? { model: true } : {}),
  }));
}

const ISTIO_VERSIONS = ['v1', 'v1beta1'] as const;
const NETWORKING_ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;
const NETWORKING_ISTIO = ['istio-io', 'networking-istio-io'];
const SECURITY_ISTIO = ['istio-io', 'security-istio-io'];
const GATEWAY_API = ['gateway-api'];
const conditionStatus = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;

export const RESOURCE_TYPES: readonly ResourceType[] = [
  ...group('', ['v1'], [
    { kind: 'Namespace', plural: 'namespaces', namespaced: false, shortNames: ['ns'], status: true, model: true },
    { kind: 'Node', plural: 'nodes', namespaced: false, shortNames: ['no'], status: true, model: true },
    { kind: 'Pod', plural: 'pods', shortNames: ['po'], categories: ['all'], status: true, model: true },
    { kind: 'Service', plural: 'services', shortNames: ['svc'], categories: ['all'], status: true, model: true },
    { kind: 'ServiceAccount', plural: 'serviceaccounts', shortNames: ['sa'], model: true },
    { kind: 'ConfigMap', plural: 'configmaps', shortNames: ['cm'] },
    { kind: 'Secret', plural: 'secrets' },
    { kind: 'Event', plural: 'events', shortNames: ['ev'] },
  ]),
  ...group('apps', ['v1'], [
    { kind: 'Deployment', plural: 'deployments', shortNames: ['deploy'], categories: ['all'], status: true, scale: true, model: true },
    { kind: 'DaemonSet', plural: 'daemonsets', shortNames: ['ds'], categories: ['all'], status: true },
  ]),
  ...group('discovery.k8s.io', ['v1'], [{ kind: 'EndpointSlice', plural: 'endpointslices', model: true }]),
  ...group('coordination.k8s.io', ['v1'], [{ kind: 'Lease', plural: 'leases' }]),
  ...group('apiextensions.k8s.io', ['v1'], [
    { kind: 'CustomResourceDefinition', plural: 'customresourcedefinitions', namespaced: false, shortNames: ['crd', 'crds'], categories: ['api-extensions'], status: true },
  ]),
  ...group('authentication.k8s.io', ['v1'], [{ kind: 'TokenReview', plural: 'tokenreviews', namespaced: false, verbs: ['create'] }]),
  ...group('authorization.k8s.io', ['v1'], [{ kind: 'SelfSubjectAccessReview', plural: 'selfsubjectaccessreviews', namespaced: false, verbs: ['create'] }]),
  // Istio's CRDs (istio/api kubernetes/customresourcedefinitions.gen.yaml), served as if istio-base were installed.
  ...group('security.istio.io', ISTIO_VERSIONS, [
    { kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', shortNames: ['ap'], status: true, model: true, printerColumns: [
      { name: 'Action', type: 'string', jsonPath: '.spec.action', description: 'The operation to take.' }, AGE] },
    { kind: 'PeerAuthentication', plural: 'peerauthentications', shortNames: ['pa'], status: true, model: true, printerColumns: [
      { name: 'Mode', type: 'string', jsonPath: '.spec.mtls.mode', description: 'Defines the mTLS mode used for peer authentication.' }, AGE] },
    { kind: 'RequestAuthentication', plural: 'requestauthentications', shortNames: ['ra'], status: true, model: true },
  ], { categories: SECURITY_ISTIO, custom: true }),
  ...group('networking.istio.io', NETWORKING_ISTIO_VERSIONS, [
    { kind: 'DestinationRule', plural: 'destinationrules', shortNames: ['dr'], status: true, model: true, printerColumns: [
      { name: 'Host', type: 'string', jsonPath: '.spec.host', description: 'The name of a service from the service registry' }, AGE] },
    { kind: 'VirtualService', plural: 'virtualservices', shortNames: ['vs'], status: true, model: true, printerColumns: [
      { name: 'Gateways', type: 'string', jsonPath: '.spec.gateways', description: 'The names of gateways and sidecars that should apply these routes' },
      { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'The destination hosts to which traffic is being sent' }, AGE] },
    { kind: 'ServiceEntry', plural: 'serviceentries', shortNames: ['se'], status: true, model: true, printerColumns: [
      { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'The hosts associated with the ServiceEntry' },
      { name: 'Location', type: 'string', jsonPath: '.spec.location', description: 'Whether the service is external to the mesh or part of the mesh (MESH_EXTERNAL or MESH_INTERNAL)' },
      { name: 'Resolution', type: 'string', jsonPath: '.spec.resolution', description: 'Service resolution mode for the hosts (NONE, STATIC, or DNS)' }, AGE] },
    { kind: 'WorkloadEntry', plural: 'workloadentries', shortNames: ['we'], status: true, model: true, printerColumns: [
      AGE, { name: 'Address', type: 'string', jsonPath: '.spec.address', description: 'Address associated with the network endpoint.' }] },
    { kind: 'Gateway', plural: 'gateways', shortNames: ['gw'], status: true },
    { kind: 'Sidecar', plural: 'sidecars', status: true },
    { kind: 'WorkloadGroup', plural: 'workloadgroups', shortNames: ['wg'], status: true },
  ], { categories: NETWORKING_ISTIO, custom: true }),
  ...group('networking.istio.io', ['v1alpha3'], [{ kind: 'EnvoyFilter', plural: 'envoyfilters', status: true }], { categories: NETWORKING_ISTIO, custom: true }),
  ...group('networking.istio.io', ['v1beta1'], [{ kind: 'ProxyConfig', plural: 'proxyconfigs', status: true }], { categories: NETWORKING_ISTIO, custom: true }),
  ...group('telemetry.istio.io', ['v1', 'v1alpha1'], [{ kind: 'Telemetry', plural: 'telemetries', shortNames: ['telemetry'], status: true, model: true }], {
    categories: ['istio-io', 'telemetry-istio-io'],
    custom: true,
  }),
  ...group('extensions.istio.io', ['v1alpha1'], [{ kind: 'WasmPlugin', plural: 'wasmplugins', status: true }], { categories: ['istio-io', 'extensions-istio-io'], custom: true }),
  // The Gateway API's standard channel (v1.2.0 CRDs), served as if its CRDs were installed.
  ...group('gateway.networking.k8s.io', ['v1', 'v1beta1'], [
    { kind: 'GatewayClass', plural: 'gatewayclasses', namespaced: false, shortNames: ['gc'], status: true, model: true, printerColumns: [
      { name: 'Controller', type: 'string', jsonPath: '.spec.controllerName' },
      { name: 'Accepted', type: 'string', jsonPath: conditionStatus('Accepted') }, AGE,
      { name: 'Description', type: 'string', jsonPath: '.spec.description', priority: 1 }] },
    { kind: 'Gateway', plural: 'gateways', shortNames: ['gtw'], status: true, model: true, printerColumns: [
      { name: 'Class', type: 'string', jsonPath: '.spec.gatewayClassName' },
      { name: 'Address', type: 'string', jsonPath: '.status.addresses[*].value' },
      { name: 'Programmed', type: 'string', jsonPath: conditionStatus('Programmed') }, AGE] },
    { kind: 'HTTPRoute', plural: 'httproutes', status: true, model: true, printerColumns: [{ name: 'Hostnames', type: 'string', jsonPath: '.spec.hostnames' }, AGE] },
  ], { categories: GATEWAY_API, custom: true }),
  ...group('gateway.networking.k8s.io', ['v1'], [
    { kind: 'GRPCRoute', plural: 'grpcroutes', status: true, model: true, printerColumns: [{ name: 'Hostnames', type: 'string', jsonPath: '.spec.hostnames' }, AGE] },
  ], { categories: GATEWAY_API, custom: true }),
  ...group('gateway.networking.k8s.io', ['v1beta1'], [{ kind: 'ReferenceGrant', plural: 'referencegrants', shortNames: ['refgrant'] }], { categories: GATEWAY_API, custom: true }),
];

/** `group/version`, or `version` for the core group: an object's apiVersion. */
export function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** Splits an apiVersion into group and version. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** `deployments.apps`, `pods`: how kube-apiserver names a resource in messages. */
export function qualifiedResource(t: Pick<ResourceType, 'plural' | 'group'>): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

/** `deployment.apps`, `pod`: the prefix kubectl prints before `/name`. */
export function qualifiedKindName(t: Pick<ResourceType, 'kind' | 'group'>): string {
  return t.group ? `${t.kind.toLowerCase()}.${t.group}` : t.kind.toLowerCase();
}

const MODEL_TYPES = new Map<string, ResourceType>(RESOURCE_TYPES.filter((t) => t.model).map((t) => [t.kind, t]));
const MODEL_RESOURCE_TYPES = [...MODEL_TYPES.values()];

/** The registry entry of a kind the mesh reads, by kind name (unique among those); undefined for other kinds. */
export function findModelType(kind: string): (ResourceType & { kind: Kind }) | undefined {
  return MODEL_TYPES.get(kind) as (ResourceType & { kind: Kind }) | undefined;
}

/** The registry entry of a kind the mesh reads. */
export function modelType(kind: Kind): ResourceType {
  const t = MODEL_TYPES.get(kind);
  if (!t) throw new Error(`kind ${kind} is not in the registry`);
  return t;
}

/** The registry entry for an object's apiVersion and kind (undefined for kinds the registry does not have). */
export function typeOf(apiVersion: string, kind: string): ResourceType | undefined {
  const { group, version } = parseApiVersion(apiVersion);
  return RESOURCE_TYPES.find((t) => t.kind === kind && t.group === group && t.versions.includes(version));
}

/**
 * Resolves what a user typed (`pods`, `pod`, `po`, `deployments.apps`, `deploy`, `Deployment`, `gateways.networking.istio.io`)
 * to a resource type, as kubectl's REST mapper does: an exact plural or singular wins over a short name, and among
 * groups serving the same name the first in discovery order (groups sorted by name after the built-in ones, so the
 * Gateway API's `gateways` wins over Istio's, as on a real cluster) wins.
 */
export function lookupResourceType(word: string, types: readonly ResourceType[] = RESOURCE_TYPES): ResourceType | undefined {
  const w = word.toLowerCase();
  const ordered = discoveryOrder(types);
  const dot = w.indexOf('.');
  if (dot > 0) {
    const [name, grp] = [w.slice(0, dot), w.slice(dot + 1)];
    const hit = ordered.find((t) => t.group === grp && (t.plural === name || t.singular === name || t.shortNames.includes(name)));
    if (hit) return hit;
  }
  return ordered.find((t) => t.plural === w || t.singular === w) ?? ordered.find((t) => t.shortNames.includes(w));
}

/** Groups as discovery lists them: the core group, then the built-in groups, then the others by name. */
export function discoveryOrder(types: readonly ResourceType[]): ResourceType[] {
  const rank = (g: string) => (g === '' ? 0 : BUILTIN_GROUPS.includes(g) ? 1 + BUILTIN_GROUPS.indexOf(g) : 100);
  return [...types].sort((a, b) => rank(a.group) - rank(b.group) || (rank(a.group) === 100 ? a.group.localeCompare(b.group) : 0));
}

/** Built-in API groups in kube-apiserver's priority order (the ones this registry serves). */
const BUILTIN_GROUPS = ['apps', 'events.k8s.io', 'authentication.k8s.io', 'authorization.k8s.io', 'coordination.k8s.io', 'discovery.k8s.io', 'apiextensions.k8s.io'];

/** A kind the mesh reads, resolved from what a user typed (see lookupResourceType); undefined for any other word. */
export function lookupModelKind(word: string): (ResourceType & { kind: Kind }) | undefined {
  const t = lookupResourceType(word, MODEL_RESOURCE_TYPES);
  return t as (ResourceType & { kind: Kind }) | undefined;
}

