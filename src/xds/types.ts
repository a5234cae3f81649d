// The configuration a ztunnel receives, as plain objects in protobufjs "object form" (camelCase field names, enum
// values as their names, bytes as Uint8Array). They mirror Istio's `workload.proto` (istio.workload) and
// `authorization.proto` (istio.security) field for field; proto/ holds the wire definitions and the xDS server encodes
// these objects with protobufjs. Field numbers live in the .proto files only.

export const TYPE_ADDRESS = 'type.googleapis.com/istio.workload.Address';
export const TYPE_AUTHORIZATION = 'type.googleapis.com/istio.security.Authorization';
/** Ambit's own: a waypoint's configuration (proto/ambit/waypoint.proto). */
export const TYPE_WAYPOINT = 'type.googleapis.com/ambit.waypoint.Resource';

export type TunnelProtocol = 'NONE' | 'HBONE' | 'LEGACY_ISTIO_MTLS';
export type WorkloadType = 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';
export type WorkloadStatus = 'HEALTHY' | 'UNHEALTHY';
export type NetworkMode = 'STANDARD' | 'HOST_NETWORK';
export type AppProtocol = 'UNKNOWN' | 'HTTP11' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS';

export interface NetworkAddress {
  network: string;
  address: Uint8Array; // 4 or 16 raw bytes
  length?: number;
}

export interface NamespacedHostname {
  namespace: string;
  hostname: string;
}

export interface GatewayAddress {
  hostname?: NamespacedHostname;
  address?: NetworkAddress;
  hboneMtlsPort: number;
}

export interface Port {
  servicePort: number;
  targetPort: number;
  appProtocol?: AppProtocol;
}

export interface PortList {
  ports: Port[];
}

export interface Workload {
  uid: string;
  name: string;
  namespace: string;
  addresses: Uint8Array[];
  hostname?: string;
  network: string;
  tunnelProtocol: TunnelProtocol;
  trustDomain: string;
  serviceAccount: string;
  waypoint?: GatewayAddress;
  networkGateway?: GatewayAddress;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: WorkloadType;
  workloadName: string;
  nativeTunnel?: boolean;
  applicationTunnel?: { protocol: 'NONE' | 'PROXY'; port: number };
  services: Record<string, PortList>; // key: `namespace/hostname`
  authorizationPolicies: string[]; // `namespace/name`, selector policies only
  status: WorkloadStatus;
  clusterId: string;
  locality?: { region: string; zone: string; subzone: string };
  /** Absent means STANDARD (the proto default). */
  networkMode?: NetworkMode;
  /** google.protobuf.UInt32Value: the share of a Service's traffic relative to its other endpoints; absent: 1. */
  capacity?: { value: number };
}

/** A workload's share of a Service's traffic relative to its other endpoints (istiod sends a WorkloadEntry's `weight`); unset: 1. */
export function capacityOf(w: Workload): number {
  return w.capacity?.value ?? 1;
}

export interface Service {
  name: string;
  namespace: string;
  hostname: string;
  addresses: NetworkAddress[];
  ports: Port[];
  subjectAltNames: string[];
  waypoint?: GatewayAddress;
  loadBalancing?: { routingPreference: string[]; mode: string; healthPolicy?: string };
  ipFamilies?: 'AUTOMATIC' | 'IPV4_ONLY' | 'IPV6_ONLY' | 'DUAL';
  canonical?: boolean;
  /** A canary between two waypoints: each takes its weight's share of new connections (`waypoint` stays the primary). */
  weightedWaypoints?: WeightedWaypoint[];
}

export interface WeightedWaypoint {
  destination: GatewayAddress;
  weight: number;
}

/** Oneof `type` of istio.workload.Address: exactly one is set. */
export interface Address {
  workload?: Workload;
  service?: Service;
}

// ---- istio.security -----------------------------------------------------------------------------------------------

export type Scope = 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
export type Action = 'ALLOW' | 'DENY';

/** Oneof: exactly one of exact / prefix / suffix / presence. */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  suffix?: string;
  presence?: Record<string, never>;
}

export interface CidrAddress {
  address: Uint8Array;
  length: number;
}

export interface ServiceAccountMatch {
  namespace: string;
  serviceAccount: string;
}

export interface Match {
  namespaces: StringMatch[];
  notNamespaces: StringMatch[];
  principals: StringMatch[];
  notPrincipals: StringMatch[];
  sourceIps: CidrAddress[];
  notSourceIps: CidrAddress[];
  destinationIps: CidrAddress[];
  notDestinationIps: CidrAddress[];
  destinationPorts: number[];
  notDestinationPorts: number[];
  serviceAccounts: ServiceAccountMatch[];
  notServiceAccounts: ServiceAccountMatch[];
}

export interface Clause {
  matches: Match[];
}

export interface Rule {
  clauses: Clause[];
}

export interface Authorization {
  name: string;
  namespace: string;
  scope: Scope;
  action: Action;
  rules: Rule[];
  dryRun: boolean;
}

// ---- ambit.waypoint (proto/ambit/waypoint.proto) -------------------------------------------------------------------

/** An AuthorizationPolicy rule as the user wrote it (istio.security.v1beta1.Rule); every field may be absent. */
export interface PolicyRule {
  from?: { source?: PolicySource }[];
  to?: { operation?: PolicyOperation }[];
  when?: { key: string; values?: string[]; notValues?: string[] }[];
}

export interface PolicySource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  trustDomains?: string[];
  notTrustDomains?: string[];
}

export interface PolicyOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export type WaypointTrafficType = 'SERVICE' | 'WORKLOAD' | 'ALL' | 'NONE';
export type WaypointProtocol = 'UNSPECIFIED' | 'TCP' | 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC_WEB' | 'HTTPS' | 'TLS' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UDP';
export type WaypointAction = 'ALLOW' | 'DENY' | 'AUDIT';

export interface WaypointSelf {
  name: string;
  namespace: string;
  hostname: string;
  trustDomain: string;
  trafficType: WaypointTrafficType;
  /** `<namespace>/<name>` of the policies that apply to all of this waypoint's traffic. */
  policies: string[];
  /** `<namespace>/<name>` of the RequestAuthentications that apply to all of it. */
  requestAuthentications?: string[];
}

export interface WaypointServicePort {
  port: number;
  name: string;
  protocol: WaypointProtocol;
}

export interface WaypointService {
  name: string;
  namespace: string;
  hostname: string;
  ports: WaypointServicePort[];
  /** `<namespace>/<name>` of the policies targeting this Service. */
  policies: string[];
  /** VirtualService, then HTTPRoute and GRPCRoute matches in evaluation order (the first that matches wins); none: the Service itself. */
  routes: WaypointRoute[];
  /** VirtualService tls/tcp routes, at most one per port. */
  tcpRoutes?: WaypointTcpRoute[];
  /** `<namespace>/<name>` of the RequestAuthentications targeting this Service. */
  requestAuthentications?: string[];
}

export interface WaypointTcpRoute {
  route: string;
  rule: number;
  port: number;
  backends: WaypointRouteBackend[];
}

/** One match of one HTTPRoute or GRPCRoute rule, or of one VirtualService http route (ambit.waypoint.Route). */
export interface WaypointRoute {
  /** `<namespace>/<name>` of the HTTPRoute, GRPCRoute or VirtualService; `rule`: the index of its rule or http route. */
  route: string;
  rule: number;
  /** The Service port the route is restricted to; 0: every port. */
  port: number;
  match?: WaypointRouteMatch;
  backends: WaypointRouteBackend[];
  /** With no backends and no redirect, the empty local reply's status (istiod: 500). */
  directStatus: number;
  requestHeaders?: WaypointHeaderModifier;
  responseHeaders?: WaypointHeaderModifier;
  /** Envoy's route name: the rule's `name`, else `<namespace>.<route>.<rule index>`. */
  name: string;
  /** RequestRedirect: a redirect answered by the waypoint instead of a backend. */
  redirect?: WaypointRedirect;
  /** URLRewrite: the host and path the backend sees. */
  rewrite?: { hostname: string; path?: WaypointPathModifier };
  /** timeouts.request, retries included; absent or 0: none. */
  timeoutMs?: number;
  /** The rule's retry policy, or istiod's default one; absent (not sent by the control plane): reset-before-request × 2. */
  retry?: WaypointRetry;
  /** RequestMirror: copies sent elsewhere, responses discarded. */
  mirrors?: { backend: WaypointRouteBackend; percent: number }[];
  /** The body of the direct response (a VirtualService's directResponse); absent: empty. */
  directBody?: string;
  fault?: WaypointFault;
  cors?: WaypointCorsPolicy;
}

/** A VirtualService's fault injection; percentages 0–100. */
export interface WaypointFault {
  delayMs: number;
  delayPercent: number;
  abortStatus: number;
  abortPercent: number;
  abortGrpc: boolean;
  abortGrpcStatus: number;
}

export interface WaypointCorsPolicy {
  allowOrigins: WaypointValueMatch[];
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  maxAge: string;
  allowCredentials: boolean;
  forwardUnmatchedPreflights: boolean;
}

export interface WaypointRedirect {
  /** Empty: the request's. */
  scheme: string;
  hostname: string;
  /** 0: the request's port, or the scheme's default when the scheme changes. */
  port: number;
  path?: WaypointPathModifier;
  statusCode: number;
}

export interface WaypointPathModifier {
  /** PREFIX_REWRITE: Envoy's prefix_rewrite (VirtualService), the matched string prefix (or whole path) replaced. */
  type: 'REPLACE_FULL_PATH' | 'REPLACE_PREFIX_MATCH' | 'PREFIX_REWRITE';
  value: string;
}

export interface WaypointRetry {
  /** Retries after the first try. */
  attempts: number;
  codes: number[];
  /** 0: Envoy's 25 ms. */
  backoffMs: number;
  /** Each try until response headers; 0: none. */
  perTryTimeoutMs: number;
  /** Envoy's retry_on conditions besides status codes; absent: Istio's default policy's. */
  conditions?: string[];
}

export interface WaypointRouteMatch {
  /** PREFIX: segment-aware (Gateway API); STRING_PREFIX: a plain string prefix (VirtualService). */
  path?: { type: WaypointPathMatchType; value: string; ignoreCase?: boolean };
  headers: WaypointValueMatch[];
  queryParams: WaypointValueMatch[];
  /** Empty: any method. */
  method: string;
}

export type WaypointPathMatchType = 'PREFIX' | 'EXACT' | 'REGEX' | 'STRING_PREFIX';

/**
 * A header (name lower-case) or query parameter: its value exactly, a prefix of it (VirtualService; "": present), or
 * an RE2 expression matched in full.
 */
export interface WaypointValueMatch {
  name: string;
  value: string;
  regex: boolean;
  prefix?: boolean;
  /** withoutHeaders: absent or not matching. */
  invert?: boolean;
}

export interface WaypointRouteBackend {
  hostname: string;
  namespace: string;
  port: number;
  weight: number;
  /** Did not resolve: requests sent to it get 500 (NC). */
  invalid: boolean;
  requestHeaders?: WaypointHeaderModifier;
  /** A VirtualService destination's subset, listed in the Service's Destination. */
  subset?: string;
}

/** `set` replaces, `add` appends, `remove` deletes; names lower-case. */
export interface WaypointHeaderModifier {
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
  remove: string[];
}

export interface WaypointPolicy {
  name: string;
  namespace: string;
  action: WaypointAction;
  rules: PolicyRule[];
  dryRun: boolean;
}

/** Oneof `kind` of ambit.waypoint.Resource: exactly one is set. */
export interface WaypointResource {
  waypoint?: WaypointSelf;
  service?: WaypointService;
  policy?: WaypointPolicy;
  destination?: WaypointDestination;
  requestAuthentication?: WaypointRequestAuthentication;
}

export interface WaypointRequestAuthentication {
  name: string;
  namespace: string;
  rules: WaypointJwtRule[];
}

export interface WaypointJwtRule {
  issuer: string;
  audiences: string[];
  jwksUri: string;
  jwks: string;
  fromHeaders: { name: string; prefix: string }[];
  fromParams: string[];
  fromCookies: string[];
  outputPayloadToHeader: string;
  forwardOriginalToken: boolean;
  outputClaimToHeaders: { header: string; claim: string }[];
  timeoutMs: number;
  spaceDelimitedClaims: string[];
}

/** The DestinationRule of a Service the waypoint sends to, per Service port and subset. */
export interface WaypointDestination {
  hostname: string;
  namespace: string;
  /** `<namespace>/<name>` of the DestinationRule. */
  rule: string;
  clusters: WaypointCluster[];
}

export interface WaypointCluster {
  port: number;
  /** Empty: the Service's own cluster. */
  subset: string;
  /** A subset's endpoints (workload uids). */
  workloads: string[];
  loadBalancer?: WaypointLoadBalancer;
  connectionPool?: WaypointConnectionPool;
  outlierDetection?: WaypointOutlierDetection;
  tls?: WaypointUpstreamTls;
}

export interface WaypointLoadBalancer {
  simple: 'LEAST_REQUEST' | 'ROUND_ROBIN' | 'RANDOM';
  consistentHash?: WaypointConsistentHash;
}

/** Exactly one key. */
export interface WaypointConsistentHash {
  httpHeaderName?: string;
  httpCookie?: { name: string; path: string; ttlMs: number };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  maglev: boolean;
  tableSize: number;
}

/** 0: Istio's default (no limit; 10 s connect; 1 h idle). */
export interface WaypointConnectionPool {
  maxConnections: number;
  connectTimeoutMs: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRequestsPerConnection: number;
  maxRetries: number;
  idleTimeoutMs: number;
  h2Upgrade: boolean;
  useClientProtocol: boolean;
}

export interface WaypointOutlierDetection {
  /** 0: off. */
  consecutiveErrors: number;
  /** 0: off. */
  consecutiveGatewayErrors: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

export interface WaypointUpstreamTls {
  mode: 'SIMPLE' | 'MUTUAL';
  sni: string;
  subjectAltNames: string[];
  insecureSkipVerify: boolean;
  /** PEM file paths on the waypoint's machine; no CA: the system's roots. */
  caCertificates: string;
  clientCertificate: string;
  privateKey: string;
}

/** The glob collection a waypoint subscribes to, and the prefix of all its resource names. */
export function waypointCollection(namespace: string, name: string): string {
  return `${namespace}/${name}/*`;
}

export function waypointResourceName(gatewayNamespace: string, gatewayName: string, r: WaypointResource): string {
  const prefix = `${gatewayNamespace}/${gatewayName}/`;
  if (r.waypoint) return `${prefix}waypoint`;
  if (r.service) return `${prefix}service/${r.service.namespace}/${r.service.hostname}`;
  if (r.destination) return `${prefix}destination/${r.destination.namespace}/${r.destination.hostname}`;
  if (r.requestAuthentication) return `${prefix}authn/${r.requestAuthentication.namespace}/${r.requestAuthentication.name}`;
  return `${prefix}policy/${r.policy!.namespace}/${r.policy!.name}`;
}

/** xDS resource names, as istiod names them. */
export function workloadResourceName(w: Workload): string {
  return w.uid;
}
export function serviceResourceName(s: Service): string {
  return `${s.namespace}/${s.hostname}`;
}
export function authorizationResourceName(a: Authorization): string {
  return `${a.namespace}/${a.name}`;
}
