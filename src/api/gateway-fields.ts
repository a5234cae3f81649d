// The fields of the Gateway API's kinds as the v1.2.0 standard-channel CRDs declare them, in the notation of
// ./fields.ts, plus the experimental-channel fields the mesh acts on (a route rule's `name`, HTTPRoute `retry`,
// the mirror filter's `percent` and `fraction`), so that what Ambit implements can be written. v1 and v1beta1 share
// one schema. Unlike Istio's, these CRDs declare `status` fully, so it is checked like `spec`.
import type { FieldTable } from './fields.js';

const S = '';
const LIST = '[]';
const MAP = '{}';

export const GATEWAY_API_FIELDS: FieldTable = {
  kinds: {
    GatewayClass: 'GatewayClass',
    Gateway: 'Gateway',
    HTTPRoute: 'HTTPRoute',
    GRPCRoute: 'GRPCRoute',
    ReferenceGrant: 'ReferenceGrant',
  },
  types: {
    // Shared.
    Condition: { type: S, status: S, observedGeneration: S, lastTransitionTime: S, reason: S, message: S },
    ParentReference: { group: S, kind: S, namespace: S, name: S, sectionName: S, port: S },
    BackendObjectReference: { group: S, kind: S, name: S, namespace: S, port: S },
    LocalObjectReference: { group: S, kind: S, name: S },
    SecretObjectReference: { group: S, kind: S, name: S, namespace: S },
    RouteGroupKind: { group: S, kind: S },
    HeaderMatch: { type: S, name: S, value: S },
    HeaderFilter: { set: '[]Header', add: '[]Header', remove: LIST },
    Header: { name: S, value: S },
    MirrorFilter: { backendRef: 'BackendObjectReference', percent: S, fraction: 'Fraction' },
    Fraction: { numerator: S, denominator: S },
    RouteStatus: { parents: '[]RouteParentStatus' },
    RouteParentStatus: { parentRef: 'ParentReference', controllerName: S, conditions: '[]Condition' },

    GatewayClass: { spec: 'GatewayClassSpec', status: 'GatewayClassStatus' },
    GatewayClassSpec: { controllerName: S, parametersRef: 'ParametersReference', description: S },
    ParametersReference: { group: S, kind: S, name: S, namespace: S },
    GatewayClassStatus: { conditions: '[]Condition' },

    Gateway: { spec: 'GatewaySpec', status: 'GatewayStatus' },
    GatewaySpec: { gatewayClassName: S, listeners: '[]Listener', addresses: '[]GatewayAddress', infrastructure: 'GatewayInfrastructure' },
    GatewayAddress: { type: S, value: S },
    GatewayInfrastructure: { labels: MAP, annotations: MAP, parametersRef: 'LocalParametersReference' },
    LocalParametersReference: { group: S, kind: S, name: S },
    Listener: { name: S, hostname: S, port: S, protocol: S, tls: 'GatewayTLS', allowedRoutes: 'AllowedRoutes' },
    GatewayTLS: { mode: S, certificateRefs: '[]SecretObjectReference', options: MAP },
    AllowedRoutes: { namespaces: 'RouteNamespaces', kinds: '[]RouteGroupKind' },
    RouteNamespaces: { from: S, selector: 'LabelSelector' },
    LabelSelector: { matchLabels: MAP, matchExpressions: '[]LabelSelectorRequirement' },
    LabelSelectorRequirement: { key: S, operator: S, values: LIST },
    GatewayStatus: { addresses: '[]GatewayAddress', conditions: '[]Condition', listeners: '[]ListenerStatus' },
    ListenerStatus: { name: S, supportedKinds: '[]RouteGroupKind', attachedRoutes: S, conditions: '[]Condition' },

    HTTPRoute: { spec: 'HTTPRouteSpec', status: 'RouteStatus' },
    HTTPRouteSpec: { parentRefs: '[]ParentReference', hostnames: LIST, rules: '[]HTTPRouteRule' },
    HTTPRouteRule: {
      name: S,
      matches: '[]HTTPRouteMatch',
      filters: '[]HTTPRouteFilter',
      backendRefs: '[]HTTPBackendRef',
      timeouts: 'HTTPRouteTimeouts',
      retry: 'HTTPRouteRetry',
    },
    HTTPRouteMatch: { path: 'HTTPPathMatch', headers: '[]HeaderMatch', queryParams: '[]HeaderMatch', method: S },
    HTTPPathMatch: { type: S, value: S },
    HTTPRouteFilter: {
      type: S,
      requestHeaderModifier: 'HeaderFilter',
      responseHeaderModifier: 'HeaderFilter',
      requestMirror: 'MirrorFilter',
      requestRedirect: 'RedirectFilter',
      urlRewrite: 'URLRewriteFilter',
      extensionRef: 'LocalObjectReference',
    },
    RedirectFilter: { scheme: S, hostname: S, path: 'PathModifier', port: S, statusCode: S },
    URLRewriteFilter: { hostname: S, path: 'PathModifier' },
    PathModifier: { type: S, replaceFullPath: S, replacePrefixMatch: S },
    HTTPBackendRef: { group: S, kind: S, name: S, namespace: S, port: S, weight: S, filters: '[]HTTPRouteFilter' },
    HTTPRouteTimeouts: { request: S, backendRequest: S },
    HTTPRouteRetry: { codes: LIST, attempts: S, backoff: S },

    GRPCRoute: { spec: 'GRPCRouteSpec', status: 'RouteStatus' },
    GRPCRouteSpec: { parentRefs: '[]ParentReference', hostnames: LIST, rules: '[]GRPCRouteRule' },
    GRPCRouteRule: { name: S, matches: '[]GRPCRouteMatch', filters: '[]GRPCRouteFilter', backendRefs: '[]GRPCBackendRef' },
    GRPCRouteMatch: { method: 'GRPCMethodMatch', headers: '[]HeaderMatch' },
    GRPCMethodMatch: { type: S, service: S, method: S },
    GRPCRouteFilter: {
      type: S,
      requestHeaderModifier: 'HeaderFilter',
      responseHeaderModifier: 'HeaderFilter',
      requestMirror: 'MirrorFilter',
      extensionRef: 'LocalObjectReference',
    },
    GRPCBackendRef: { group: S, kind: S, name: S, namespace: S, port: S, weight: S, filters: '[]GRPCRouteFilter' },

    // The CRD has no status for ReferenceGrant.
    ReferenceGrant: { spec: 'ReferenceGrantSpec' },
    ReferenceGrantSpec: { from: '[]ReferenceGrantFrom', to: '[]ReferenceGrantTo' },
    ReferenceGrantFrom: { group: S, kind: S, namespace: S },
    ReferenceGrantTo: { group: S, kind: S, name: S },
  },
};
