// Waypoints as istiod sees them, as pure functions: which waypoint a Service or workload binds to and why not
// (pilot/pkg/serviceregistry/ambient/waypoints.go fetchWaypointFor{Target,Service,Workload}, status.go), the status
// of a waypoint Gateway (pilot/pkg/config/kube/gateway/testdata/waypoint.status.yaml.golden), the protocol of a
// Service port (pkg/config/kube/conversion.go ConvertProtocol) and the WaypointAccepted condition of a policy with
// targetRefs (policies.go WaypointPolicyStatusCollection, pilot/pkg/model/service.go flattenConditions).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy, Gateway, GatewayClass, GatewayListener, Namespace, Pod, Resource, Service, ServiceEntry } from '../../src/api/types.js';
import { AmbientIndex } from '../../src/model/ambient.js';
import { portProtocol } from '../../src/model/services.js';
import { ConfigStore } from '../../src/model/store.js';
import type { Labels } from '../../src/model/store.js';
import {

  policyTargetKeys,
  resolveBinding,
  waypointAcceptedCondition,
  waypointGatewayStatus,
  waypointOf,
  type Binding,
  type TargetBinding,
  type WaypointGateway,
} from '../../src/model/waypoints.js';

const MESH = { name: 'mesh', port: 15008, protocol: 'HBONE' };

function gateway(namespace: string, name: string, opts: { labels?: Labels; annotations?: Labels; listeners?: GatewayListener[]; generation?: number } = {}): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace, labels: opts.labels ?? {}, annotations: opts.annotations ?? {}, ...(opts.generation ? { generation: opts.generation } : {}) },
    spec: { gatewayClassName: 'istio-waypoint', listeners: opts.listeners ?? [MESH] },
  };
}

function kubeService(namespace: string, name: string, labels: Labels = {}, clusterIP = '10.96.0.10'): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec: { clusterIP, ports: [{ name: 'http', port: 80 }] } };
}

function serviceEntry(namespace: string, name: string, labels: Labels): ServiceEntry {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace, labels },
    spec: { hosts: [`${name}.example.com`], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' },
  };
}

/** A waypoint as the index would see it: its Service exists with a cluster IP and `ready` of its pods are Ready. */
function waypoint(namespace: string, name: string, opts: { labels?: Labels; annotations?: Labels; listeners?: GatewayListener[]; ready?: number; classLabels?: Labels } = {}): WaypointGateway {
  const g = gateway(namespace, name, opts);
  return waypointOf(g, kubeService(namespace, name), opts.ready ?? 1, opts.classLabels, 'cluster.local');
}

function ns(name: string, labels: Labels = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

const USE = 'istio.io/use-waypoint';
const USE_NS = 'istio.io/use-waypoint-namespace';
const FOR = 'istio.io/waypoint-for';
const MANAGED = { 'gateway.istio.io/managed': 'istio.io-mesh-controller', 'gateway.networking.k8s.io/gateway-name': 'wp' };
const hbone = (from: 'All' | 'Same' | 'Selector', matchLabels?: Labels): GatewayListener => ({
  ...MESH,
  allowedRoutes: { namespaces: { from, ...(matchLabels ? { selector: { matchLabels } } : {}) } },
});

const notReady = (key: string) => ({ reason: 'WaypointIsNotReady', message: `waypoint "${key}" is not ready` });
const denied = (key: string) => ({ reason: 'AttachmentDenied', message: `we are not permitted to attach to waypoint "${key}" (missing allowedRoutes?)` });
const unsupported = (target: string, key: string) => ({
  reason: 'UnsupportedTrafficType',
  message: `attempting to bind to traffic type "${target}" which the waypoint "${key}" does not support`,
});

interface BindingCase {
  name: string;
  target: 'service' | 'workload';
  labels?: Labels;
  /** The object's namespace; default `shop`. */
  namespace?: string;
  nsLabels?: Labels;
  waypoints: WaypointGateway[];
  /** The waypoint bound, the one named, and the error, as `{bound, referenced, error}`. */
  want: { bound?: string; referenced?: string; error?: { reason: string; message: string } };
}

const bindingCases: BindingCase[] = [
  { name: 'no label on the object or its namespace', target: 'service', waypoints: [waypoint('shop', 'wp')], want: {} },
  { name: 'namespace label', target: 'service', nsLabels: { [USE]: 'wp' }, waypoints: [waypoint('shop', 'wp')], want: { bound: 'shop/wp', referenced: 'shop/wp' } },
  {
    name: 'object label beats the namespace label',
    target: 'service',
    labels: { [USE]: 'own' },
    nsLabels: { [USE]: 'wp' },
    waypoints: [waypoint('shop', 'wp'), waypoint('shop', 'own')],
    want: { bound: 'shop/own', referenced: 'shop/own' },
  },
  {
    name: 'object label beats the namespace label even when its waypoint is not ready',
    target: 'service',
    labels: { [USE]: 'own' },
    nsLabels: { [USE]: 'wp' },
    waypoints: [waypoint('shop', 'wp'), waypoint('shop', 'own', { ready: 0 })],
    want: { referenced: 'shop/own', error: notReady('shop/own') },
  },
  { name: 'none opts a Service out of the namespace waypoint', target: 'service', labels: { [USE]: 'none' }, nsLabels: { [USE]: 'wp' }, waypoints: [waypoint('shop', 'wp')], want: {} },
  {
    name: 'none opts a workload out of the namespace waypoint',
    target: 'workload',
    labels: { [USE]: 'none' },
    nsLabels: { [USE]: 'wp' },
    waypoints: [waypoint('shop', 'wp', { labels: { [FOR]: 'all' } })],
    want: {},
  },
  { name: 'none on the namespace is no waypoint', target: 'service', nsLabels: { [USE]: 'none' }, waypoints: [waypoint('shop', 'none')], want: {} },
  {
    name: 'use-waypoint-namespace on the object',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { listeners: [hbone('All')] })],
    want: { bound: 'infra/wp', referenced: 'infra/wp' },
  },
  {
    name: 'use-waypoint-namespace on the namespace',
    target: 'service',
    nsLabels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { listeners: [hbone('All')] })],
    want: { bound: 'infra/wp', referenced: 'infra/wp' },
  },
  {
    name: "the namespace's use-waypoint-namespace does not apply to the object's own label",
    target: 'service',
    labels: { [USE]: 'wp' },
    nsLabels: { [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { listeners: [hbone('All')] }), waypoint('shop', 'wp')],
    want: { bound: 'shop/wp', referenced: 'shop/wp' },
  },
  { name: 'waypoint without a ready pod', target: 'service', nsLabels: { [USE]: 'wp' }, waypoints: [waypoint('shop', 'wp', { ready: 0 })], want: { referenced: 'shop/wp', error: notReady('shop/wp') } },
  { name: 'waypoint that does not exist', target: 'workload', labels: { [USE]: 'ghost' }, waypoints: [], want: { referenced: 'shop/ghost', error: notReady('shop/ghost') } },
  {
    name: 'waypoint without its Service',
    target: 'service',
    nsLabels: { [USE]: 'wp' },
    waypoints: [waypointOf(gateway('shop', 'wp'), undefined, 1, undefined, 'cluster.local')],
    want: { referenced: 'shop/wp', error: notReady('shop/wp') },
  },
  {
    name: 'allowedRoutes defaults to Same: another namespace is denied',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp')],
    want: { referenced: 'infra/wp', error: denied('infra/wp') },
  },
  {
    name: 'allowedRoutes Same, inherited from the namespace',
    target: 'service',
    nsLabels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { listeners: [hbone('Same')] })],
    want: { referenced: 'infra/wp', error: denied('infra/wp') },
  },
  {
    name: 'allowedRoutes Selector matching the namespace labels',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    nsLabels: { team: 'a' },
    waypoints: [waypoint('infra', 'wp', { listeners: [hbone('Selector', { team: 'a' })] })],
    want: { bound: 'infra/wp', referenced: 'infra/wp' },
  },
  {
    name: 'allowedRoutes Selector not matching',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    nsLabels: { team: 'b' },
    waypoints: [waypoint('infra', 'wp', { listeners: [hbone('Selector', { team: 'a' })] })],
    want: { referenced: 'infra/wp', error: denied('infra/wp') },
  },
  {
    name: 'allowedRoutes is read from the 15008/HBONE listener only',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { listeners: [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }, MESH] })],
    want: { referenced: 'infra/wp', error: denied('infra/wp') },
  },
  {
    name: 'a not-ready waypoint is reported before attachment',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { ready: 0 })],
    want: { referenced: 'infra/wp', error: notReady('infra/wp') },
  },
  {
    name: 'attachment is reported before the traffic type',
    target: 'service',
    labels: { [USE]: 'wp', [USE_NS]: 'infra' },
    waypoints: [waypoint('infra', 'wp', { labels: { [FOR]: 'workload' } })],
    want: { referenced: 'infra/wp', error: denied('infra/wp') },
  },
  { name: "a waypoint's own Service never binds", target: 'service', labels: MANAGED, nsLabels: { [USE]: 'wp' }, waypoints: [waypoint('shop', 'wp')], want: {} },
  {
    name: "a waypoint's own pod never binds, even to itself by label",
    target: 'workload',
    labels: { ...MANAGED, [USE]: 'wp' },
    waypoints: [waypoint('shop', 'wp', { labels: { [FOR]: 'all' } })],
    want: {},
  },
];

// istio.io/waypoint-for × target × where the label is: istiod's traffic-type rules.
for (const type of ['service', 'workload', 'all', 'none'] as const) {
  for (const target of ['service', 'workload'] as const) {
    for (const via of ['object', 'namespace'] as const) {
      const supported = type === 'all' || type === target;
      const labels = { [USE]: 'wp' };
      const c: BindingCase = {
        name: `waypoint-for ${type}, ${target} named by its ${via}`,
        target,
        ...(via === 'object' ? { labels } : { nsLabels: labels }),
        waypoints: [waypoint('shop', 'wp', { labels: { [FOR]: type } })],
        want: supported
          ? { bound: 'shop/wp', referenced: 'shop/wp' }
          : target === 'workload' && via === 'namespace'
            ? { referenced: 'shop/wp' } // inherited: silently unbound
            : { referenced: 'shop/wp', error: unsupported(target, 'shop/wp') },
      };
      bindingCases.push(c);
    }
  }
}

function summarize(b: Binding) {
  return {
    ...(b.waypoint ? { bound: b.waypoint.key } : {}),
    ...(b.referenced ? { referenced: b.referenced } : {}),
    ...(b.error ? { error: b.error } : {}),
  };
}

describe('waypoint binding (fetchWaypointForService / fetchWaypointForWorkload)', () => {
  for (const c of bindingCases) {
    it(c.name, () => {
      const namespace = c.namespace ?? 'shop';
      const byKey = new Map(c.waypoints.map((w) => [w.key, w]));
      const b = resolveBinding(c.target, c.labels, namespace, ns(namespace, c.nsLabels), (k) => byKey.get(k));
      assert.deepEqual(summarize(b), c.want);
    });
  }

  it('waypoint-for: the Gateway label beats the GatewayClass label, which beats the default "service"', () => {
    assert.equal(waypoint('shop', 'wp').trafficType, 'service');
    assert.equal(waypoint('shop', 'wp', { classLabels: { [FOR]: 'workload' } }).trafficType, 'workload');
    assert.equal(waypoint('shop', 'wp', { labels: { [FOR]: 'all' }, classLabels: { [FOR]: 'workload' } }).trafficType, 'all');
  });

  it('names: name-override renames Deployment and Service (hostname); service-account renames the ServiceAccount', () => {
    const both = waypoint('shop', 'wp', { annotations: { 'gateway.istio.io/name-override': 'custom', 'gateway.istio.io/service-account': 'wp-sa' } });
    assert.deepEqual([both.deploymentName, both.serviceAccount, both.hostname], ['custom', 'wp-sa', 'custom.shop.svc.cluster.local']);
    const plain = waypoint('shop', 'wp');
    assert.deepEqual([plain.deploymentName, plain.serviceAccount, plain.hostname], ['wp', 'wp', 'wp.shop.svc.cluster.local']);
  });

  // istiod: ServiceAccount = service-account annotation, else the default name (the Gateway's), never the
  // name-override (gatewaycommon/deploymentcontroller.go: `ServiceAccount: GetOrDefault(..., defaultName)`).
  it('names: name-override alone leaves the ServiceAccount named after the Gateway', () => {
    assert.equal(waypoint('shop', 'wp', { annotations: { 'gateway.istio.io/name-override': 'custom' } }).serviceAccount, 'wp');
  });

  // istiod takes the label's value as is: an unknown traffic type supports neither Services nor workloads.
  it('waypoint-for with an unknown value binds nothing', () => {
    const w = waypoint('shop', 'wp', { labels: { [FOR]: 'Service' } });
    const b = resolveBinding('service', { [USE]: 'wp' }, 'shop', ns('shop'), () => w);
    assert.equal(b.waypoint, undefined);
  });

  // istiod: metav1.LabelSelectorAsSelector(nil) is labels.Nothing(), so `from: Selector` without a selector admits
  // no other namespace (waypoints.go makeWaypointSelector).
  it('allowedRoutes Selector without a selector admits no other namespace', () => {
    const w = waypoint('infra', 'wp', { listeners: [{ ...MESH, allowedRoutes: { namespaces: { from: 'Selector' } } }] });
    const b = resolveBinding('service', { [USE]: 'wp', [USE_NS]: 'infra' }, 'shop', ns('shop', { team: 'a' }), () => w);
    assert.deepEqual(b.error, denied('infra/wp'));
  });
});

// ---- Gateway status ------------------------------------------------------------------------------------------------

const NO_ERRORS = 'No errors found';
const cond = (type: string, status: 'True' | 'False', reason: string, message: string) => ({ type, status, reason, message });
const VALID_LISTENER = [
  cond('Accepted', 'True', 'Accepted', NO_ERRORS),
  cond('Conflicted', 'False', 'NoConflicts', NO_ERRORS),
  cond('Programmed', 'True', 'Programmed', NO_ERRORS),
  cond('ResolvedRefs', 'True', 'ResolvedRefs', NO_ERRORS),
];
const ROUTE_KINDS = [
  { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' },
  { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' },
];

describe('waypoint Gateway status (reportGatewayStatus)', () => {
  // Istio's golden (testdata/waypoint.yaml → waypoint.status.yaml.golden, domain suffix `domain.suffix`, no Service).
  const golden = [
    {
      gateway: gateway('ns', 'namespace'),
      programmed: cond('Programmed', 'False', 'AddressNotUsable', 'Failed to assign to any requested addresses: hostname "namespace.ns.svc.domain.suffix" not found'),
      listener: { name: 'mesh', attachedRoutes: 0, conditions: VALID_LISTENER, supportedKinds: [] },
    },
    {
      gateway: gateway('ns', 'invalid', { listeners: [{ name: 'mesh', port: 1234, protocol: 'HTTP' }] }),
      programmed: cond('Programmed', 'False', 'AddressNotUsable', 'Failed to assign to any requested addresses: hostname "invalid.ns.svc.domain.suffix" not found'),
      listener: {
        name: 'mesh',
        attachedRoutes: 0,
        conditions: [cond('Accepted', 'False', 'UnsupportedProtocol', 'Expected a single listener on port 15008 with protocol "HBONE"'), ...VALID_LISTENER.slice(1)],
        supportedKinds: ROUTE_KINDS,
      },
    },
  ];
  for (const g of golden) {
    it(`golden: ${g.gateway.metadata.name} (no Service yet)`, () => {
      const status = waypointGatewayStatus(g.gateway, waypointOf(g.gateway, undefined, 0, undefined, 'domain.suffix'));
      assert.deepEqual(status, {
        conditions: [cond('Accepted', 'True', 'Accepted', 'Resource accepted'), g.programmed, cond('ResolvedRefs', 'True', 'ResolvedRefs', 'All references resolved')],
        listeners: [g.listener],
      });
    });
  }

  it('Service but no ready pod: AddressNotAssigned, no addresses', () => {
    const g = gateway('shop', 'wp', { generation: 3 });
    const status = waypointGatewayStatus(g, waypointOf(g, kubeService('shop', 'wp'), 0, undefined, 'cluster.local'));
    assert.deepEqual(status.conditions[1], {
      ...cond('Programmed', 'False', 'AddressNotAssigned', 'Failed to assign to any requested addresses: no instances found for hostname "wp.shop.svc.cluster.local"'),
      observedGeneration: 3,
    });
    assert.equal(status.addresses, undefined);
    assert.ok(status.conditions.every((c) => c.observedGeneration === 3 && c.lastTransitionTime === undefined));
  });

  it('ready: Programmed names the Service and port; addresses are the cluster IP then the hostname', () => {
    const g = gateway('shop', 'wp');
    const status = waypointGatewayStatus(g, waypointOf(g, kubeService('shop', 'wp', {}, '10.96.0.10'), 1, undefined, 'cluster.local'));
    assert.deepEqual(status, {
      conditions: [
        cond('Accepted', 'True', 'Accepted', 'Resource accepted'),
        cond('Programmed', 'True', 'Programmed', 'Resource programmed, assigned to service(s) wp.shop.svc.cluster.local:15008'),
        cond('ResolvedRefs', 'True', 'ResolvedRefs', 'All references resolved'),
      ],
      listeners: [{ name: 'mesh', attachedRoutes: 0, conditions: VALID_LISTENER, supportedKinds: [] }],
      addresses: [
        { type: 'IPAddress', value: '10.96.0.10' },
        { type: 'Hostname', value: 'wp.shop.svc.cluster.local' },
      ],
    });
  });

  it('ready with several ports and dual-stack IPs: a human-readable list, every IP reported', () => {
    const g = gateway('shop', 'wp', { listeners: [MESH, { name: 'extra', port: 15009, protocol: 'HBONE' }, { name: 'http', port: 80, protocol: 'HTTP' }] });
    const svc = kubeService('shop', 'wp');
    svc.spec.clusterIPs = ['10.96.0.10', 'fd00::a'];
    const status = waypointGatewayStatus(g, waypointOf(g, svc, 2, undefined, 'cluster.local'));
    assert.equal(
      status.conditions[1]!.message,
      'Resource programmed, assigned to service(s) wp.shop.svc.cluster.local:80, wp.shop.svc.cluster.local:15008, and wp.shop.svc.cluster.local:15009',
    );
    assert.deepEqual(status.addresses?.map((a) => a.value), ['10.96.0.10', 'fd00::a', 'wp.shop.svc.cluster.local']);
    // Only the 15008/HBONE listener is valid; the others are reported and kept.
    assert.deepEqual(status.listeners.map((l) => [l.name, l.conditions[0]!.status]), [['mesh', 'True'], ['extra', 'False'], ['http', 'False']]);
  });

  it('a headless Service is no address', () => {
    const g = gateway('shop', 'wp');
    const w = waypointOf(g, kubeService('shop', 'wp', {}, 'None'), 1, undefined, 'cluster.local');
    assert.equal(w.ready, false);
    assert.equal(waypointGatewayStatus(g, w).conditions[1]!.reason, 'AddressNotUsable');
  });
});

// ---- Port protocol -------------------------------------------------------------------------------------------------

describe('port protocol (ConvertProtocol)', () => {
  const cases: [string, { name?: string; port: number; protocol?: 'TCP' | 'UDP'; appProtocol?: string }, string][] = [
    ['appProtocol beats the name', { name: 'tcp-x', port: 8080, appProtocol: 'http' }, 'HTTP'],
    ['appProtocol is case-insensitive', { name: 'web', port: 8080, appProtocol: 'HTTP2' }, 'HTTP2'],
    ['appProtocol kubernetes.io/h2c', { name: 'http', port: 8080, appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    ['appProtocol kubernetes.io/ws', { port: 8080, appProtocol: 'kubernetes.io/ws' }, 'HTTP'],
    ['appProtocol kubernetes.io/wss', { port: 8080, appProtocol: 'kubernetes.io/wss' }, 'HTTPS'],
    ['appProtocol grpc-web', { port: 8080, appProtocol: 'grpc-web' }, 'GRPC_WEB'],
    ['name http', { name: 'http', port: 8080 }, 'HTTP'],
    ['name prefix http-', { name: 'http-web', port: 8080 }, 'HTTP'],
    ['name prefix is case-insensitive', { name: 'HTTP-web', port: 8080 }, 'HTTP'],
    ['name http2', { name: 'http2', port: 8080 }, 'HTTP2'],
    ['name grpc', { name: 'grpc-api', port: 8080 }, 'GRPC'],
    ['name grpc-web (before the dash rule)', { name: 'grpc-web', port: 8080 }, 'GRPC_WEB'],
    ['name grpc-web-…', { name: 'GRPC-Web-api', port: 8080 }, 'GRPC_WEB'],
    ['name https', { name: 'https-admin', port: 8443 }, 'HTTPS'],
    ['name tls', { name: 'tls', port: 8443 }, 'TLS'],
    ['name tcp', { name: 'tcp-db', port: 5432 }, 'TCP'],
    ['name mongo', { name: 'mongo', port: 9000 }, 'MONGO'],
    ['name redis', { name: 'redis-cache', port: 6379 }, 'REDIS'],
    ['name mysql', { name: 'mysql', port: 9306 }, 'MYSQL'],
    ['unknown name: sniffed', { name: 'web', port: 8080 }, 'UNSPECIFIED'],
    ['no name: sniffed', { port: 8080 }, 'UNSPECIFIED'],
    ['well-known SMTP', { port: 25 }, 'TCP'],
    ['well-known DNS', { name: 'dns', port: 53 }, 'TCP'],
    ['well-known MySQL', { port: 3306 }, 'TCP'],
    ['well-known MongoDB', { name: 'db', port: 27017 }, 'TCP'],
    ['a protocol name beats a well-known port', { name: 'http', port: 53 }, 'HTTP'],
    ['UDP beats everything', { name: 'http', port: 53, protocol: 'UDP', appProtocol: 'http' }, 'UDP'],
  ];
  for (const [name, port, want] of cases) it(name, () => assert.equal(portProtocol(port), want));

  // istiod uses the appProtocol *instead of* the name when it is set, with the same prefix rule.
  const mismatches: [string, { name?: string; port: number; appProtocol?: string }, string][] = [
    ['an unknown appProtocol is not replaced by the name', { name: 'http-web', port: 8080, appProtocol: 'custom' }, 'UNSPECIFIED'],
    ['appProtocol prefix http-…', { name: 'tcp', port: 8080, appProtocol: 'http-v1' }, 'HTTP'],
  ];
  for (const [name, port, want] of mismatches) {
    it(name, () => assert.equal(portProtocol(port), want));
  }
});

// ---- WaypointAccepted ----------------------------------------------------------------------------------------------

function policy(namespace: string, name: string, targetRefs: NonNullable<AuthorizationPolicy['spec']['targetRefs']>, action?: 'ALLOW' | 'CUSTOM'): AuthorizationPolicy {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace, generation: 4 },
    spec: { targetRefs, ...(action ? { action } : {}), ...(action === 'CUSTOM' ? { provider: { name: 'ext' } } : {}) },
  };
}

describe('WaypointAccepted: flattening several targets (flattenConditions)', () => {
  const t = (ancestor: string, bound: boolean): TargetBinding => ({ ancestor, bound, reason: bound ? 'Accepted' : 'TargetNotFound', message: bound ? 'bound to x' : 'not bound' });
  const p = policy('shop', 'p', [{ kind: 'Service', name: 'a' }]);
  const cases: [string, TargetBinding[], { status: 'True' | 'False'; reason: string; message: string }][] = [
    ['one bound target keeps its own reason', [t('Service.core:shop/a', true)], { status: 'True', reason: 'Accepted', message: 'bound to x' }],
    ['one unbound target keeps its own reason', [t('Service.core:shop/a', false)], { status: 'False', reason: 'TargetNotFound', message: 'not bound' }],
    ['all bound', [t('Service.core:shop/a', true), t('Gateway.gateway.networking.k8s.io:shop/wp', true)], { status: 'True', reason: 'Accepted', message: '' }],
    [
      'some bound',
      [t('Service.core:shop/a', true), t('Service.core:shop/b', false), t('Gateway.gateway.networking.k8s.io:shop/wp', false)],
      { status: 'True', reason: 'PartiallyInvalid', message: 'Invalid targetRefs: Service.core:shop/b, Gateway.gateway.networking.k8s.io:shop/wp' },
    ],
    ['none bound', [t('Service.core:shop/a', false), t('Service.core:shop/b', false)], { status: 'False', reason: 'Invalid', message: 'Invalid targetRefs: Service.core:shop/a, Service.core:shop/b' }],
  ];
  for (const [name, targets, want] of cases) {
    it(name, () => assert.deepEqual(waypointAcceptedCondition(p, targets), { type: 'WaypointAccepted', ...want, observedGeneration: 4 }));
  }

  it('CUSTOM is reported as not enforced', () => {
    const c = waypointAcceptedCondition(policy('shop', 'p', [{ kind: 'Service', name: 'a' }], 'CUSTOM'), [t('Service.core:shop/a', true)]);
    assert.deepEqual([c.status, c.reason], ['False', 'UnsupportedValue']);
    assert.match(c.message, /^waypoint does not support the CUSTOM action/);
  });
});

describe('WaypointAccepted: one target of each kind (WaypointPolicyStatusCollection)', () => {
  const ready = { type: 'Ready', status: 'True' };
  const objects: Resource[] = [
    ns('shop', { 'istio.io/dataplane-mode': 'ambient' }),
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio-waypoint' }, spec: { controllerName: 'istio.io/mesh-controller' } } satisfies GatewayClass,
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } } satisfies GatewayClass,
    gateway('shop', 'wp'),
    gateway('shop', 'cold'),
    kubeService('shop', 'wp', MANAGED, '10.96.0.10'),
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'wp-1', namespace: 'shop', uid: 'u1', labels: MANAGED },
      spec: { containers: [{ name: 'istio-proxy' }] },
      status: { podIP: '10.1.0.9', conditions: [ready] },
    } satisfies Pod,
    kubeService('shop', 'bound', { [USE]: 'wp' }, '10.96.0.11'),
    kubeService('shop', 'plain', {}, '10.96.0.12'),
    serviceEntry('shop', 'egress', { [USE]: 'wp' }),
    serviceEntry('shop', 'direct', {}),
  ];
  const G = 'gateway.networking.k8s.io';
  const N = 'networking.istio.io';
  const cases: [string, string, AuthorizationPolicy['spec']['targetRefs'], string, string, string][] = [
    ['GatewayClass from the root namespace', 'istio-system', [{ group: G, kind: 'GatewayClass', name: 'istio-waypoint' }], 'True', 'Accepted', 'bound to istio-waypoint'],
    ['GatewayClass from another namespace', 'shop', [{ group: G, kind: 'GatewayClass', name: 'istio-waypoint' }], 'False', 'Invalid', 'AuthorizationPolicy must be in the root namespace `istio-system` when referencing a GatewayClass'],
    ['GatewayClass that does not exist', 'istio-system', [{ group: G, kind: 'GatewayClass', name: 'nope' }], 'False', 'TargetNotFound', 'not bound'],
    ['GatewayClass of another controller', 'istio-system', [{ group: G, kind: 'GatewayClass', name: 'istio' }], 'False', 'Invalid', 'GatewayClass must use controller name `istio.io/mesh-controller` for waypoints'],
    ['ready Gateway', 'shop', [{ group: G, kind: 'Gateway', name: 'wp' }], 'True', 'Accepted', 'bound to shop/wp'],
    ['Gateway without a ready pod', 'shop', [{ group: G, kind: 'Gateway', name: 'cold' }], 'False', 'TargetNotFound', 'not bound'],
    ['Service bound to a waypoint', 'shop', [{ group: '', kind: 'Service', name: 'bound' }], 'True', 'Accepted', 'bound to shop/wp'],
    ['Service with group core', 'shop', [{ group: 'core', kind: 'Service', name: 'bound' }], 'True', 'Accepted', 'bound to shop/wp'],
    ['Service not bound', 'shop', [{ kind: 'Service', name: 'plain' }], 'False', 'AncestorNotBound', 'Service shop/plain is not bound to a waypoint'],
    ['Service that does not exist', 'shop', [{ kind: 'Service', name: 'gone' }], 'False', 'TargetNotFound', 'Service shop/gone was not found'],
    ['ServiceEntry bound to a waypoint', 'shop', [{ group: N, kind: 'ServiceEntry', name: 'egress' }], 'True', 'Accepted', 'bound to shop/wp'],
    ['ServiceEntry not bound', 'shop', [{ group: N, kind: 'ServiceEntry', name: 'direct' }], 'False', 'AncestorNotBound', 'ServiceEntry shop/direct is not bound to a waypoint'],
    ['ServiceEntry that does not exist', 'shop', [{ group: N, kind: 'ServiceEntry', name: 'gone' }], 'False', 'TargetNotFound', 'ServiceEntry shop/gone was not found'],
  ];
  const store = new ConfigStore();
  store.apply(objects);
  for (const [name, namespace, targetRefs, status, reason, message] of cases) {
    it(name, () => {
      store.apply([policy(namespace, 'p', targetRefs!)]);
      const index = new AmbientIndex(store, {}, () => new Date('2026-01-01T00:00:00Z'));
      try {
        const got = index.statuses().find((s) => s.kind === 'AuthorizationPolicy' && s.namespace === namespace)!;
        // Policies with targetRefs are not ztunnel's: WaypointAccepted is their only condition.
        assert.deepEqual(got.conditions, [{ type: 'WaypointAccepted', status, reason, message, observedGeneration: 4, lastTransitionTime: '2026-01-01T00:00:00Z' }]);
      } finally {
        index.close();
        store.remove([`AuthorizationPolicy/${namespace}/p`]);
      }
    });
  }
});

describe('what a targetRefs policy is filed under (policyTargetKeys)', () => {
  const G = 'gateway.networking.k8s.io';
  it('the store key of each Service, ServiceEntry, Gateway and GatewayClass it names, once; other kinds not at all', () => {
    const p = policy('shop', 'p', [
      { kind: 'Service', name: 'a' },
      { group: 'core', kind: 'Service', name: 'a' },
      { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'ext' },
      { group: G, kind: 'Gateway', name: 'wp' },
      { group: G, kind: 'GatewayClass', name: 'istio-waypoint' },
      { group: 'example.com', kind: 'Service', name: 'b' },
      { kind: 'ServiceEntry', name: 'no-group' },
      { kind: 'Gateway', name: 'no-group' },
    ]);
    assert.deepEqual(policyTargetKeys(p), ['Service/shop/a', 'ServiceEntry/shop/ext', 'Gateway/shop/wp', 'GatewayClass//istio-waypoint']);
  });

  it('a target namespace (refused by validation) files it under both namespaces: the status reads one, the waypoint the other', () => {
    assert.deepEqual(policyTargetKeys(policy('shop', 'p', [{ kind: 'Service', name: 'a', namespace: 'other' }])), ['Service/other/a', 'Service/shop/a']);
  });

  it('targetRef stands for a single targetRefs entry', () => {
    const p = policy('shop', 'p', []);
    delete p.spec.targetRefs;
    p.spec.targetRef = { kind: 'Service', name: 'a' };
    assert.deepEqual(policyTargetKeys(p), ['Service/shop/a']);
  });
});

describe('WaypointMissing on ServiceEntries (model/service.go GetConditions)', () => {
  const entry = (name: string, hosts: string[], labels: Labels = {}, annotations: Labels = {}): ServiceEntry => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'shop', labels, annotations, generation: 2 },
    spec: { hosts, ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], resolution: 'DYNAMIC_DNS' },
  });
  const RACE = { 'istio.io/connect-strategy': 'race_first_tcp_connect' };
  const cases: [string, ServiceEntry, [string, string] | undefined][] = [
    ['a wildcard host without a waypoint', entry('wild', ['*.example.com']), ['NoWaypointForWildcardService', 'ServiceEntry will not apply until it is bound to a valid waypoint.']],
    ['a wildcard host bound to a waypoint', entry('wild-bound', ['*.example.com'], { [USE]: 'wp' }), undefined],
    ['a plain host', entry('plain', ['api.example.com']), undefined],
    [
      'a racing connect strategy without a waypoint (any case; it wins over the wildcard)',
      entry('race', ['*.example.com'], {}, RACE),
      ['NoWaypointForRacingConnectStrategy', 'ServiceEntry has a non-default connect strategy but no waypoint bound. A waypoint is required for connect strategies to take effect for ambient clients.'],
    ],
    ['a racing connect strategy bound to a waypoint', entry('race-bound', ['api.example.com'], { [USE]: 'wp' }, RACE), undefined],
  ];
  for (const [name, se, want] of cases) {
    it(name, () => {
      const store = new ConfigStore();
      store.apply([ns('shop'), gateway('shop', 'wp'), kubeService('shop', 'wp', MANAGED, '10.96.0.10'), { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'wp-1', namespace: 'shop', uid: 'u1', labels: MANAGED }, spec: { containers: [{ name: 'istio-proxy' }] }, status: { podIP: '10.1.0.9', conditions: [{ type: 'Ready', status: 'True' }] } } satisfies Pod, se]);
      const index = new AmbientIndex(store, {}, () => new Date('2026-01-01T00:00:00Z'));
      try {
        const got = index.statuses().find((s) => s.kind === 'ServiceEntry')?.conditions.find((c) => c.type === 'istio.io/WaypointMissing');
        assert.deepEqual(got && [got.status, got.reason, got.message, got.observedGeneration], want && ['True', ...want, 2]);
        if (want) {
          // Binding the entry later removes the condition.
          store.apply([{ ...se, metadata: { ...se.metadata, labels: { [USE]: 'wp' } } }]);
          assert.equal(index.statuses().find((s) => s.kind === 'ServiceEntry')?.conditions.find((c) => c.type === 'istio.io/WaypointMissing'), undefined);
        }
      } finally {
        index.close();
      }
    });
  }
});
