// How kubectl names each kind: resource (plural) name, API group and short names. Used to parse `ambit get KIND`
// and to print `deployment.apps/web created` the way kubectl users expect.
import type { Kind } from '../api/types.js';

export interface KindInfo {
  kind: Kind;
  plural: string;
  group: string;
  short: string[];
}

export const KINDS: KindInfo[] = [
  { kind: 'Namespace', plural: 'namespaces', group: '', short: ['ns'] },
  { kind: 'ServiceAccount', plural: 'serviceaccounts', group: '', short: ['sa'] },
  { kind: 'Pod', plural: 'pods', group: '', short: ['po'] },
  { kind: 'Service', plural: 'services', group: '', short: ['svc'] },
  { kind: 'Deployment', plural: 'deployments', group: 'apps', short: ['deploy'] },
  { kind: 'Node', plural: 'nodes', group: '', short: ['no'] },
  { kind: 'EndpointSlice', plural: 'endpointslices', group: 'discovery.k8s.io', short: [] },
  { kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', group: 'security.istio.io', short: ['ap'] },
  { kind: 'PeerAuthentication', plural: 'peerauthentications', group: 'security.istio.io', short: ['pa'] },
  { kind: 'RequestAuthentication', plural: 'requestauthentications', group: 'security.istio.io', short: ['ra'] },
  { kind: 'DestinationRule', plural: 'destinationrules', group: 'networking.istio.io', short: ['dr'] },
  { kind: 'VirtualService', plural: 'virtualservices', group: 'networking.istio.io', short: ['vs'] },
  { kind: 'ServiceEntry', plural: 'serviceentries', group: 'networking.istio.io', short: ['se'] },
  { kind: 'WorkloadEntry', plural: 'workloadentries', group: 'networking.istio.io', short: ['we'] },
  { kind: 'Telemetry', plural: 'telemetries', group: 'telemetry.istio.io', short: ['telemetry'] },
  { kind: 'Gateway', plural: 'gateways', group: 'gateway.networking.k8s.io', short: ['gtw'] },
  { kind: 'GatewayClass', plural: 'gatewayclasses', group: 'gateway.networking.k8s.io', short: ['gc'] },
  { kind: 'HTTPRoute', plural: 'httproutes', group: 'gateway.networking.k8s.io', short: ['httproute'] },
  { kind: 'GRPCRoute', plural: 'grpcroutes', group: 'gateway.networking.k8s.io', short: ['grpcroute'] },
];

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}

/** Resolves what a user typed (`pods`, `pod`, `po`, `deployments.apps`, `Deployment`) to a kind. */
export function lookupKind(word: string): KindInfo | undefined {
  const w = word.toLowerCase();
  return KINDS.find(
    (k) =>
      k.plural === w ||
      k.kind.toLowerCase() === w ||
      k.short.includes(w) ||
      (k.group && (`${k.plural}.${k.group}` === w || `${k.kind.toLowerCase()}.${k.group}` === w)),
  );
}

/** `deployment.apps` / `pod`: the prefix kubectl prints before `/name`. */
export function qualifiedKind(kind: string): string {
  const info = kindInfo(kind);
  const k = kind.toLowerCase();
  return info?.group ? `${k}.${info.group}` : k;
}
