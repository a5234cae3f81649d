// Resource types Ambit reads: the Kubernetes core kinds a mesh needs, Istio's security/networking/telemetry kinds
// and the Gateway API kinds. Shapes follow the upstream CRDs/OpenAPI; only fields Ambit uses or validates are typed,
// everything else is carried through untouched (index signature on spec objects).
import { modelType } from './kinds.js';

export interface ObjectMeta {
  name: string;
  /** Set on objects a controller created (`<owner>-`); istiod only follows owner references of such pods. */
  generateName?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  generation?: number;
  resourceVersion?: string;
  /** Objects a controller created for another carry it here; the local cluster deletes them with their owner. */
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  /** Required by Kubernetes (the validation requires it); optional in the type for objects read before validation. */
  uid?: string;
  controller?: boolean;
}

export interface TypeMeta {
  apiVersion: string;
  kind: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

// ---- Kubernetes core ---------------------------------------------------------------------------------------------

export interface Namespace extends TypeMeta {
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export interface ServiceAccount extends TypeMeta {
  kind: 'ServiceAccount';
  metadata: ObjectMeta;
}

export interface ServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  targetPort?: number | string;
  appProtocol?: string;
}

export interface Service extends TypeMeta {
  kind: 'Service';
  metadata: ObjectMeta;
  spec: {
    type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
    selector?: Record<string, string>;
    ports?: ServicePort[];
    clusterIP?: string; // "None" = headless
    clusterIPs?: string[];
    externalName?: string;
    [k: string]: unknown;
  };
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string; apiVersion?: string } };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface Probe {
  httpGet?: { path?: string; port: number | string; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

/** The fields of a (pod's or container's) securityContext the local cluster applies; others are carried through. */
export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  /** Container only. */
  privileged?: boolean;
  /** Container only. */
  allowPrivilegeEscalation?: boolean;
  /** Container only. */
  capabilities?: { add?: string[]; drop?: string[] };
  /** Pod only. */
  supplementalGroups?: number[];
  [k: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  workingDir?: string;
  readinessProbe?: Probe;
  volumeMounts?: VolumeMount[];
  securityContext?: SecurityContext;
  [k: string]: unknown;
}

/** A projected service account token: what the kubelet asks the API server for and the file it writes it to. */
export interface ServiceAccountTokenProjection {
  /** Default: the API server's own audience. */
  audience?: string;
  /** Default: 3600. */
  expirationSeconds?: number;
  path: string;
}

export interface Volume {
  name: string;
  /** Of the projected sources only serviceAccountToken is typed; the others are carried through. */
  projected?: { sources?: ({ serviceAccountToken?: ServiceAccountTokenProjection } & Record<string, unknown>)[]; [k: string]: unknown };
  emptyDir?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  serviceAccountName?: string;
  serviceAccount?: string;
  nodeName?: string;
  /** The pod shares its node's network namespace: never captured (istio-cni), HOST_NETWORK to ztunnel. */
  hostNetwork?: boolean;
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  hostname?: string;
  subdomain?: string;
  securityContext?: SecurityContext;
  [k: string]: unknown;
}

export interface Pod extends TypeMeta {
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    conditions?: { type: string; status: string }[];
    [k: string]: unknown;
  };
}

/** What an EndpointSlice endpoint points at (a core ObjectReference). */
export interface EndpointTargetRef {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiVersion?: string;
  [k: string]: unknown;
}

export interface Endpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  hostname?: string;
  targetRef?: EndpointTargetRef;
  nodeName?: string;
  zone?: string;
  [k: string]: unknown;
}

export interface EndpointPort {
  /** kube-apiserver defaults an absent name to "". */
  name?: string;
  /** kube-apiserver defaults an absent protocol to TCP. */
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  /** Absent: every port. */
  port?: number;
  appProtocol?: string;
}

/**
 * discovery.k8s.io/v1 EndpointSlice: a Service's endpoints. Kubernetes writes them for Services with a selector; for a
 * Service without one they are written by hand (or by another controller) and are its only endpoints. The Service is
 * named by the `kubernetes.io/service-name` label.
 */
export interface EndpointSlice extends TypeMeta {
  kind: 'EndpointSlice';
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: Endpoint[];
  ports?: EndpointPort[];
}

/** A cluster node; only its labels matter to the mesh (the topology labels give workloads their locality). */
export interface Node extends TypeMeta {
  kind: 'Node';
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface Deployment extends TypeMeta {
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: {
    replicas?: number;
    selector: { matchLabels?: Record<string, string> };
    template: { metadata?: Partial<ObjectMeta>; spec: PodSpec };
    [k: string]: unknown;
  };
}

// ---- Istio security ----------------------------------------------------------------------------------------------

export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface AuthzSource {
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

export interface AuthzOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthzCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthzRule {
  from?: { source?: AuthzSource }[];
  to?: { operation?: AuthzOperation }[];
  when?: AuthzCondition[];
}

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationPolicy extends TypeMeta {
  kind: 'AuthorizationPolicy';
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    targetRef?: PolicyTargetReference;
    targetRefs?: PolicyTargetReference[];
    action?: AuthzAction;
    provider?: { name: string };
    rules?: AuthzRule[];
  };
  status?: { conditions?: Condition[] };
}

export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthentication extends TypeMeta {
  kind: 'PeerAuthentication';
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    mtls?: { mode?: MtlsMode };
    portLevelMtls?: Record<string, { mode?: MtlsMode }>;
  };
}

export interface JwtRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders?: { name: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header: string; claim: string }[];
  timeout?: string;
  spaceDelimitedClaims?: string[];
}

export interface RequestAuthentication extends TypeMeta {
  kind: 'RequestAuthentication';
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    targetRef?: PolicyTargetReference;
    targetRefs?: PolicyTargetReference[];
    jwtRules?: JwtRule[];
  };
}

// ---- Istio networking / telemetry (parsed and validated now, used by the waypoint) --------------------------------

export interface DestinationRule extends TypeMeta {
  kind: 'DestinationRule';
  metadata: ObjectMeta;
  spec: { host: string; trafficPolicy?: Record<string, unknown>; subsets?: { name: string; labels?: Record<string, string>; trafficPolicy?: Record<string, unknown> }[]; exportTo?: string[]; workloadSelector?: WorkloadSelector; [k: string]: unknown };
}

/** An Istio WorkloadEntry spec: a non-Kubernetes workload (also a ServiceEntry's inline endpoint). */
export interface WorkloadEntrySpec {
  /** An IP, or a DNS name (a workload reached by hostname). */
  address?: string;
  /** Port name (a ServiceEntry port's name) → the workload's port for it. */
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  /** `region/zone/subzone`. */
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface WorkloadEntry extends TypeMeta {
  kind: 'WorkloadEntry';
  metadata: ObjectMeta;
  spec: WorkloadEntrySpec;
}

export type ServiceEntryResolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';

export interface ServiceEntryPort {
  number: number;
  protocol?: string;
  name: string;
  /** Absent or 0: the port number. */
  targetPort?: number;
}

/** An Istio ServiceEntry: services outside Kubernetes (or extra hostnames), with inline or selected endpoints. */
export interface ServiceEntry extends TypeMeta {
  kind: 'ServiceEntry';
  metadata: ObjectMeta;
  spec: {
    hosts: string[];
    /** VIPs: IPs or CIDRs. */
    addresses?: string[];
    ports?: ServiceEntryPort[];
    location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
    /** Absent: NONE. */
    resolution?: ServiceEntryResolution;
    endpoints?: WorkloadEntrySpec[];
    /** Pods and WorkloadEntries of the namespace with these labels (not `matchLabels`, unlike policies). */
    workloadSelector?: { labels?: Record<string, string> };
    exportTo?: string[];
    subjectAltNames?: string[];
  };
  /** Written by istiod's IP auto-allocation controller: one address per host. */
  status?: { addresses?: { host?: string; value: string }[]; [k: string]: unknown };
}

export interface VirtualService extends TypeMeta {
  kind: 'VirtualService';
  metadata: ObjectMeta;
  spec: { hosts?: string[]; gateways?: string[]; http?: Record<string, unknown>[]; tcp?: Record<string, unknown>[]; tls?: Record<string, unknown>[]; exportTo?: string[]; [k: string]: unknown };
}

export interface Telemetry extends TypeMeta {
  kind: 'Telemetry';
  metadata: ObjectMeta;
  spec: { selector?: WorkloadSelector; targetRef?: PolicyTargetReference; targetRefs?: PolicyTargetReference[]; tracing?: unknown[]; metrics?: unknown[]; accessLogging?: unknown[] };
}

// ---- Gateway API ---------------------------------------------------------------------------------------------------

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface GatewayListener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: Record<string, unknown>;
  allowedRoutes?: { namespaces?: { from?: 'All' | 'Same' | 'Selector'; selector?: { matchLabels?: Record<string, string> } }; kinds?: { group?: string; kind: string }[] };
}

export interface Gateway extends TypeMeta {
  kind: 'Gateway';
  metadata: ObjectMeta;
  spec: { gatewayClassName: string; listeners: GatewayListener[]; addresses?: { type?: string; value: string }[]; infrastructure?: Record<string, unknown> };
  status?: { addresses?: { type?: string; value: string }[]; conditions?: Condition[] };
}

export interface GatewayClass extends TypeMeta {
  kind: 'GatewayClass';
  metadata: ObjectMeta;
  spec: { controllerName: string; description?: string; parametersRef?: Record<string, unknown> };
  status?: { conditions?: Condition[] };
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: Record<string, unknown>[];
}

export interface HTTPRouteRule {
  name?: string;
  matches?: Record<string, unknown>[];
  filters?: Record<string, unknown>[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { attempts?: number; backoff?: string; codes?: number[] };
  [k: string]: unknown;
}

export interface HTTPRoute extends TypeMeta {
  kind: 'HTTPRoute';
  metadata: ObjectMeta;
  spec: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: HTTPRouteRule[] };
}

export interface GRPCRoute extends TypeMeta {
  kind: 'GRPCRoute';
  metadata: ObjectMeta;
  spec: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: { name?: string; matches?: Record<string, unknown>[]; filters?: Record<string, unknown>[]; backendRefs?: BackendRef[] }[] };
}

// ---- The union ---------------------------------------------------------------------------------------------------

export type Resource =
  | Namespace
  | ServiceAccount
  | Service
  | Pod
  | Deployment
  | Node
  | EndpointSlice
  | AuthorizationPolicy
  | PeerAuthentication
  | RequestAuthentication
  | DestinationRule
  | ServiceEntry
  | WorkloadEntry
  | VirtualService
  | Telemetry
  | Gateway
  | GatewayClass
  | HTTPRoute
  | GRPCRoute;

export type Kind = Resource['kind'];

/** Kinds whose objects live in a namespace (all but Namespace, Node and GatewayClass; see ./kinds.ts). */
export function isNamespaced(kind: Kind): boolean {
  return modelType(kind).namespaced;
}

/** Stable key of an object: `Kind/namespace/name` (namespace empty for cluster-scoped kinds). */
export function resourceKey(r: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}

/** How Istio users see an object in messages: `Kind namespace/name` (or `Kind name` when cluster-scoped). */
export function displayName(r: { kind: string; metadata?: { name?: string; namespace?: string } }): string {
  const name = r.metadata?.name ?? '<unnamed>';
  return r.metadata?.namespace ? `${r.kind} ${r.metadata.namespace}/${name}` : `${r.kind} ${name}`;
}

export const ROOT_NAMESPACE = 'istio-system';
/** Namespaces kube-apiserver's NamespaceLifecycle admission never lets anyone delete. */
export const IMMORTAL_NAMESPACES: readonly string[] = ['default', 'kube-system', 'kube-public'];
/** Its refusal, after `namespaces "<name>" is forbidden: `. */
export const IMMORTAL_NAMESPACE_REASON = 'this namespace may not be deleted';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_CLUSTER_ID = 'Kubernetes';
export const LABEL_DATAPLANE_MODE = 'istio.io/dataplane-mode';
