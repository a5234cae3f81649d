// Randomized check of the incremental ambient translation: a seeded sequence of edits (Service churn above all, with
// targetRefs AuthorizationPolicies on Services, ServiceEntries, Gateways and the GatewayClass, HTTPRoutes and GRPCRoutes attached to Services and ServiceEntries,
// VirtualServices naming Services (short names, FQDNs, wildcards) and routing to them, DestinationRules for them
// (subsets resolved to the pods they pick), waypoints coming and going, selector policies, pods, Deployments,
// EndpointSlices, ServiceEntries, WorkloadEntries and namespaces) applied to one index, which after every store change must equal an index built afresh over the same
// store, and whose emitted changes, replayed, must give its own snapshot and statuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy, GRPCRoute, HTTPRouteRule, ParentReference, Resource, Service } from '../../src/api/types.js';
import { resourceKey } from '../../src/api/types.js';
import { AmbientIndex, type ObjectStatus } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT, type WaypointResource } from '../../src/xds/types.js';

const clock = () => new Date('2026-01-01T00:00:00Z');
const TYPES = [TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT];

/** mulberry32: small, seeded, good enough to pick edits. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMESPACES = ['a', 'b'];
const SERVICES = ['s0', 's1', 's2', 's3'];
const PODS = ['p0', 'p1', 'p2'];
const POLICIES = ['ap0', 'ap1', 'ap2', 'ap3', 'ap4'];
const ROUTES = ['r0', 'r1', 'r2'];
// r0 is also an HTTPRoute's name: the two kinds' routes on one Service tie on age, namespace and name.
const GRPC_ROUTES = ['r0', 'g1'];
const VIRTUAL_SERVICES = ['vs0', 'vs1'];
const DESTINATION_RULES = ['dr0', 'dr1'];
const APPS = ['x', 'y'];
const MANAGED = { 'gateway.istio.io/managed': 'istio.io-mesh-controller', 'gateway.networking.k8s.io/gateway-name': 'wp' };

/** Every object the edits may create, change or delete: a slot with a generator of random versions of it. */
function universe(r: () => number): { key: string; weight: number; make: () => Resource }[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
  const chance = (p: number) => r() < p;
  const maybe = <T extends object>(p: number, o: T): T | object => (chance(p) ? o : {});
  const slots: { key: string; weight: number; make: () => Resource }[] = [];
  const add = (weight: number, make: () => Resource) => slots.push({ key: resourceKey(make()), weight, make });

  add(1, () => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'istio-waypoint', generation: 1 + Math.floor(r() * 3), labels: { ...maybe(0.4, { 'istio.io/waypoint-for': pick(['service', 'workload', 'all']) }) } },
    spec: { controllerName: chance(0.9) ? 'istio.io/mesh-controller' : 'example.com/other' },
  }));
  // Nodes: their topology labels are the locality of the pods on them.
  for (const name of ['n1', 'n2']) {
    add(1, () => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { ...maybe(0.7, { 'topology.kubernetes.io/region': pick(['r1', 'r2']) }), ...maybe(0.5, { 'topology.kubernetes.io/zone': pick(['z1', 'z2']) }), ...maybe(0.3, { 'topology.istio.io/subzone': 's' }) } },
    }));
  }
  NAMESPACES.forEach((ns, n) => {
    const other = NAMESPACES[(n + 1) % NAMESPACES.length]!;
    // A canary: the other namespace's waypoint (usable when it admits this namespace), or this namespace's.
    const canary = (): Record<string, string> => pick<Record<string, string>>([{ 'istio.io/use-waypoint-canary': 'wp', 'istio.io/use-waypoint-canary-namespace': other }, { 'istio.io/use-waypoint-canary': 'wp' }]);
    // The labels an object may carry to name a waypoint: this namespace's, the other's, none, or an opt-out.
    const useWaypoint = (): Record<string, string> => pick<Record<string, string>>([{}, {}, { 'istio.io/use-waypoint': 'wp' }, { 'istio.io/use-waypoint': 'wp', 'istio.io/use-waypoint-namespace': other }, { 'istio.io/use-waypoint': 'none' }]);
    add(1, () => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { ...maybe(0.8, { 'istio.io/dataplane-mode': 'ambient' }), ...maybe(0.5, { 'istio.io/use-waypoint': 'wp' }), ...maybe(0.5, { team: pick(['t1', 't2']) }) } },
    }));
    add(2, () => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'wp', namespace: ns, generation: 1 + Math.floor(r() * 3), labels: { ...maybe(0.5, { 'istio.io/waypoint-for': pick(['service', 'workload', 'all', 'none']) }) } },
      spec: {
        gatewayClassName: chance(0.9) ? 'istio-waypoint' : 'istio',
        listeners: [
          {
            name: 'mesh',
            port: 15008,
            protocol: 'HBONE',
            ...maybe(0.5, { allowedRoutes: { namespaces: pick([{ from: 'All' as const }, { from: 'Same' as const }, { from: 'Selector' as const, selector: { matchLabels: { team: 't1' } } }]) } }),
          },
        ],
      },
    }));
    // The waypoint's Service and pod, as the waypoint controller and the cluster would create them.
    add(2, () => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'wp', namespace: ns, labels: MANAGED },
      spec: { selector: MANAGED, clusterIP: `10.96.${n}.100`, ports: [{ name: 'mesh', port: 15008, appProtocol: 'hbone' }] },
    }));
    add(2, () => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'wp-1', namespace: ns, uid: `uid-${ns}-wp-1`, labels: MANAGED },
      spec: { serviceAccountName: 'wp', containers: [{ name: 'istio-proxy' }] },
      status: { podIP: `10.1.${n}.100`, conditions: [{ type: 'Ready', status: chance(0.8) ? 'True' : 'False' }] },
    }));
    SERVICES.forEach((name, i) =>
      add(9, () => {
        const ports = [{ name: 'http', port: 80 }, { name: 'grpc-api', port: 9090 }, { port: 3306 }].filter(() => chance(0.6));
        return {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: {
            name,
            namespace: ns,
            generation: 1 + Math.floor(r() * 3),
            labels: { ...useWaypoint(), ...maybe(0.3, { tier: pick(['fe', 'be']) }), ...maybe(0.3, canary()) },
            ...maybe(0.3, { annotations: { 'istio.io/use-waypoint-canary-weight': pick(['0', '40', 'x']) } }),
          },
          spec: { ...maybe(0.7, { selector: { app: pick(APPS) } }), clusterIP: `10.96.${n}.${i + 1}`, ports: ports.length ? ports : [{ name: 'http', port: 80 }] },
        };
      }),
    );
    PODS.forEach((name, i) =>
      add(2, () => ({
        apiVersion: 'v1',
        kind: 'Pod',
        // Now and then created by a controller (named after it), on the host network, or not given an IP yet.
        metadata: {
          name,
          namespace: ns,
          uid: `uid-${ns}-${name}`,
          labels: { app: pick(APPS), ...useWaypoint() },
          ...maybe(0.3, { generateName: 'ctl-', ownerReferences: [{ apiVersion: 'apps/v1', kind: pick(['ReplicaSet', 'StatefulSet', 'Job']), name: 'ctl-12345678', uid: 'u', controller: true }] }),
        },
        spec: { serviceAccountName: pick(['default', 'web']), nodeName: pick(['n1', 'n2']), ...maybe(0.15, { hostNetwork: true }), containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] },
        status: { ...maybe(0.85, { podIP: `10.1.${n}.${i + 1}` }), conditions: [{ type: 'Ready', status: 'True' }] },
      })),
    );
    // EndpointSlices of Services (with or without a selector): pods by reference (right or stale uid) and opaque IPs.
    for (const name of ['e0', 'e1']) {
      add(3, () => ({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name, namespace: ns, labels: { ...maybe(0.9, { 'kubernetes.io/service-name': pick(SERVICES) }) } },
        addressType: chance(0.9) ? 'IPv4' : 'FQDN',
        endpoints: PODS.filter(() => chance(0.5)).map((p, i) =>
          chance(0.6)
            ? { addresses: [`10.1.${n}.${i + 1}`], targetRef: { kind: 'Pod', namespace: ns, name: p, uid: chance(0.8) ? `uid-${ns}-${p}` : 'stale' } }
            : { addresses: [`192.168.${n}.${i + 1}`], ...maybe(0.5, { conditions: { ready: chance(0.5) } }) },
        ),
        ports: [{ name: pick(['http', 'grpc-api', '']), protocol: chance(0.9) ? 'TCP' : 'UDP', port: pick([8080, 9090]) }],
      }));
    }
    // ServiceEntries: external hosts and hosts a Kubernetes Service of this namespace also has (the Service wins, else
    // the oldest entry); explicit, status-written or auto-allocated addresses; inline endpoints or a selector over
    // pods and WorkloadEntries; a waypoint by label.
    for (const [i, name] of ['se0', 'se1'].entries()) {
      add(3, () => {
        const hosts = [pick(['api.example.com', 'db.example.com', `${pick(SERVICES)}.${ns}.svc.cluster.local`])];
        const resolution = pick(['NONE', 'STATIC', 'DNS'] as const);
        const members = chance(0.5)
          ? { endpoints: [{ address: pick([`10.3.${n}.${i + 1}`, 'vm.example.com']), labels: { app: pick(APPS), ...useWaypoint() }, ...maybe(0.5, { ports: { http: 8080 } }), ...maybe(0.3, { serviceAccount: 'vm' }) }] }
          : maybe(0.7, { workloadSelector: { labels: { app: pick(APPS) } } });
        return {
          apiVersion: 'networking.istio.io/v1',
          kind: 'ServiceEntry',
          metadata: { name, namespace: ns, creationTimestamp: pick(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z']), labels: { ...useWaypoint() } },
          spec: {
            hosts,
            ...maybe(0.4, { addresses: [pick([`240.1.${n}.${i + 1}`, `10.50.${n}.0/24`])] }),
            ports: [{ number: 80, name: 'http', protocol: pick(['HTTP', 'TCP']), ...maybe(0.5, { targetPort: 8080 }) }],
            resolution,
            ...members,
          },
          ...maybe(0.2, { status: { addresses: hosts.map((host) => ({ host, value: `240.240.${n}.${i + 7}` })) } }),
        };
      });
    }
    // WorkloadEntries: selected by ServiceEntries and (by label) Services; an IP or a hostname.
    for (const [i, name] of ['we0', 'we1'].entries()) {
      add(2, () => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name, namespace: ns, labels: { app: pick(APPS), ...useWaypoint() } },
        spec: { address: chance(0.8) ? `10.2.${n}.${i + 1}` : 'vm.example.com', ...maybe(0.5, { serviceAccount: 'vm' }), ...maybe(0.3, { ports: { http: 8080 } }), ...maybe(0.2, { network: 'n1' }) },
      }));
    }
    add(1, () => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd0', namespace: ns },
      spec: { replicas: 1 + Math.floor(r() * 2), selector: { matchLabels: { app: 'z' } }, template: { metadata: { labels: { app: 'z', ...useWaypoint() } }, spec: { containers: [{ name: 'c' }] } } },
    }));
    // A VirtualService for a ServiceEntry host (routes for it reach the entry's waypoint).
    add(3, () => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'vs-entry', namespace: ns },
      spec: { hosts: [pick(['api.example.com', 'db.example.com'])], http: [{ match: [{ uri: { prefix: '/v1' } }], route: [{ destination: { host: 'api.example.com', port: { number: 80 } } }] }] },
    }));
    // A policy for the waypoint in front of one of this namespace's ServiceEntries.
    add(3, () => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'ap-entry', namespace: ns },
      spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }], targetRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: pick(['se0', 'se1']) }] },
    }));
    POLICIES.forEach((name) =>
      add(5, () => {
        const target = () =>
          pick([
            ...SERVICES.map((s) => ({ kind: 'Service', name: s })),
            { group: '', kind: 'Service', name: 'wp' },
            { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'wp' },
            { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'nowhere' },
            { group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'istio-waypoint' },
            { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'se0' },
            { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'se1' },
            { group: 'example.com', kind: 'Thing', name: 's0' },
          ]);
        const action = pick(['ALLOW', 'ALLOW', 'DENY', 'CUSTOM'] as const);
        const shape = r();
        const spec: AuthorizationPolicy['spec'] = {
          action,
          ...(action === 'CUSTOM' ? { provider: { name: 'opa' } } : {}),
          rules: pick([[{}], [{ to: [{ operation: { paths: ['/admin'] } }] }], [{ from: [{ source: { namespaces: [ns] } }] }]]),
        };
        if (shape < 0.65) spec.targetRefs = chance(0.7) ? [target()] : [target(), target()];
        else if (shape < 0.75) spec.targetRef = target();
        else if (shape < 0.9) spec.selector = { matchLabels: { app: pick(APPS) } };
        return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace: ns, generation: 1 + Math.floor(r() * 3) }, spec };
      }),
    );
  });
  // HTTPRoutes and GRPCRoutes: parents among the Services and ServiceEntries of both namespaces (and ones that never
  // exist, and a Gateway), backends likewise, now and then a filter Ambit does not implement or one the kind does not have; two
  // creation times so that ties are broken by name.
  NAMESPACES.forEach((ns, n) => {
    const other = NAMESPACES[(n + 1) % NAMESPACES.length]!;
    const service = () => pick([...SERVICES, 'ghost']);
    const parentRef = (): ParentReference =>
      pick<ParentReference>([
        { group: '', kind: 'Service', name: service() },
        { group: '', kind: 'Service', name: service(), port: pick([80, 9090]) },
        { group: '', kind: 'Service', name: service(), sectionName: pick(['http', 'grpc-api']) },
        { group: '', kind: 'Service', name: service(), namespace: other },
        { group: 'networking.istio.io', kind: 'ServiceEntry', name: pick(['se0', 'se1', 'se9']) },
        { group: 'networking.istio.io', kind: 'ServiceEntry', name: pick(['se0', 'se1']), ...pick([{ port: 80 }, { sectionName: 'http' }, { namespace: other }]) },
        { name: 'wp' },
      ]);
    const rule = (): HTTPRouteRule => ({
      ...maybe(0.7, { matches: [{ path: { type: pick(['PathPrefix', 'Exact', 'RegularExpression']), value: pick(['/', '/a', '/a/b/']) }, ...maybe(0.3, { method: 'GET' }), ...maybe(0.3, { headers: [{ name: 'X-V', value: '1' }] }) }] }),
      ...maybe(0.9, { backendRefs: [{ name: service(), port: 80, ...maybe(0.3, { weight: pick([0, 1, 5]) }), ...maybe(0.2, { namespace: other }) }] }),
      ...maybe(0.1, { filters: [{ type: pick(['RequestRedirect', 'ExtensionRef', 'RequestHeaderModifier']), requestHeaderModifier: { set: [{ name: 'X-A', value: 'b' }] } }] }),
    });
    const metadata = (name: string) => ({ name, namespace: ns, generation: 1 + Math.floor(r() * 3), creationTimestamp: pick(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z']) });
    const parentRefs = () => (chance(0.8) ? [parentRef()] : [parentRef(), parentRef()]);
    ROUTES.forEach((name) =>
      add(4, () => ({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: metadata(name),
        spec: { parentRefs: parentRefs(), rules: chance(0.7) ? [rule()] : [rule(), rule()] },
      })),
    );
    type GRPCRouteRule = NonNullable<GRPCRoute['spec']['rules']>[number];
    const grpcMethod = () =>
      pick([{ service: 'pkg.Svc' }, { service: 'pkg.Svc', method: 'Get' }, { method: 'Get' }, { type: 'RegularExpression', service: 'pkg\\..*' }, { type: 'RegularExpression', method: 'G.t' }]);
    const grpcRule = (): GRPCRouteRule => ({
      ...maybe(0.7, { matches: [{ ...maybe(0.8, { method: grpcMethod() }), ...maybe(0.3, { headers: [{ name: 'X-V', value: '1' }] }) }] }),
      ...maybe(0.9, { backendRefs: [{ name: service(), port: 9090, ...maybe(0.3, { weight: pick([0, 1, 5]) }), ...maybe(0.2, { namespace: other }) }] }),
      ...maybe(0.1, { filters: [{ type: pick(['RequestMirror', 'URLRewrite', 'ResponseHeaderModifier']), responseHeaderModifier: { set: [{ name: 'X-A', value: 'b' }] } }] }),
    });
    GRPC_ROUTES.forEach((name) =>
      add(3, () => ({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GRPCRoute',
        metadata: metadata(name),
        spec: { parentRefs: parentRefs(), rules: chance(0.7) ? [grpcRule()] : [grpcRule(), grpcRule()] },
      })),
    );
  });
  // VirtualServices: hosts by short name, FQDN (also of the other namespace's Services) or wildcard; destinations
  // with or without a port (needed when the Service has several), now and then a subset.
  NAMESPACES.forEach((ns, n) => {
    const other = NAMESPACES[(n + 1) % NAMESPACES.length]!;
    const host = () => pick([pick(SERVICES), `${pick(SERVICES)}.${other}.svc.cluster.local`, `${pick(SERVICES)}.${ns}.svc.cluster.local`, `*.${ns}.svc.cluster.local`, 'ghost', 'api.example.com', '*.example.com']);
    const destination = () => ({ host: pick([...SERVICES, 'ghost', `${pick(SERVICES)}.${other}.svc.cluster.local`, 'api.example.com']), ...maybe(0.5, { port: { number: pick([80, 9090]) } }), ...maybe(0.1, { subset: 'v1' }) });
    const http = () => ({
      ...maybe(0.6, { match: [{ uri: pick([{ prefix: '/a' }, { exact: '/a' }, { regex: '/a.*' }]), ...maybe(0.3, { port: pick([80, 9090]) }) }] }),
      ...(chance(0.8) ? { route: chance(0.7) ? [{ destination: destination() }] : [{ destination: destination(), weight: 70 }, { destination: destination(), weight: 30 }] } : { directResponse: { status: 404 } }),
    });
    VIRTUAL_SERVICES.forEach((name) =>
      add(3, () => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name, namespace: ns, creationTimestamp: pick(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z']) },
        spec: { hosts: chance(0.7) ? [host()] : [host(), host()], http: chance(0.7) ? [http()] : [http(), http()] },
      })),
    );
  });
  // DestinationRules: hosts by short name, FQDN (also of the other namespace's Services) or wildcard, in both
  // namespaces and the root namespace, exported nowhere else, to the other namespace or to all; a top-level policy,
  // subsets picking pods by label (also labels the Service selector contradicts), now and then a workloadSelector (never
  // for waypoints); two creation times so that rules for one host merge in name order too.
  const drPolicy = () =>
    pick([{ loadBalancer: { simple: pick(['ROUND_ROBIN', 'LEAST_CONN']) } }, { connectionPool: { tcp: { maxConnections: 1 + Math.floor(r() * 3) } } }, { outlierDetection: {}, portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'SIMPLE' } }] }]);
  [...NAMESPACES, 'istio-system'].forEach((ns, n) => {
    const other = NAMESPACES[(n + 1) % NAMESPACES.length]!;
    const host = () => pick([pick(SERVICES), `${pick(SERVICES)}.${other}.svc.cluster.local`, `*.${pick(NAMESPACES)}.svc.cluster.local`, '*', 'api.example.com', 'api.example.com']);
    for (const name of DESTINATION_RULES) {
      add(3, () => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name, namespace: ns, creationTimestamp: pick(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z']) },
        spec: {
          host: host(),
          ...maybe(0.4, { exportTo: pick([['.'], ['*'], [other]]) }),
          ...maybe(0.6, { trafficPolicy: drPolicy() }),
          ...maybe(0.6, { subsets: [{ name: 'v1', labels: { app: pick(APPS) } }, ...(chance(0.5) ? [{ name: 'v2', trafficPolicy: drPolicy() }] : [])] }),
          ...maybe(0.1, { workloadSelector: { matchLabels: { app: pick(APPS) } } }),
        },
      }));
    }
  });
  // RequestAuthentications: targetRefs to Services, the waypoint Gateway (or one that does not exist), the class from the
  // root namespace, or a selector (never sent to a waypoint).
  for (const ns of [...NAMESPACES, 'istio-system']) {
    add(3, () => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: ns },
      spec: {
        ...(chance(0.8)
          ? {
              targetRefs: [
                pick([
                  ...SERVICES.map((s) => ({ group: '', kind: 'Service', name: s })),
                  { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: pick(['wp', 'nowhere']) },
                  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'istio-waypoint' },
                ]),
              ],
            }
          : { selector: { matchLabels: { app: pick(APPS) } } }),
        jwtRules: [{ issuer: pick(['https://a.example', 'https://b.example']), jwks: '{"keys":[]}' }],
      },
    }));
  }
  // Root-namespace policies: the GatewayClass, or a Gateway of another namespace by name only.
  for (const name of ['root0', 'root1']) {
    add(2, () => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: 'istio-system' },
      spec: {
        targetRefs: [pick([{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: pick(['istio-waypoint', 'istio']) }, { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'wp' }])],
        action: pick(['ALLOW', 'DENY'] as const),
        rules: [{}],
      },
    }));
  }
  return slots;
}

/** What a subscriber holds that took the index's state once and then applied every change it emitted. */
function mirror(index: AmbientIndex) {
  const resources = new Map(TYPES.map((type) => [type, new Map<string, unknown>()]));
  for (const type of TYPES) for (const [name, r] of index.snapshot(type)) resources.get(type)!.set(name, structuredClone(r));
  const statuses = new Map<string, ObjectStatus>();
  const note = (s: ObjectStatus) => {
    const key = `${s.kind}/${s.namespace}/${s.name}`;
    if (s.conditions.length === 0 && s.parents === undefined) statuses.delete(key);
    else statuses.set(key, structuredClone(s));
  };
  for (const s of index.statuses()) note(s);
  index.onChange((c) => {
    const m = resources.get(c.typeUrl)!;
    for (const [name, r] of c.upserted) m.set(name, structuredClone(r));
    for (const name of c.removed) m.delete(name);
  });
  index.onStatusChange((changed) => changed.forEach(note));
  return { resources, statuses: () => [...statuses.keys()].sort().map((k) => statuses.get(k)!) };
}

function check(index: AmbientIndex, store: ConfigStore, seen: ReturnType<typeof mirror>, where: string): void {
  const fresh = new AmbientIndex(store, {}, clock);
  try {
    for (const type of TYPES) {
      const snapshot = index.snapshot(type);
      assert.deepEqual(snapshot, fresh.snapshot(type), `${where}: ${type} differs from a full rebuild`);
      assert.deepEqual(seen.resources.get(type), snapshot, `${where}: ${type} replayed from the emitted changes differs from the snapshot`);
    }
    const statuses = index.statuses();
    assert.deepEqual(statuses, fresh.statuses(), `${where}: statuses differ from a full rebuild`);
    assert.deepEqual(seen.statuses(), statuses, `${where}: statuses replayed from the emitted changes differ`);
  } finally {
    fresh.close();
  }
}

// Counted over all seeds (a seed may well have no usable waypoint), by kind.
const programmedRoutes = { HTTPRoute: 0, GRPCRoute: 0, VirtualService: 0 };
const routeStatuses = { HTTPRoute: 0, GRPCRoute: 0 };
// DestinationRules rendered into waypoints, and subsets of them that found endpoints.
const destinations = { rendered: 0, subsetsWithEndpoints: 0 };
// Workloads of EndpointSlice endpoints that are not pods, and pods given a Service by a slice naming them.
const sliceReach = { sliceWorkloads: 0, podsWithSliceServices: 0 };
// Services of ServiceEntries, workloads of their inline endpoints, and WorkloadEntries given a ServiceEntry's Service.
// Services whose canary waypoint was usable (sent with weighted waypoints).
const canaryReach = { weighted: 0 };
const entryReach = { services: 0, endpointWorkloads: 0, workloadEntriesWithServices: 0, waypointServices: 0, waypointPolicies: 0, waypointRoutes: 0, waypointGatewayRoutes: 0, waypointDestinations: 0, subsetsWithEndpoints: 0 };

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  test(`random edits (seed ${seed}): the incremental index equals a full rebuild after every change`, () => {
    const r = prng(seed);
    const slots = universe(r);
    const totalWeight = slots.reduce((sum, s) => sum + s.weight, 0);
    const pickSlot = () => {
      let x = r() * totalWeight;
      for (const s of slots) if ((x -= s.weight) < 0) return s;
      return slots[slots.length - 1]!;
    };
    const store = new ConfigStore();
    store.apply(slots.filter(() => r() < 0.7).map((s) => s.make()));
    const index = new AmbientIndex(store, {}, clock);
    const seen = mirror(index);
    check(index, store, seen, `seed ${seed}, initial`);

    for (let step = 0; step < 150; step++) {
      const upserts: Resource[] = [];
      const removals: string[] = [];
      const ops = 1 + Math.floor(r() * 3);
      for (let i = 0; i < ops; i++) {
        const slot = pickSlot();
        if (r() < 0.25) removals.push(slot.key);
        else upserts.push(slot.make());
      }
      const what = `seed ${seed}, step ${step}: apply [${upserts.map(resourceKey).join(', ')}], remove [${removals.join(', ')}]`;
      store.apply(upserts);
      store.remove(removals);
      check(index, store, seen, what);
      for (const a of index.snapshot(TYPE_ADDRESS).values()) {
        const svc = (a as { service?: { hostname: string; weightedWaypoints?: unknown[] } }).service;
        if (svc?.hostname.endsWith('.example.com')) entryReach.services++;
        if (svc?.weightedWaypoints?.length) canaryReach.weighted++;
      }
      for (const w of index.allWorkloads()) {
        if (w.uid.includes('/networking.istio.io/ServiceEntry/')) entryReach.endpointWorkloads++;
        if (w.uid.includes('/networking.istio.io/WorkloadEntry/') && Object.keys(w.services).some((k) => k.endsWith('.example.com'))) entryReach.workloadEntriesWithServices++;
        if (w.uid.includes('/discovery.k8s.io/EndpointSlice/')) sliceReach.sliceWorkloads++;
        else if (Object.keys(w.services).some((k) => !(store.get(`Service/${k.split('/')[0]}/${k.split('/')[1]!.split('.')[0]}`) as Service | undefined)?.spec.selector)) {
          sliceReach.podsWithSliceServices++;
        }
      }
      for (const res of index.snapshot(TYPE_WAYPOINT).values()) {
        const destination = (res as WaypointResource).destination;
        if (destination !== undefined) destinations.rendered++;
        if (destination?.hostname.endsWith('.example.com')) entryReach.waypointDestinations++;
        const service = (res as WaypointResource).service;
        if (service?.hostname.endsWith('.example.com')) {
          entryReach.waypointServices++;
          if (service.policies.length > 0) entryReach.waypointPolicies++;
          if (service.routes.some((x) => x.route.includes('/vs'))) entryReach.waypointRoutes++;
          if (service.routes.some((x) => !x.route.includes('/vs'))) entryReach.waypointGatewayRoutes++;
        }
        for (const c of destination?.clusters ?? []) {
          if (c.subset === '' || c.workloads.length === 0) continue;
          destinations.subsetsWithEndpoints++;
          if (destination!.hostname.endsWith('.example.com')) entryReach.subsetsWithEndpoints++;
        }
        // By name: g1 is a GRPCRoute only, r1 and r2 are HTTPRoutes only.
        for (const route of (res as WaypointResource).service?.routes ?? []) {
          if (route.route.includes('/vs')) programmedRoutes.VirtualService++;
          else if (route.route.endsWith('/g1')) programmedRoutes.GRPCRoute++;
          else if (!route.route.endsWith('/r0')) programmedRoutes.HTTPRoute++;
        }
      }
      for (const s of index.statuses()) if (s.parents !== undefined && (s.kind === 'HTTPRoute' || s.kind === 'GRPCRoute')) routeStatuses[s.kind]++;
    }
    index.close();
  });
}

test('the random edits reach what they churn: HTTPRoutes and GRPCRoutes programmed into waypoints, route status written, DestinationRules rendered, EndpointSlices, ServiceEntries and WorkloadEntries translated', () => {
  for (const kind of ['HTTPRoute', 'GRPCRoute'] as const) {
    assert.ok(programmedRoutes[kind] > 0, `${kind}s programmed`);
    assert.ok(routeStatuses[kind] > 0, `${kind} statuses`);
  }
  assert.ok(programmedRoutes.VirtualService > 0, 'VirtualServices programmed');
  assert.ok(destinations.rendered > 0, 'DestinationRules rendered');
  assert.ok(destinations.subsetsWithEndpoints > 0, 'DestinationRule subsets with endpoints');
  assert.ok(sliceReach.sliceWorkloads > 0, 'EndpointSlice workloads');
  assert.ok(sliceReach.podsWithSliceServices > 0, 'pods given a selectorless Service by an EndpointSlice');
  assert.ok(entryReach.services > 0, 'ServiceEntry Services');
  assert.ok(entryReach.endpointWorkloads > 0, 'ServiceEntry endpoint workloads');
  assert.ok(entryReach.workloadEntriesWithServices > 0, 'WorkloadEntries selected by a ServiceEntry');
  assert.ok(entryReach.waypointServices > 0, 'ServiceEntry Services sent to their waypoint');
  assert.ok(entryReach.waypointPolicies > 0, 'policies targeting a ServiceEntry sent to its waypoint');
  assert.ok(entryReach.waypointRoutes > 0, 'VirtualService routes for a ServiceEntry host');
  assert.ok(entryReach.waypointGatewayRoutes > 0, 'HTTPRoutes and GRPCRoutes with a ServiceEntry parent programmed for its host');
  assert.ok(entryReach.waypointDestinations > 0, 'DestinationRules for a ServiceEntry host');
  assert.ok(entryReach.subsetsWithEndpoints > 0, 'DestinationRule subsets picking a ServiceEntry endpoint');
  assert.ok(canaryReach.weighted > 0, 'Services with a usable canary waypoint');
});
