// The checks of `ambit analyze`: istioctl analyze's analyzers that apply to an ambient mesh, with their names, inputs
// and rules (istio/istio pkg/config/analysis/analyzers), plus two of Ambit's own that use Istio's codes (a
// use-waypoint label naming no Gateway; an EnvoyFilter, which no proxy of this mesh reads). Analyzers see every
// object; the runner (analyze.ts) keeps the messages of the namespace asked for, as istioctl does.
import type { AuthorizationPolicy, Condition, Container, DestinationRule, Namespace, Pod, Resource, Service, ServiceEntry, VirtualService, WorkloadSelector } from '../api/types.js';
import { LABEL_DATAPLANE_MODE } from '../api/types.js';
import { isRecord } from '../api/schemas/common.js';
import { GATEWAY_NAME_LABEL, USE_WAYPOINT_LABEL, WAYPOINT_ACCEPTED, WAYPOINT_BOUND, useWaypointOf } from '../model/waypoints.js';
import type { Labels } from '../model/store.js';
import { portProtocol } from '../model/services.js';
import { isCaptured } from '../model/workloads.js';
import { MESSAGES, goQuote } from './messages.js';
import type { MessageType } from './messages.js';

/**
 * Where an object came from: the cluster, or a file (with the line its document starts on, or in a message the line
 * of the field the message is about, as istioctl points at it).
 */
export interface Origin {
  kind: string;
  namespace?: string;
  name: string;
  file?: string;
  line?: number;
  /** Codes the object's `galley.istio.io/analyze-suppress` annotation suppresses (`*`: all). */
  suppressedCodes?: string[];
}

export interface AnalyzedObject {
  resource: Resource;
  origin: Origin;
  /** Read from a file rather than the cluster (its pods do not exist yet; a Deployment's template stands for them). */
  fromFile: boolean;
  /** The line a field (a path into the object) is written on in its file; undefined if it is not (or not from a file). */
  fieldLine?(path: FieldPath): number | undefined;
}

/** A path into an object: keys and list indices, e.g. `['spec', 'http', 0, 'route', 1, 'destination', 'host']`. */
export type FieldPath = ReadonlyArray<string | number>;

/**
 * An object of a kind the mesh does not read but that Istio users bring along: a Sidecar or EnvoyFilter, which has no
 * effect here (worth saying), or Istio's Gateway, which VirtualServices name. Only the fields the analyzers use.
 */
export type ForeignObject = ForeignPolicy | IstioGateway;

interface ForeignMeta {
  metadata: { name: string; namespace: string; labels?: Labels };
  origin: Origin;
}

export interface ForeignPolicy extends ForeignMeta {
  kind: 'Sidecar' | 'EnvoyFilter';
  spec: { workloadSelector?: { labels?: Labels }; targetRefs?: unknown[]; targetRef?: unknown };
}

/** Istio's Gateway (networking.istio.io): the servers of an ingress or egress gateway, none of which Ambit runs. */
export interface IstioGateway extends ForeignMeta {
  kind: 'Gateway';
  spec: { servers?: Array<{ hosts?: string[] }> };
}

export interface Message {
  type: MessageType;
  text: string;
  origin?: Origin;
}

export interface AnalysisContext {
  objects: AnalyzedObject[];
  foreign: ForeignObject[];
  rootNamespace: string;
  report(m: Message): void;
}

export interface Analyzer {
  name: string;
  description: string;
  analyze(ctx: AnalysisContext): void;
}

const INJECTION_LABEL = 'istio-injection';
const REVISION_LABEL = 'istio.io/rev';
const SIDECAR_INJECT = 'sidecar.istio.io/inject';

function ofKind<K extends Resource['kind']>(ctx: AnalysisContext, kind: K): Array<AnalyzedObject & { resource: Extract<Resource, { kind: K }> }> {
  return ctx.objects.filter((o) => o.resource.kind === kind) as Array<AnalyzedObject & { resource: Extract<Resource, { kind: K }> }>;
}

function foreignOfKind<K extends ForeignObject['kind']>(ctx: AnalysisContext, kind: K): Array<ForeignObject & { kind: K }> {
  return ctx.foreign.filter((f) => f.kind === kind) as Array<ForeignObject & { kind: K }>;
}

function namespacesOf(ctx: AnalysisContext): Map<string, Namespace> {
  return new Map(ofKind(ctx, 'Namespace').map((o) => [o.resource.metadata.name, o.resource]));
}

/** A pod that exists, or a file Deployment's template standing for the pods it will make. */
interface PodView {
  namespace: string;
  labels: Labels;
  annotations: Labels;
  nodeName?: string;
  containers: string[];
  hostNetwork: boolean;
  /** The object messages about it are reported on (the Pod, or the Deployment from a file). */
  object: AnalyzedObject;
}

function containerNames(spec: Pod['spec'] | undefined): string[] {
  const init = (spec?.initContainers ?? []) as Container[];
  return [...(spec?.containers ?? []), ...init].map((c) => c.name);
}

function podsOf(ctx: AnalysisContext): PodView[] {
  const out: PodView[] = [];
  for (const o of ctx.objects) {
    const r = o.resource;
    if (r.kind === 'Pod') {
      out.push({
        namespace: r.metadata.namespace ?? 'default', labels: r.metadata.labels ?? {}, annotations: r.metadata.annotations ?? {},
        ...(r.spec.nodeName ? { nodeName: r.spec.nodeName } : {}),
        containers: containerNames(r.spec),
        hostNetwork: r.spec.hostNetwork === true, object: o,
      });
    } else if (r.kind === 'Deployment' && o.fromFile && r.spec.replicas !== 0) {
      const t = r.spec.template;
      out.push({
        namespace: r.metadata.namespace ?? 'default', labels: t.metadata?.labels ?? {}, annotations: t.metadata?.annotations ?? {},
        containers: containerNames(t.spec),
        hostNetwork: t.spec.hostNetwork === true, object: o,
      });
    }
  }
  return out;
}

function inAmbient(p: PodView, namespaces: Map<string, Namespace>): boolean {
  return isCaptured({ labels: p.labels, annotations: p.annotations, spec: { hostNetwork: p.hostNetwork } as Pod['spec'] }, namespaces.get(p.namespace));
}

// istioctl's util.PodInMesh: a sidecar, or injection asked for by the pod (its value decides) or by its namespace.
function inSidecarMesh(p: PodView, namespaces: Map<string, Namespace>): boolean {
  if (p.containers.includes('istio-proxy')) return true;
  const asked = p.labels[SIDECAR_INJECT] ?? p.annotations[SIDECAR_INJECT];
  if (asked !== undefined) return asked === 'true';
  return namespaces.get(p.namespace)?.metadata.labels?.[INJECTION_LABEL] === 'enabled';
}

/** Kubernetes' `labels.SelectorFromSet(...).String()`: `k=v` pairs sorted by key, comma-separated. */
function selectorString(matchLabels: Labels | undefined): string {
  return Object.keys(matchLabels ?? {}).sort().map((k) => `${k}=${matchLabels![k]}`).join(',');
}

function matches(matchLabels: Labels | undefined, labels: Labels): boolean {
  for (const [k, v] of Object.entries(matchLabels ?? {})) if (labels[k] !== v) return false;
  return true;
}

/** `namespace/name`, as istioctl names an object in a message's text. */
function fullName(r: Resource): string {
  return `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
}

/** Reports a message on an object, at the line of `field` when the object is from a file that writes it. */
function report(ctx: AnalysisContext, o: { origin: Origin; fieldLine?: AnalyzedObject['fieldLine'] }, type: MessageType, text: string, field?: FieldPath): void {
  const line = field && o.fieldLine?.(field);
  ctx.report({ type, text, origin: line ? { ...o.origin, line } : o.origin });
}

// istioctl's namespaceMatch: `*`, a `*suffix`, a `prefix*`, or the name (case-insensitively).
function namespaceMatches(ns: string, exp: string): boolean {
  if (exp === '*') return true;
  if (exp.startsWith('*')) return ns.endsWith(exp.slice(1));
  if (exp.endsWith('*')) return ns.startsWith(exp.slice(0, -1));
  return ns.toLowerCase() === exp.toLowerCase();
}

const authorizationPolicies: Analyzer = {
  name: 'auth.AuthorizationPoliciesAnalyzer',
  description: 'Checks the validity of authorization policies',
  analyze(ctx) {
    const namespaces = namespacesOf(ctx);
    // Labels of the pods in the mesh (ambient or sidecar), by namespace.
    const meshPods = new Map<string, Labels[]>();
    for (const p of podsOf(ctx)) {
      if (!inAmbient(p, namespaces) && !inSidecarMesh(p, namespaces)) continue;
      meshPods.set(p.namespace, [...(meshPods.get(p.namespace) ?? []), p.labels]);
    }
    for (const o of ofKind(ctx, 'AuthorizationPolicy')) {
      const ap: AuthorizationPolicy = o.resource;
      const ns = ap.metadata.namespace ?? 'default';
      const selector: WorkloadSelector | undefined = ap.spec.selector;
      if (ns === ctx.rootNamespace) {
        if (selector && ![...meshPods.values()].some((list) => list.some((l) => matches(selector.matchLabels, l)))) {
          report(ctx, o, MESSAGES.NoMatchingWorkloadsFound, MESSAGES.NoMatchingWorkloadsFound.text(selectorString(selector.matchLabels)));
        }
      } else if (!selector) {
        if ((meshPods.get(ns) ?? []).length === 0) report(ctx, o, MESSAGES.NoMatchingWorkloadsFound, MESSAGES.NoMatchingWorkloadsFound.text(''));
      } else if (!(meshPods.get(ns) ?? []).some((l) => matches(selector.matchLabels, l))) {
        report(ctx, o, MESSAGES.NoMatchingWorkloadsFound, MESSAGES.NoMatchingWorkloadsFound.text(selectorString(selector.matchLabels)));
      }
      for (const rule of ap.spec.rules ?? []) {
        for (const from of rule.from ?? []) {
          for (const exp of [...(from.source?.namespaces ?? []), ...(from.source?.notNamespaces ?? [])]) {
            if (![...namespaces.keys()].some((n) => namespaceMatches(n, exp))) {
              report(ctx, o, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text('namespace', exp));
            }
          }
        }
      }
    }
  },
};

const injection: Analyzer = {
  name: 'injection.Analyzer',
  description: 'Checks conditions related to Istio sidecar injection',
  analyze(ctx) {
    const namespaces = namespacesOf(ctx);
    const injected = new Set<string>();
    for (const o of ofKind(ctx, 'Namespace')) {
      const name = o.resource.metadata.name;
      if (name === ctx.rootNamespace) continue;
      const labels = o.resource.metadata.labels ?? {};
      const inj = labels[INJECTION_LABEL];
      const found: string[] = inj !== undefined ? [`${INJECTION_LABEL}=${inj}`] : [];
      for (const l of [REVISION_LABEL, LABEL_DATAPLANE_MODE]) {
        if (l in labels && (inj === undefined || inj === 'enabled')) found.push(`${l}=${labels[l]}`);
      }
      if (found.length > 1) report(ctx, o, MESSAGES.NamespaceMultipleInjectionLabels, MESSAGES.NamespaceMultipleInjectionLabels.text(found));
      if (labels[LABEL_DATAPLANE_MODE] === 'ambient') continue;
      if (!inj && !(REVISION_LABEL in labels)) {
        report(ctx, o, MESSAGES.NamespaceNotInjected, MESSAGES.NamespaceNotInjected.text(name));
        continue;
      }
      if (inj === 'enabled') injected.add(name);
    }
    // Ambit never injects a sidecar: a pod in a namespace asking for injection has no proxy at all.
    for (const p of podsOf(ctx)) {
      if (!injected.has(p.namespace) || p.hostNetwork || p.object.resource.kind !== 'Pod') continue;
      const asked = p.labels[SIDECAR_INJECT] ?? p.annotations[SIDECAR_INJECT];
      if (asked?.toLowerCase() === 'false' || p.containers.includes('istio-proxy')) continue;
      if (inAmbient(p, namespaces)) continue;
      const pod = p.object.resource as Pod;
      report(ctx, p.object, MESSAGES.PodMissingProxy, MESSAGES.PodMissingProxy.text(`${p.namespace}/${pod.metadata.name}`));
    }
  },
};

// conditions.go: the condition types whose status counts as negative, per kind.
const NEGATIVE: Record<string, Record<string, Condition['status']>> = {
  Service: { [WAYPOINT_BOUND]: 'False' },
  AuthorizationPolicy: { ZtunnelAccepted: 'False', [WAYPOINT_ACCEPTED]: 'False' },
  Gateway: { Accepted: 'False', Programmed: 'False', ResolvedRefs: 'False' },
  HTTPRoute: { Accepted: 'False', Programmed: 'False', ResolvedRefs: 'False' },
  GRPCRoute: { Accepted: 'False', Programmed: 'False', ResolvedRefs: 'False' },
};

function conditionsOf(r: Resource): Condition[] {
  const status = (r as { status?: { conditions?: Condition[]; parents?: Array<{ conditions?: Condition[] }> } }).status;
  if (r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute') return (status?.parents ?? []).flatMap((p) => p.conditions ?? []);
  return status?.conditions ?? [];
}

// Accepted with parts left out: Istio reports a waypoint's PartiallyInvalid; Ambit also ztunnel's UnsupportedValue
// (HTTP attributes in a policy only ztunnel enforces: those rules are dropped, so the policy is stricter than written).
function partiallyAccepted(kind: string, c: Condition): boolean {
  if (kind !== 'AuthorizationPolicy') return false;
  return (c.type === WAYPOINT_ACCEPTED && c.reason === 'PartiallyInvalid') || (c.type === 'ZtunnelAccepted' && c.reason === 'UnsupportedValue');
}

const conditions: Analyzer = {
  name: 'conditions.ConditionAnalyzer',
  description: 'Checks for negative status conditions on resources',
  analyze(ctx) {
    for (const o of ctx.objects) {
      const negative = NEGATIVE[o.resource.kind];
      if (!negative) continue;
      for (const c of conditionsOf(o.resource)) {
        if (negative[c.type] === c.status || partiallyAccepted(o.resource.kind, c)) {
          report(ctx, o, MESSAGES.NegativeConditionStatus, MESSAGES.NegativeConditionStatus.text(c.type, c.reason, c.message));
        }
      }
    }
  },
};

const gatewaySelectors: Analyzer = {
  name: 'k8sgateway.SelectorAnalyzer',
  description: 'Check that selectors are effective for Kubernetes gateway',
  analyze(ctx) {
    const gatewayPods = new Map<string, Labels[]>();
    for (const p of podsOf(ctx)) {
      if (!(GATEWAY_NAME_LABEL in p.labels)) continue;
      gatewayPods.set(p.namespace, [...(gatewayPods.get(p.namespace) ?? []), p.labels]);
    }
    for (const o of ctx.objects) {
      const r = o.resource;
      if (r.kind !== 'AuthorizationPolicy' && r.kind !== 'RequestAuthentication' && r.kind !== 'Telemetry') continue;
      const spec = r.spec as { selector?: WorkloadSelector; targetRef?: unknown };
      if (spec.targetRef !== undefined || spec.selector === undefined) continue;
      for (const labels of gatewayPods.get(r.metadata.namespace ?? 'default') ?? []) {
        if (matches(spec.selector.matchLabels, labels)) report(ctx, o, MESSAGES.IneffectiveSelector, MESSAGES.IneffectiveSelector.text(labels[GATEWAY_NAME_LABEL]!));
      }
    }
  },
};

const NO_IMPACT_POD = 'selected workload is in ambient mode, the policy has no impact';
const NO_IMPACT_NAMESPACE = 'namespace is in ambient mode, the policy has no impact';

// istioctl's util.NamespaceInAmbientMode: labelled ambient and not asking for sidecars.
function namespaceInAmbient(ns: Namespace | undefined): boolean {
  const labels = ns?.metadata.labels ?? {};
  if (labels[INJECTION_LABEL] === 'enabled' || labels[REVISION_LABEL]) return false;
  return labels[LABEL_DATAPLANE_MODE] === 'ambient';
}

const sidecarSelectors: Analyzer = {
  name: 'sidecar.SelectorAnalyzer',
  description: 'Validates that sidecars that define a workload selector match at least one pod, and that there are no sidecars in ambient mode',
  analyze(ctx) {
    const namespaces = namespacesOf(ctx);
    const pods = podsOf(ctx);
    for (const s of foreignOfKind(ctx, 'Sidecar')) {
      // As istiod, a selector without labels selects the whole namespace.
      const labels = s.spec.workloadSelector?.labels;
      const selector = labels && Object.keys(labels).length > 0 ? labels : undefined;
      if (selector !== undefined) {
        const selected = pods.filter((p) => p.namespace === s.metadata.namespace && matches(selector, p.labels));
        if (selected.length === 0) report(ctx, s, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text('selector', selectorString(selector)));
        else if (selected.some((p) => inAmbient(p, namespaces))) report(ctx, s, MESSAGES.IneffectivePolicy, MESSAGES.IneffectivePolicy.text(NO_IMPACT_POD));
      } else if (namespaceInAmbient(namespaces.get(s.metadata.namespace))) {
        report(ctx, s, MESSAGES.IneffectivePolicy, MESSAGES.IneffectivePolicy.text(NO_IMPACT_NAMESPACE));
      }
    }
  },
};

// Ambit's own: in Istio an EnvoyFilter can still patch a waypoint (an Envoy); no proxy of this mesh is an Envoy.
const envoyFilters: Analyzer = {
  name: 'envoyfilter.AmbientAnalyzer',
  description: 'Reports EnvoyFilters: no proxy of this mesh (ztunnel, waypoint) is an Envoy, so none of them has an effect',
  analyze(ctx) {
    const namespaces = namespacesOf(ctx);
    const pods = podsOf(ctx);
    for (const f of foreignOfKind(ctx, 'EnvoyFilter')) {
      const selector = f.spec.workloadSelector?.labels;
      let reason = 'no proxy of this mesh is an Envoy';
      if (f.spec.targetRefs === undefined && f.spec.targetRef === undefined) {
        if (selector !== undefined) {
          const selected = pods.filter((p) => (f.metadata.namespace === ctx.rootNamespace || p.namespace === f.metadata.namespace) && matches(selector, p.labels));
          if (selected.some((p) => inAmbient(p, namespaces))) reason = NO_IMPACT_POD;
        } else if (namespaceInAmbient(namespaces.get(f.metadata.namespace))) {
          reason = NO_IMPACT_NAMESPACE;
        }
      }
      report(ctx, f, MESSAGES.IneffectivePolicy, MESSAGES.IneffectivePolicy.text(reason));
    }
  },
};

const CLUSTER_LOCAL = 'svc.cluster.local';
const EXPORT_TO_ALL = '*';
const EXPORT_TO_LOCAL = '.';

// istioctl's ConvertHostToFQDN: only a short name (no dot, no wildcard) is completed with the namespace.
function hostToFqdn(namespace: string, host: string): string {
  return !host.startsWith('*') && !host.includes('.') ? `${host}.${namespace}.${CLUSTER_LOCAL}` : host;
}

/** A service as istioctl's analyzers look hosts up: a ServiceEntry, or a Kubernetes Service seen as one. */
interface RegistryService {
  ports: number[];
  /**
   * The pods behind it: a ServiceEntry's workloadSelector, a Service's selector (istioctl's conversion leaves a
   * Service's out, so there a subset's labels alone have to match a pod; the Service's endpoints are what istiod uses).
   */
  selector: Labels;
}

/** A `scope/FQDN` key (istioctl's ScopedFqdn) as its scope and FQDN. */
function splitScoped(key: string): [scope: string, fqdn: string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/**
 * istioctl's InitServiceEntryHostMap: every host of every ServiceEntry and Service under each namespace that sees it
 * (`*`: all of them), keyed `scope/FQDN`; a Service wins over a ServiceEntry with the same key.
 */
function serviceRegistry(ctx: AnalysisContext): Map<string, RegistryService> {
  const out = new Map<string, RegistryService>();
  for (const o of ofKind(ctx, 'ServiceEntry')) {
    const se: ServiceEntry = o.resource;
    const ns = se.metadata.namespace ?? 'default';
    const exportTo = se.spec.exportTo ?? [];
    const scopes = exportTo.length === 0 || exportTo.includes(EXPORT_TO_ALL) ? [EXPORT_TO_ALL] : exportTo.map((e) => (e === EXPORT_TO_LOCAL ? ns : e));
    const service = { ports: (se.spec.ports ?? []).map((p) => p.number), selector: se.spec.workloadSelector?.labels ?? {} };
    for (const host of se.spec.hosts) for (const scope of scopes) out.set(`${scope}/${hostToFqdn(ns, host)}`, service);
  }
  for (const o of ofKind(ctx, 'Service')) {
    const s: Service = o.resource;
    const ns = s.metadata.namespace ?? 'default';
    const annotation = s.metadata.annotations?.['networking.istio.io/exportTo'] ?? '';
    const scopes = annotation === '' ? [EXPORT_TO_ALL] : annotation.split(',').map((e) => e.trim()).map((e) => (e === EXPORT_TO_LOCAL ? ns : e));
    const service = { ports: (s.spec.ports ?? []).map((p) => p.port), selector: s.spec.selector ?? {} };
    for (const scope of scopes) out.set(`${scope}/${hostToFqdn(ns, s.metadata.name)}`, service);
  }
  return out;
}

/**
 * istioctl's GetDestinationHost: the service a host names for an object of `namespace` exported to `exportTo` (a
 * VirtualService's or DestinationRule's), exactly, else under a wildcard ServiceEntry host that this namespace sees.
 */
function lookupHost(registry: Map<string, RegistryService>, namespace: string, exportTo: string[] | undefined, host: string): RegistryService | undefined {
  const fqdn = hostToFqdn(namespace, host);
  const scopes = [EXPORT_TO_ALL, ...(exportTo?.length ? exportTo.map((e) => (e === EXPORT_TO_LOCAL ? namespace : e)) : [namespace])];
  for (const scope of scopes) {
    const exact = registry.get(`${scope}/${fqdn}`);
    if (exact) return exact;
  }
  const unwildcarded = host.startsWith('*') ? host.slice(1) : host;
  for (const [key, service] of registry) {
    const [scope, registered] = splitScoped(key);
    if (registered.startsWith('*') && (scope === EXPORT_TO_ALL || scope === namespace) && unwildcarded.endsWith(registered.slice(1))) return service;
  }
  return undefined;
}

const NODE_TOPOLOGY = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];

const destinationRuleSubsets: Analyzer = {
  name: 'destinationrule.SubsetSelectPodAnalyzer',
  description: 'Checks if pods are selected by subsets in destination rules.',
  analyze(ctx) {
    const registry = serviceRegistry(ctx);
    const nodeLabels = new Map(ofKind(ctx, 'Node').map((o) => [o.resource.metadata.name, o.resource.metadata.labels ?? {}]));
    // Pod labels as istiod augments them: the node's topology and `kubernetes.io/hostname`.
    const podLabels = podsOf(ctx).map((p) => {
      const extra: Labels = {};
      if (p.nodeName) {
        const node = nodeLabels.get(p.nodeName) ?? {};
        for (const key of NODE_TOPOLOGY) if (node[key]) extra[key] = node[key];
        extra['kubernetes.io/hostname'] = p.nodeName;
      }
      return { ...p.labels, ...extra };
    });
    for (const o of ofKind(ctx, 'DestinationRule')) {
      const dr: DestinationRule = o.resource;
      const ns = dr.metadata.namespace ?? 'default';
      const service = lookupHost(registry, ns, dr.spec.exportTo, dr.spec.host);
      if (!service) {
        report(ctx, o, MESSAGES.UnknownDestinationRuleHost, MESSAGES.UnknownDestinationRuleHost.text(dr.spec.host));
        continue;
      }
      for (const subset of dr.spec.subsets ?? []) {
        const selector = { ...service.selector, ...(subset.labels ?? {}) };
        if (!podLabels.some((l) => matches(selector, l))) {
          report(ctx, o, MESSAGES.DestinationRuleSubsetNotSelectPods, MESSAGES.DestinationRuleSubsetNotSelectPods.text(subset.name));
        }
      }
    }
  },
};

// ---- VirtualServices (istio/istio pkg/config/analysis/analyzers/virtualservice) ------------------------------------

/** A route's destination, as a VirtualService writes it. */
interface Destination {
  host?: string;
  subset?: string;
  port?: { number?: number };
}

/** A rule of a VirtualService's `http`, `tcp` or `tls`: the parts the analyzers read. */
interface VirtualServiceRule {
  /** `http` rules only, as are their matches' names. */
  name?: string;
  match?: Array<Record<string, unknown>>;
  route?: Array<{ destination?: Destination }>;
}

/** A VirtualService's rules (the API types leave its `http`, `tcp` and `tls` open). */
interface VirtualServiceRules {
  http?: Array<VirtualServiceRule & { mirror?: Destination; mirrors?: Array<{ destination?: Destination }> }>;
  tcp?: VirtualServiceRule[];
  tls?: VirtualServiceRule[];
}

/** A destination of a VirtualService with the field istioctl points its messages at. */
interface RoutedDestination {
  destination: Destination;
  mirror: boolean;
  field: FieldPath;
}

// istioctl's getRouteDestinations (tcp, tls, then http routes) and getHTTPMirrorDestinations, in its order.
function destinationsOf(vs: VirtualService): RoutedDestination[] {
  const rules = vs.spec as VirtualServiceRules;
  const out: RoutedDestination[] = [];
  for (const kind of ['tcp', 'tls', 'http'] as const) {
    (rules[kind] ?? []).forEach((rule, i) =>
      (rule.route ?? []).forEach((r, j) => out.push({ destination: r.destination ?? {}, mirror: false, field: ['spec', kind, i, 'route', j, 'destination', 'host'] })),
    );
  }
  (rules.http ?? []).forEach((rule, i) => {
    if (rule.mirror) out.push({ destination: rule.mirror, mirror: true, field: ['spec', 'http', i, 'mirror', 'host'] });
    // istioctl looks `mirrors` up as `mirrors[j].host`, a field no mirror has: its messages carry the document's line.
    (rule.mirrors ?? []).forEach((m, j) => out.push({ destination: m.destination ?? {}, mirror: true, field: ['spec', 'http', i, 'mirrors', j, 'host'] }));
  });
  return out;
}

const destinationHosts: Analyzer = {
  name: 'virtualservice.DestinationHostAnalyzer',
  description: 'Checks the destination hosts associated with each virtual service',
  analyze(ctx) {
    const registry = serviceRegistry(ctx);
    for (const o of ofKind(ctx, 'VirtualService')) {
      const vs: VirtualService = o.resource;
      const ns = vs.metadata.namespace ?? 'default';
      for (const { destination, mirror, field } of destinationsOf(vs)) {
        const host = destination.host ?? '';
        const service = lookupHost(registry, ns, vs.spec.exportTo, host);
        if (!service) {
          report(ctx, o, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text(mirror ? 'mirror host' : 'host', host), field);
        } else if (destination.port === undefined) {
          // Without a port the destination is ambiguous only when the service has several.
          if (service.ports.length > 1) {
            report(ctx, o, MESSAGES.VirtualServiceDestinationPortSelectorRequired, MESSAGES.VirtualServiceDestinationPortSelectorRequired.text(host, service.ports), field);
          }
        } else if (!service.ports.includes(destination.port.number ?? 0)) {
          report(ctx, o, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text('host:port', `${host}:${destination.port.number ?? 0}`), field);
        }
      }
    }
  },
};

// istioctl's GetResourceNameFromHost: `name.namespace.svc.cluster.local` (the name: everything before the last two
// labels) names an object of that namespace; any other host, short or not, is a name in `namespace`.
function resourceNameOfHost(namespace: string, host: string): string {
  const fqdn = /^(.+)\.(.+)\.svc\.cluster\.local$/.exec(host);
  return fqdn ? `${fqdn[2]}/${fqdn[1]}` : `${namespace}/${host}`;
}

const hostSubsetKey = (name: string, subset: string): string => JSON.stringify([name, subset]);

/**
 * As istioctl: a subset is defined when a DestinationRule whose host names the same object (resourceNameOfHost, each
 * in its own namespace) lists it. Hosts are compared as names, not matched: a rule for `*.example.com` defines no
 * subset of `a.example.com`; neither rule's `exportTo` nor `workloadSelector` counts.
 */
const destinationRules: Analyzer = {
  name: 'virtualservice.DestinationRuleAnalyzer',
  description: 'Checks the destination rules associated with each virtual service',
  analyze(ctx) {
    const defined = new Set<string>();
    for (const o of ofKind(ctx, 'DestinationRule')) {
      const dr: DestinationRule = o.resource;
      const name = resourceNameOfHost(dr.metadata.namespace ?? 'default', dr.spec.host);
      for (const subset of dr.spec.subsets ?? []) defined.add(hostSubsetKey(name, subset.name));
    }
    for (const o of ofKind(ctx, 'VirtualService')) {
      const vs: VirtualService = o.resource;
      const ns = vs.metadata.namespace ?? 'default';
      for (const { destination, mirror, field } of destinationsOf(vs)) {
        const host = destination.host ?? '';
        const subset = destination.subset ?? '';
        if (subset === '' || defined.has(hostSubsetKey(resourceNameOfHost(ns, host), subset))) continue;
        const reftype = mirror ? 'mirror+subset in destinationrule' : 'host+subset in destinationrule';
        report(ctx, o, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text(reftype, `${host}+${subset}`), field);
      }
    }
  },
};

const MESH_GATEWAY = 'mesh';

/** istio's host.Name.Matches: equal names, or one under the other's wildcard (both wildcards: the longer under the shorter). */
function hostsOverlap(a: string, b: string): boolean {
  if (a.startsWith('*') && b.startsWith('*')) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (a.startsWith('*')) return b.endsWith(a.slice(1));
  if (b.startsWith('*')) return a.endsWith(b.slice(1));
  return a === b;
}

const conflictingMeshGatewayHosts: Analyzer = {
  name: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
  description: 'Checks if multiple virtual services associated with the mesh gateway have conflicting hosts',
  analyze(ctx) {
    // `scope/FQDN` → the VirtualServices bound to the mesh (no `gateways`, or `mesh` among them) that name the host
    // for the namespaces of the scope (their `exportTo`; `*`: all).
    const byHost = new Map<string, AnalyzedObject[]>();
    for (const o of ofKind(ctx, 'VirtualService')) {
      const vs: VirtualService = o.resource;
      const gateways = vs.spec.gateways ?? [];
      if (gateways.length > 0 && !gateways.includes(MESH_GATEWAY)) continue;
      const ns = vs.metadata.namespace ?? 'default';
      const exportTo = vs.spec.exportTo ?? [];
      const scopes = exportTo.length === 0 || exportTo.includes(EXPORT_TO_ALL) ? [EXPORT_TO_ALL] : new Set(exportTo.map((e) => (e === EXPORT_TO_LOCAL ? ns : e)));
      for (const scope of scopes) {
        for (const host of vs.spec.hosts ?? []) {
          const key = `${scope}/${hostToFqdn(ns, host)}`;
          byHost.set(key, [...(byHost.get(key) ?? []), o]);
        }
      }
    }
    // Each VirtualService is reported once, with the first conflict found (istioctl's is whichever its map yields).
    const reported = new Set<AnalyzedObject>();
    for (const [key, named] of byHost) {
      const [scope, host] = splitScoped(key);
      // A host seen in some namespaces also conflicts with those exported to all that overlap it (wildcards too).
      const exportedToAll = scope === EXPORT_TO_ALL ? [] : [...byHost].filter(([k]) => splitScoped(k)[0] === EXPORT_TO_ALL && hostsOverlap(host, splitScoped(k)[1]));
      const conflicting = [...named, ...exportedToAll.flatMap(([, list]) => list)];
      if (conflicting.length < 2) continue;
      const names = conflicting.map((o) => fullName(o.resource)).sort().join(',');
      for (const o of conflicting) {
        if (reported.has(o)) continue;
        reported.add(o);
        report(ctx, o, MESSAGES.ConflictingMeshGatewayVirtualServiceHosts, MESSAGES.ConflictingMeshGatewayVirtualServiceHosts.text(names, key), ['metadata', 'name']);
      }
    }
  },
};

// The name istiod gives the Istio Gateways it generates for a Kubernetes Gateway's listeners (`<gw>~<this>~<listener>`).
const INTERNAL_GATEWAY_MARK = '~istio-autogenerated-k8s-gateway~';

/**
 * The hosts an Istio Gateway serves to VirtualServices of `namespace` (istioctl's vsHostInGateway): a server host
 * `ns/host` counts for that namespace only (`.` as the namespace: the Gateway's own), a bare host or one under the
 * namespace `*` for all (host `*` under `*`: every host).
 */
function istioGatewayHosts(gw: IstioGateway, namespace: string): string[] {
  const out: string[] = [];
  for (const server of gw.spec.servers ?? []) {
    for (const h of server.hosts ?? []) {
      const slash = h.indexOf('/');
      if (slash < 0) {
        out.push(h);
        continue;
      }
      const [scope, host] = [h.slice(0, slash), h.slice(slash + 1)];
      if (scope === '*' || scope === namespace || (scope === EXPORT_TO_LOCAL && gw.metadata.namespace === namespace)) out.push(scope === '*' && host === '*' ? '*' : host);
    }
  }
  return out;
}

const virtualServiceGateways: Analyzer = {
  name: 'virtualservice.GatewayAnalyzer',
  description: 'Checks the gateways associated with each virtual service',
  analyze(ctx) {
    const istioGateways = new Map(foreignOfKind(ctx, 'Gateway').map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
    const kubeGateways = new Map(ofKind(ctx, 'Gateway').map((o) => [fullName(o.resource), o.resource]));
    for (const o of ofKind(ctx, 'VirtualService')) {
      const vs: VirtualService = o.resource;
      const ns = vs.metadata.namespace ?? 'default';
      const hosts = vs.spec.hosts ?? [];
      (vs.spec.gateways ?? []).forEach((name, i) => {
        if (name === MESH_GATEWAY) return;
        const field = ['spec', 'gateways', i];
        if (name.slice(name.indexOf('/') + 1).includes(INTERNAL_GATEWAY_MARK)) {
          report(ctx, o, MESSAGES.ReferencedInternalGateway, MESSAGES.ReferencedInternalGateway.text(fullName(vs), name), field);
          return;
        }
        const key = name.includes('/') ? name : `${ns}/${name}`;
        // An Istio Gateway of that name first, then a Kubernetes one, as istioctl looks them up.
        const istio = istioGateways.get(key);
        const kube = istio ? undefined : kubeGateways.get(key);
        if (!istio && !kube) report(ctx, o, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text('gateway', name), field);
        let served: string[] = [];
        if (istio) served = istioGatewayHosts(istio, ns);
        // A Kubernetes Gateway listener without hostname takes every host.
        else if (kube) served = kube.spec.listeners.some((l) => !l.hostname) ? ['*'] : kube.spec.listeners.map((l) => l.hostname!);
        if (!served.some((g) => hosts.some((h) => hostsOverlap(g, h)))) {
          report(ctx, o, MESSAGES.VirtualServiceHostNotFoundInGateway, MESSAGES.VirtualServiceHostNotFoundInGateway.text(hosts, fullName(vs), key), field);
        }
      });
    }
  },
};

interface StringMatch {
  exact?: string;
  prefix?: string;
}

/** The fields of an HTTP match istiod compares for overlapping URI prefixes. */
interface HttpMatch {
  name?: string;
  uri?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  port?: number;
}

// The map fields of a match: Go writes them whole. Its other fields are struct fields, left out at their zero value.
const MATCH_MAPS = new Set(['headers', 'withoutHeaders', 'queryParams', 'sourceLabels']);

const isGoZero = (v: unknown, mapField: boolean): boolean =>
  v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (mapField && isRecord(v) && Object.keys(v).length === 0);

// A value as Go's encoding/json writes the struct it decodes to (`omitempty` fields), keys sorted.
function goJson(v: unknown, isMap = false): unknown {
  if (Array.isArray(v)) return v.map((x) => goJson(x));
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const mapField = !isMap && MATCH_MAPS.has(k);
    if (!isMap && isGoZero(v[k], mapField)) continue;
    out[k] = goJson(v[k], mapField);
  }
  return out;
}

/** istiod's asJSON: matches with the same text are the same match (an HTTP match's `name` does not count). */
function matchIdentity(match: Record<string, unknown>): string {
  return JSON.stringify(goJson({ ...match, name: undefined }));
}

/** An HTTP match with a URI prefix as istiod's genMatchHTTPRoutes sees it: values `exact:…` or `prefix:…`. */
interface PrefixMatch {
  rule: string;
  match: string;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

const exactOrPrefix = (m: StringMatch | undefined): string => (m?.exact ? `exact:${m.exact}` : m?.prefix ? `prefix:${m.prefix}` : '');
const valuesOf = (matches: Record<string, StringMatch> | undefined) => new Map(Object.entries(matches ?? {}).map(([k, m]) => [k, exactOrPrefix(m)]));

function prefixMatch(m: HttpMatch, rule: string, match: string): PrefixMatch | undefined {
  if (!m.uri?.prefix) return undefined;
  return {
    rule, match, prefix: m.uri.prefix, port: m.port ?? 0,
    // A match without a method counts as GET, as istiod has it.
    method: exactOrPrefix(m.method) || 'exact:GET',
    authority: exactOrPrefix(m.authority),
    headers: valuesOf(m.headers), queryParams: valuesOf(m.queryParams), withoutHeaders: valuesOf(m.withoutHeaders),
  };
}

/**
 * istiod's coveredValidation: whether the earlier match `a` takes the requests of the later `b`: b's prefix extends
 * a's, on the same port, and each other value of a starts with b's (istiod's direction), with the same header,
 * query and without-header names.
 */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  const mapCovers = (x: Map<string, string>, y: Map<string, string>) => x.size === y.size && [...x].every(([k, v]) => y.has(k) && v.startsWith(y.get(k)!));
  return b.prefix.startsWith(a.prefix) && a.port === b.port && a.method.startsWith(b.method) && a.authority.startsWith(b.authority) &&
    mapCovers(a.headers, b.headers) && mapCovers(a.queryParams, b.queryParams) && mapCovers(a.withoutHeaders, b.withoutHeaders);
}

interface RuleFindings {
  unused(rule: string, reason: string): void;
  ineffective(rule: string, match: string, earlier: string): void;
}

/**
 * istiod's analyzeUnreachable{HTTP,TCP,TLS}Rules, one algorithm for the three: a rule after one without matches is
 * never reached, nor one whose matches all repeat earlier ones. Returns the HTTP matches with a URI prefix that repeat
 * none, for the overlap check.
 */
function unreachableRules(rules: VirtualServiceRule[], http: boolean, findings: RuleFindings): PrefixMatch[] {
  // TCP and TLS rules and matches have no names.
  const ruleName = (i: number) => (http && rules[i]!.name ? goQuote(rules[i]!.name!) : `#${i}`);
  const first = new Map<string, number>();
  const prefixes: PrefixMatch[] = [];
  let catchAll = -1;
  rules.forEach((rule, i) => {
    const matches = rule.match ?? [];
    if (matches.length === 0) {
      if (catchAll >= 0) findings.unused(ruleName(i), 'only the last rule can have no matches');
      catchAll = i;
      return;
    }
    let repeats = 0;
    matches.forEach((match, j) => {
      if (catchAll >= 0) {
        findings.unused(ruleName(i), 'route without matches defined before');
        return;
      }
      const matchName = http && typeof match.name === 'string' && match.name ? goQuote(match.name) : `#${j}`;
      const identity = matchIdentity(match);
      const earlier = first.get(identity);
      if (earlier !== undefined) {
        findings.ineffective(ruleName(i), matchName, ruleName(earlier));
        repeats++;
        return;
      }
      first.set(identity, i);
      const prefix = http ? prefixMatch(match as HttpMatch, ruleName(i), matchName) : undefined;
      if (prefix) prefixes.push(prefix);
    });
    if (repeats === matches.length) findings.unused(ruleName(i), 'all matches used by prior rules');
  });
  return prefixes;
}

// Istio reports these from its schema validation of VirtualServices (the webhook's warnings); here the loader
// validates files and the API server the cluster's objects, so only the warnings are left to this analyzer.
const virtualServiceRules: Analyzer = {
  name: 'schema.ValidationAnalyzer.VirtualService',
  description: "Runs schema validation as an analyzer on 'VirtualService' resources",
  analyze(ctx) {
    for (const o of ofKind(ctx, 'VirtualService')) {
      const rules = o.resource.spec as VirtualServiceRules;
      const findings: RuleFindings = {
        unused: (rule, reason) => report(ctx, o, MESSAGES.VirtualServiceUnreachableRule, MESSAGES.VirtualServiceUnreachableRule.text(rule, reason)),
        ineffective: (rule, match, earlier) => report(ctx, o, MESSAGES.VirtualServiceIneffectiveMatch, MESSAGES.VirtualServiceIneffectiveMatch.text(rule, match, earlier)),
      };
      const prefixes = unreachableRules(rules.http ?? [], true, findings);
      prefixes.forEach((a, i) => {
        for (const b of prefixes.slice(i + 1)) {
          // The same prefix is the duplicate check's.
          if (b.prefix !== a.prefix && covers(a, b)) findings.ineffective(b.rule, `${b.match} of prefix ${b.prefix}`, `${a.match} of prefix ${a.prefix} on ${a.rule}`);
        }
      });
      unreachableRules(rules.tcp ?? [], false, findings);
      unreachableRules(rules.tls ?? [], false, findings);
    }
  },
};

// Ambit's own: a namespace or workload whose istio.io/use-waypoint names no Gateway. (A Service's shows as its
// WaypointBound condition, which conditions.ConditionAnalyzer reports, as in Istio.)
const useWaypoint: Analyzer = {
  name: 'waypoint.UseWaypointAnalyzer',
  description: 'Checks that namespaces and workloads labelled istio.io/use-waypoint name an existing waypoint Gateway',
  analyze(ctx) {
    const gateways = new Set(ofKind(ctx, 'Gateway').map((o) => `${o.resource.metadata.namespace ?? 'default'}/${o.resource.metadata.name}`));
    const check = (o: AnalyzedObject, labels: Labels | undefined, namespace: string) => {
      if (!labels || !(USE_WAYPOINT_LABEL in labels)) return;
      const ref = useWaypointOf(labels, namespace);
      if (ref === undefined || ref === 'none' || gateways.has(ref.key)) return;
      report(ctx, o, MESSAGES.ReferencedResourceNotFound, MESSAGES.ReferencedResourceNotFound.text('waypoint', ref.key));
    };
    for (const o of ctx.objects) {
      const r = o.resource;
      if (r.kind === 'Namespace') check(o, r.metadata.labels, r.metadata.name);
      else if (r.kind === 'Pod') check(o, r.metadata.labels, r.metadata.namespace ?? 'default');
      else if (r.kind === 'Deployment' && o.fromFile) check(o, r.spec.template.metadata?.labels, r.metadata.namespace ?? 'default');
    }
  },
};

// The values of gateway.istio.io/managed on Services a gateway controller made (not the user's).
const CONTROLLER_MANAGED = new Set(['istio.io-gateway-controller', 'istio.io-mesh-controller', 'istio.io-eastwest-controller']);

const portNames: Analyzer = {
  name: 'service.PortNameAnalyzer',
  description: 'Checks the port names associated with each service',
  analyze(ctx) {
    for (const o of ofKind(ctx, 'Service')) {
      const svc: Service = o.resource;
      const labels = svc.metadata.labels ?? {};
      // The control plane's own Services, and those a gateway controller made, are not the user's to rename.
      if ('istio' in labels || labels.release === 'istio' || CONTROLLER_MANAGED.has(labels['gateway.istio.io/managed'] ?? '')) continue;
      const externalName = svc.spec.type === 'ExternalName';
      for (const p of svc.spec.ports ?? []) {
        if (portProtocol(p) !== 'UNSPECIFIED' && !(p.name === 'tcp' && externalName)) continue;
        if (externalName) {
          report(ctx, o, MESSAGES.ExternalNameServiceTypeInvalidPortName, MESSAGES.ExternalNameServiceTypeInvalidPortName.text());
          continue;
        }
        // The API server defaults an absent targetPort to the port; a file's object has not been through it (Go's "0").
        const targetPort = p.targetPort ?? (o.fromFile ? 0 : p.port);
        report(ctx, o, MESSAGES.PortNameIsNotUnderNamingConvention, MESSAGES.PortNameIsNotUnderNamingConvention.text(p.name ?? '', p.port, String(targetPort)));
      }
    }
  },
};

/** Every analyzer, in istioctl's `-L` order (sorted by name). */
export const ANALYZERS: readonly Analyzer[] = [
  authorizationPolicies, conditions, conflictingMeshGatewayHosts, destinationHosts, destinationRules, destinationRuleSubsets, envoyFilters, injection, gatewaySelectors, portNames,
  sidecarSelectors, useWaypoint, virtualServiceGateways, virtualServiceRules,
].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

