// A synthetic, deterministic ambient mesh for control-plane benchmarks: namespaces (most enrolled in ambient),
// one ServiceAccount and one Service per app, pods spread over nodes, and AuthorizationPolicies /
// PeerAuthentications of every shape the translation handles (selector / namespace / mesh-wide, ALLOW / DENY,
// principals / namespaces / ports / IP blocks, a few with HTTP attributes that ztunnel must drop).
import type { AuthorizationPolicy, Namespace, PeerAuthentication, Pod, Resource, Service, ServiceAccount } from '../../src/api/types.js';
import { DEFAULT_CLUSTER_ID, LABEL_DATAPLANE_MODE, ROOT_NAMESPACE } from '../../src/api/types.js';
import { podUid } from '../../src/model/workloads.js';

export interface MeshScale {
  namespaces: number;
  nodes: number;
  pods: number;
  services: number;
  policies: number;
}

export interface SyntheticMesh {
  scale: MeshScale;
  resources: Resource[];
  /** Count per kind, for the report. */
  counts: Record<string, number>;
  pods: Pod[];
}

const APP_PORT = 8080;
const GRPC_PORT = 9090;

/** `10.a.b.c` for the n-th address of a /8-sized range starting at `base` (first octets as a number). */
function ipv4(base: number, n: number): string {
  const v = base + n;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
const POD_RANGE = (10 << 24) | (128 << 16); // 10.128.0.0/9
const SERVICE_RANGE = (10 << 24) | (96 << 16); // 10.96.0.0/12
const CHANGED_POD_RANGE = (10 << 24) | (64 << 16); // 10.64.0.0/10: addresses pods move to during the benchmark

const nsName = (i: number) => `bench-ns-${i}`;
const appName = (i: number) => `app-${i}`;

function meta(name: string, namespace: string, labels?: Record<string, string>) {
  return labels ? { name, namespace, labels } : { name, namespace };
}

/**
 * Builds the mesh. Apps are spread round-robin over namespaces (`services` apps in all, one Service each) and pods
 * round-robin over apps and nodes, so every namespace, app and node gets an even share.
 */
export function syntheticMesh(scale: MeshScale): SyntheticMesh {
  if (scale.services < scale.namespaces) throw new Error(`need at least one service per namespace (${scale.services} < ${scale.namespaces})`);
  const namespaces: Namespace[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ROOT_NAMESPACE } }];
  for (let n = 0; n < scale.namespaces; n++) {
    // Every tenth namespace is not enrolled: its pods are still listed, with tunnel protocol NONE.
    const labels: Record<string, string> = n % 10 === 9 ? { team: `t${n % 7}` } : { [LABEL_DATAPLANE_MODE]: 'ambient', team: `t${n % 7}` };
    namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsName(n), labels } });
  }

  const appNs = (a: number) => nsName(a % scale.namespaces);
  const serviceAccounts: ServiceAccount[] = [];
  const services: Service[] = [];
  for (let a = 0; a < scale.services; a++) {
    serviceAccounts.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(appName(a), appNs(a)) });
    services.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(appName(a), appNs(a)),
      spec: {
        selector: { app: appName(a) },
        clusterIP: ipv4(SERVICE_RANGE, a + 1),
        ports: [
          { name: 'http', port: 80, targetPort: APP_PORT },
          { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc' },
        ],
      },
    });
  }

  const pods: Pod[] = [];
  for (let p = 0; p < scale.pods; p++) {
    const a = p % scale.services;
    const app = appName(a);
    pods.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: meta(`${app}-${Math.floor(p / scale.services)}`, appNs(a), { app, version: 'v1', tier: ['web', 'api', 'db'][a % 3]! }),
      spec: {
        serviceAccountName: app,
        nodeName: `node-${p % scale.nodes}`,
        containers: [{ name: 'app', image: 'ambit/echo', ports: [{ name: 'http', containerPort: APP_PORT }, { name: 'grpc', containerPort: GRPC_PORT }] }],
      },
      status: { phase: 'Running', podIP: ipv4(POD_RANGE, p + 1), conditions: [{ type: 'Ready', status: 'True' }] },
    });
  }

  const policies: AuthorizationPolicy[] = [];
  for (let i = 0; i < scale.policies; i++) policies.push(policy(i, scale));

  // Mesh-wide STRICT, one PERMISSIVE namespace per ten, and per-workload port-level exceptions.
  const peerAuthentications: PeerAuthentication[] = [
    { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta('default', ROOT_NAMESPACE), spec: { mtls: { mode: 'STRICT' } } },
  ];
  for (let n = 0; n < scale.namespaces; n += 10) {
    peerAuthentications.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: meta('default', nsName(n)),
      spec: { mtls: { mode: 'PERMISSIVE' } },
    });
    peerAuthentications.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: meta('metrics-plaintext', nsName(n + 1 < scale.namespaces ? n + 1 : n)),
      spec: { selector: { matchLabels: { tier: 'web' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { [String(GRPC_PORT)]: { mode: 'PERMISSIVE' } } },
    });
  }

  const resources: Resource[] = [...namespaces, ...serviceAccounts, ...services, ...pods, ...policies, ...peerAuthentications];
  const counts: Record<string, number> = {};
  for (const r of resources) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  return { scale, resources, counts, pods };
}

/** The i-th policy: ten shapes in turn, in the namespace of app i (one in a hundred mesh-wide in the root namespace). */
function policy(i: number, scale: MeshScale): AuthorizationPolicy {
  const a = (i * 7) % scale.services;
  const ns = nsName(a % scale.namespaces);
  const peerNs = nsName((a + 1) % scale.namespaces);
  const peer = appName((a + scale.namespaces) % scale.services);
  const principal = (app: string, namespace: string) => `cluster.local/ns/${namespace}/sa/${app}`;
  const base = (name: string, namespace = ns) => ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy' as const, metadata: meta(name, namespace) });
  const selector = { matchLabels: { app: appName(a) } };
  switch (i % 10) {
    case 0:
      return { ...base(`allow-peer-${i}`), spec: { selector, action: 'ALLOW', rules: [{ from: [{ source: { principals: [principal(peer, peerNs)] } }], to: [{ operation: { ports: [String(APP_PORT)] } }] }] } };
    case 1:
      return { ...base(`deny-other-ns-${i}`), spec: { selector, action: 'DENY', rules: [{ from: [{ source: { notNamespaces: [ns, peerNs] } }], to: [{ operation: { ports: [String(GRPC_PORT)] } }] }] } };
    case 2:
      return { ...base(`allow-ns-${i}`), spec: { action: 'ALLOW', rules: [{ from: [{ source: { namespaces: [ns, peerNs, ROOT_NAMESPACE] } }] }] } };
    case 3:
      return { ...base(`deny-blocks-${i}`), spec: { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['192.168.0.0/16', '172.16.0.0/12'] } }] }] } };
    case 4:
      return { ...base(`allow-tier-${i}`), spec: { selector: { matchLabels: { tier: 'db' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: [principal(peer, peerNs), principal(appName(a), ns)] } }], to: [{ operation: { ports: [String(APP_PORT), String(GRPC_PORT)] } }] }] } };
    case 5:
      // HTTP attributes: ztunnel gets the policy without that rule, and the status says so.
      return { ...base(`allow-http-${i}`), spec: { selector, action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/healthz'] } }] }, { from: [{ source: { namespaces: [peerNs] } }] }] } };
    case 6:
      return { ...base(`deny-port-${i}`), spec: { selector, action: 'DENY', rules: [{ to: [{ operation: { notPorts: [String(APP_PORT), String(GRPC_PORT)] } }] }] } };
    case 7:
      return { ...base(`allow-when-${i}`), spec: { selector, action: 'ALLOW', rules: [{ when: [{ key: 'source.namespace', values: [peerNs] }, { key: 'destination.port', values: [String(APP_PORT)] }] }] } };
    case 8:
      return { ...base(`allow-sa-${i}`), spec: { selector, action: 'ALLOW', rules: [{ from: [{ source: { serviceAccounts: [`${peerNs}/${peer}`] } }] }] } };
    default:
      // Every hundredth policy is mesh-wide (root namespace, no selector); the others of this shape select by tier.
      if (i % 100 === 9) return { ...base(`mesh-deny-${i}`, ROOT_NAMESPACE), spec: { action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['*'] } }], to: [{ operation: { ports: ['2379'] } }] }] } };
      return { ...base(`allow-web-${i}`), spec: { selector: { matchLabels: { tier: 'web', version: 'v1' } }, action: 'ALLOW', rules: [{ from: [{ source: { namespaces: [peerNs] } }] }] } };
  }
}

/** The workload uid (xDS Address name) a pod translates to. */
export function workloadUidOf(pod: Pod): string {
  return podUid(DEFAULT_CLUSTER_ID, pod.metadata.namespace ?? '', pod.metadata.name);
}

/**
 * The `round`-th single-pod change: a copy of `pod` with a new IP (even rounds) or a new `version` label (odd
 * rounds). Both change exactly one Address resource: its addresses or its canonical revision.
 */
export function changedPod(pod: Pod, round: number): { pod: Pod; ip: string; revision: string } {
  const ip = round % 2 === 0 ? ipv4(CHANGED_POD_RANGE, round + 1) : (pod.status?.podIP ?? '');
  const revision = round % 2 === 1 ? `v${round + 2}` : (pod.metadata.labels?.version ?? 'latest');
  return {
    pod: {
      ...pod,
      metadata: { ...pod.metadata, labels: { ...pod.metadata.labels, version: revision } },
      status: { ...pod.status, podIP: ip },
    },
    ip,
    revision,
  };
}
