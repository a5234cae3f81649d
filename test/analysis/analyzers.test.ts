// The analyzers of `ambit analyze`, one table per analyzer in the manner of istioctl's analyzers_test.go: objects in,
// (code, resource) pairs out. The scenarios follow Istio's analyzer test data (the cases, not its files).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { analyze, formatMessages, friendlyName, listAnalyzers, originOf, type AnalyzedObject, type ForeignObject, type Message } from '../../src/analysis/analyze.js';
import { ANALYZERS } from '../../src/analysis/analyzers.js';
import { validateResource } from '../../src/api/validation.js';

/** Objects from YAML documents (validated as the loader does); Sidecar, EnvoyFilter and Istio's Gateway become foreign objects. */
function input(yaml: string, opts: { fromFile?: boolean } = {}): { objects: AnalyzedObject[]; foreign: ForeignObject[]; rootNamespace: string } {
  const objects: AnalyzedObject[] = [];
  const foreign: ForeignObject[] = [];
  for (const doc of yaml.split(/^---$/m).map((d) => d.trim()).filter(Boolean)) {
    const raw = parseYaml(doc) as Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: object };
    if (raw.apiVersion.startsWith('networking.istio.io/') && ['Sidecar', 'EnvoyFilter', 'Gateway'].includes(raw.kind)) {
      const metadata = { ...raw.metadata, namespace: raw.metadata.namespace ?? 'default' };
      foreign.push({ kind: raw.kind, metadata, spec: raw.spec ?? {}, origin: originOf({ kind: raw.kind, metadata }) } as ForeignObject);
      continue;
    }
    const { resource, issues } = validateResource(raw);
    assert.ok(resource, `fixture does not validate: ${JSON.stringify(issues)}`);
    objects.push({ resource, origin: originOf(resource), fromFile: opts.fromFile ?? false });
  }
  return { objects, foreign, rootNamespace: 'istio-system' };
}

function found(yaml: string, analyzer: string, opts: { fromFile?: boolean } = {}): string[] {
  return analyze(input(yaml, opts), { analyzers: [analyzer] }).map((m) => `${m.type.code} ${friendlyName(m.origin!)}`).sort();
}

const ns = (name: string, labels: Record<string, string> = {}) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}, labels: ${JSON.stringify(labels)}}`;
const pod = (name: string, namespace: string, labels: Record<string, string>, extra = '') =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${namespace}, labels: ${JSON.stringify(labels)}${extra}}\nspec: {containers: [{name: app, image: x}]}`;
const ap = (name: string, namespace: string, spec: string) => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;

describe('auth.AuthorizationPoliciesAnalyzer', () => {
  const world = [
    ns('istio-system'), ns('httpbin', { 'istio-injection': 'enabled' }), ns('httpbin-empty', { 'istio-injection': 'enabled' }),
    ns('test-ambient', { 'istio.io/dataplane-mode': 'ambient' }), ns('shop', { 'istio.io/dataplane-mode': 'ambient' }), ns('plain'),
    pod('httpbin-1', 'httpbin', { app: 'httpbin', version: 'v1' }),
    pod('cart-1', 'shop', { app: 'cart' }),
    pod('outside-1', 'plain', { app: 'outside' }),
  ];
  const cases: Array<[string, string, string[]]> = [
    ['a mesh-wide policy whose selector matches a pod in some namespace', ap('meshwide-cart', 'istio-system', '{selector: {matchLabels: {app: cart}}}'), []],
    ['a mesh-wide policy whose selector matches no pod anywhere', ap('meshwide-httpbin-v2', 'istio-system', '{selector: {matchLabels: {app: httpbin, version: v2}}}'), ['IST0127 AuthorizationPolicy istio-system/meshwide-httpbin-v2']],
    ['a mesh-wide policy without selector', ap('meshwide', 'istio-system', '{}'), []],
    ['a namespace-wide policy in a namespace with no pods', ap('empty-wide', 'httpbin-empty', '{}'), ['IST0127 AuthorizationPolicy httpbin-empty/empty-wide']],
    ['a namespace-wide policy over a sidecar-injected pod', ap('wide', 'httpbin', '{}'), []],
    ['a selector matching no pod of its namespace', ap('nopods', 'httpbin', '{selector: {matchLabels: {app: bogus}}}'), ['IST0127 AuthorizationPolicy httpbin/nopods']],
    ['a selector matching an ambient pod', ap('cart', 'shop', '{selector: {matchLabels: {app: cart}}}'), []],
    ['a selector matching only a pod outside the mesh', ap('outside', 'plain', '{selector: {matchLabels: {app: outside}}}'), ['IST0127 AuthorizationPolicy plain/outside']],
    ['an ambient namespace without workloads', ap('no-workload', 'test-ambient', '{}'), ['IST0127 AuthorizationPolicy test-ambient/no-workload']],
    [
      'namespaces and notNamespaces naming namespaces that do not exist, each reported',
      ap('bogus-ns', 'httpbin', '{rules: [{from: [{source: {namespaces: [bogus-a, bogus-b]}}, {source: {notNamespaces: [bogus-c]}}]}]}'),
      ['IST0101 AuthorizationPolicy httpbin/bogus-ns', 'IST0101 AuthorizationPolicy httpbin/bogus-ns', 'IST0101 AuthorizationPolicy httpbin/bogus-ns'],
    ],
    ['namespace globs that match', ap('globs', 'httpbin', '{rules: [{from: [{source: {namespaces: ["*", "http*", "*-empty", SHOP]}}]}]}'), []],
    ['a namespace glob that matches nothing', ap('glob-miss', 'httpbin', '{rules: [{from: [{source: {namespaces: ["prod-*"]}}]}]}'), ['IST0101 AuthorizationPolicy httpbin/glob-miss']],
  ];
  for (const [name, policy, expected] of cases) {
    it(name, () => assert.deepEqual(found([...world, policy].join('\n---\n'), 'auth.AuthorizationPoliciesAnalyzer'), expected));
  }

  it('counts the pods a Deployment from a file will make', () => {
    const deployment = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: api, image: x}]}`;
    const policy = ap('api', 'shop', '{selector: {matchLabels: {app: api}}}');
    assert.deepEqual(found([...world, deployment, policy].join('\n---\n'), 'auth.AuthorizationPoliciesAnalyzer', { fromFile: true }), []);
    // From the cluster, a Deployment's pods are the Pods that exist.
    assert.deepEqual(found([...world, deployment, policy].join('\n---\n'), 'auth.AuthorizationPoliciesAnalyzer'), ['IST0127 AuthorizationPolicy shop/api']);
  });

  it('says which labels matched nothing, as Kubernetes prints a selector', () => {
    const [m] = analyze(input([...world, ap('x', 'shop', '{selector: {matchLabels: {version: v9, app: cart}}}')].join('\n---\n')), { analyzers: ['auth.AuthorizationPoliciesAnalyzer'] });
    assert.equal(m!.text, 'No matching workloads for this resource with the following labels: app=cart,version=v9');
  });
});

describe('injection.Analyzer', () => {
  const cases: Array<[string, string[], string[]]> = [
    ['a namespace with no injection or ambient label', [ns('bar')], ['IST0102 Namespace bar']],
    ['the root namespace is never reported', [ns('istio-system')], []],
    ['an ambient namespace', [ns('amb', { 'istio.io/dataplane-mode': 'ambient' })], []],
    ['injection explicitly disabled', [ns('off', { 'istio-injection': 'disabled' })], []],
    ['an empty injection label counts as none', [ns('blank', { 'istio-injection': '' })], ['IST0102 Namespace blank']],
    ['injection enabled and ambient', [ns('busted', { 'istio-injection': 'enabled', 'istio.io/dataplane-mode': 'ambient' })], ['IST0123 Namespace busted']],
    ['a revision and ambient', [ns('multi-1', { 'istio.io/rev': 'canary', 'istio.io/dataplane-mode': 'ambient' })], ['IST0123 Namespace multi-1']],
    ['injection enabled and a revision', [ns('multi-2', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' })], ['IST0123 Namespace multi-2']],
    ['injection disabled and ambient: one kind of label counts', [ns('quiet', { 'istio-injection': 'disabled', 'istio.io/dataplane-mode': 'ambient' })], []],
    [
      'a pod without a proxy in an injected namespace (Ambit never injects one)',
      [ns('default', { 'istio-injection': 'enabled' }), pod('noninjectedpod', 'default', { app: 'a' }), pod('optout', 'default', { app: 'b', 'sidecar.istio.io/inject': 'false' })],
      ['IST0103 Pod default/noninjectedpod'],
    ],
  ];
  for (const [name, docs, expected] of cases) it(name, () => assert.deepEqual(found(docs.join('\n---\n'), 'injection.Analyzer'), expected));

  it('lists the labels found in the message, as Go prints a slice', () => {
    const [m] = analyze(input(ns('busted', { 'istio-injection': 'enabled', 'istio.io/dataplane-mode': 'ambient' })), { analyzers: ['injection.Analyzer'] });
    assert.equal(m!.text, 'The namespace has more than one type of injection labels [istio-injection=enabled istio.io/dataplane-mode=ambient], which may lead to undefined behavior. Make sure only one injection label exists.');
  });
});

describe('conditions.ConditionAnalyzer', () => {
  const cond = (type: string, status: string, reason = 'R', message = 'm') => `{type: ${type}, status: "${status}", reason: ${reason}, message: "${message}"}`;
  const svc = (name: string, c: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: default}\nspec: {ports: [{port: 80}]}\nstatus: {conditions: [${c}]}`;
  const policy = (name: string, c: string) => `${ap(name, 'default', '{}')}\nstatus: {conditions: [${c}]}`;
  const gw = (name: string, c: string) =>
    `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ${name}, namespace: default}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}\nstatus: {conditions: [${c}]}`;
  const route = (kind: string, name: string, c: string) =>
    `apiVersion: gateway.networking.k8s.io/v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: default}\nspec: {parentRefs: [{name: web, kind: Service, group: ""}]}\nstatus: {parents: [{parentRef: {name: web}, controllerName: istio.io/mesh-controller, conditions: [${c}]}]}`;
  const docs = [
    svc('negative-condition-svc', cond('istio.io/WaypointBound', 'False', 'WaypointNotFound', 'waypoint not found')),
    svc('positive-condition-svc', cond('istio.io/WaypointBound', 'True')),
    policy('negative-condition-authz', cond('ZtunnelAccepted', 'False')),
    policy('negative-condition-authz-partially-invalid', cond('WaypointAccepted', 'True', 'PartiallyInvalid')),
    policy('ztunnel-unsupported', cond('ZtunnelAccepted', 'True', 'UnsupportedValue')),
    policy('positive-condition-authz', cond('ZtunnelAccepted', 'True', 'Accepted')),
    gw('negative-condition-gateway', cond('Programmed', 'False')),
    gw('positive-condition-gateway', cond('Programmed', 'True')),
    route('HTTPRoute', 'negative-condition-httproute', cond('ResolvedRefs', 'False')),
    route('GRPCRoute', 'negative-condition-grpcroute', cond('Accepted', 'False')),
    route('HTTPRoute', 'positive-condition-httproute', cond('Accepted', 'True')),
  ];
  it('reports negative conditions of Services, policies, Gateways and routes, and partially accepted policies', () => {
    assert.deepEqual(found(docs.join('\n---\n'), 'conditions.ConditionAnalyzer'), [
      'IST0171 AuthorizationPolicy default/negative-condition-authz',
      'IST0171 AuthorizationPolicy default/negative-condition-authz-partially-invalid',
      'IST0171 AuthorizationPolicy default/ztunnel-unsupported',
      'IST0171 GRPCRoute default/negative-condition-grpcroute',
      'IST0171 Gateway default/negative-condition-gateway',
      'IST0171 HTTPRoute default/negative-condition-httproute',
      'IST0171 Service default/negative-condition-svc',
    ]);
  });
  it("quotes the condition's type, reason and message", () => {
    const [m] = analyze(input(docs[0]!), { analyzers: ['conditions.ConditionAnalyzer'] });
    assert.equal(m!.text, 'A condition with a negative status is present: type=istio.io/WaypointBound, reason=WaypointNotFound, message=waypoint not found.');
  });
});

describe('k8sgateway.SelectorAnalyzer', () => {
  const waypointPod = pod('waypoint-abc', 'default', { 'gateway.networking.k8s.io/gateway-name': 'waypoint', app: 'shared' });
  const appPod = pod('app-1', 'default', { app: 'app' });
  const ra = (name: string, spec: string) => `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ${name}, namespace: default}\nspec: ${spec}`;
  const tel = (name: string, spec: string) => `apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: ${name}, namespace: default}\nspec: ${spec}`;
  it('reports selectors that pick a waypoint (Gateway) pod, and nothing else', () => {
    const docs = [
      waypointPod, appPod,
      ap('ap-ineffective', 'default', '{selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: waypoint}}}'),
      ap('ap-app', 'default', '{selector: {matchLabels: {app: app}}}'),
      ap('ap-targetref', 'default', '{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]}'),
      ra('ra-ineffective', '{selector: {matchLabels: {app: shared}}}'),
      tel('telemetry-ineffective', '{selector: {matchLabels: {app: shared}}}'),
    ];
    assert.deepEqual(found(docs.join('\n---\n'), 'k8sgateway.SelectorAnalyzer'), [
      'IST0166 AuthorizationPolicy default/ap-ineffective',
      'IST0166 RequestAuthentication default/ra-ineffective',
      'IST0166 Telemetry default/telemetry-ineffective',
    ]);
    const [m] = analyze(input([waypointPod, ra('r', '{selector: {matchLabels: {app: shared}}}')].join('\n---\n')), { analyzers: ['k8sgateway.SelectorAnalyzer'] });
    assert.equal(m!.text, 'Ineffective selector on Kubernetes Gateway waypoint. Use the TargetRef field instead.');
  });
});

describe('sidecar.SelectorAnalyzer and envoyfilter.AmbientAnalyzer', () => {
  const world = [ns('amb', { 'istio.io/dataplane-mode': 'ambient' }), ns('side', { 'istio-injection': 'enabled' }), pod('a-1', 'amb', { app: 'a' }), pod('s-1', 'side', { app: 's' })];
  const sidecar = (name: string, namespace: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;
  const filter = (name: string, namespace: string, spec: string) => `apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;
  it('says a Sidecar has no impact on ambient pods or in an ambient namespace', () => {
    const docs = [
      ...world,
      sidecar('selects-ambient', 'amb', '{workloadSelector: {labels: {app: a}}}'),
      sidecar('ns-default', 'amb', '{}'),
      // No labels: the whole namespace, as istiod reads it.
      sidecar('empty-selector', 'amb', '{workloadSelector: {labels: {}}}'),
      sidecar('sidecar-ns', 'side', '{}'),
      sidecar('selects-sidecar-pod', 'side', '{workloadSelector: {labels: {app: s}}}'),
    ];
    assert.deepEqual(found(docs.join('\n---\n'), 'sidecar.SelectorAnalyzer'), ['IST0167 Sidecar amb/empty-selector', 'IST0167 Sidecar amb/ns-default', 'IST0167 Sidecar amb/selects-ambient']);
    const texts = analyze(input(docs.join('\n---\n')), { analyzers: ['sidecar.SelectorAnalyzer'] }).map((m) => m.text).sort();
    assert.deepEqual(texts, [
      'The policy has no impact: namespace is in ambient mode, the policy has no impact.',
      'The policy has no impact: namespace is in ambient mode, the policy has no impact.',
      'The policy has no impact: selected workload is in ambient mode, the policy has no impact.',
    ]);
  });
  it('reports a Sidecar selector that matches no pod, as istioctl', () => {
    const [m] = analyze(input([...world, sidecar('typo', 'side', '{workloadSelector: {labels: {app: nope, tier: x}}}')].join('\n---\n')), { analyzers: ['sidecar.SelectorAnalyzer'] });
    assert.equal(`${m!.type.code} ${m!.text}`, 'IST0101 Referenced selector not found: "app=nope,tier=x"');
  });

  it('says every EnvoyFilter has no impact, with the reason that fits', () => {
    const docs = [...world, filter('lua', 'amb', '{workloadSelector: {labels: {app: a}}}'), filter('waypoint', 'amb', '{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]}')];
    const got = analyze(input(docs.join('\n---\n')), { analyzers: ['envoyfilter.AmbientAnalyzer'] }).map((m) => `${friendlyName(m.origin!)}: ${m.text}`);
    assert.deepEqual(got, [
      'EnvoyFilter amb/lua: The policy has no impact: selected workload is in ambient mode, the policy has no impact.',
      'EnvoyFilter amb/waypoint: The policy has no impact: no proxy of this mesh is an Envoy.',
    ]);
  });
});

describe('destinationrule.SubsetSelectPodAnalyzer', () => {
  const svc = `apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\nspec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}`;
  const node = `apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labels: {topology.kubernetes.io/zone: z1}}`;
  const reviewsV1 = `${pod('reviews-v1', 'default', { app: 'reviews', version: 'v1' })}`.replace('spec: {', 'spec: {nodeName: node-1, ');
  const dr = (name: string, spec: string, namespace = 'default') => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;
  const se = (name: string, spec: string, namespace = 'default') => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;
  const cases: Array<[string, string[], string[]]> = [
    ['a host no Service has', [dr('fake-host', '{host: fake.default.svc.cluster.local}')], ['IST0174 DestinationRule default/fake-host']],
    ['a short host completed with its namespace', [dr('short', '{host: reviews}')], []],
    ['a short host in another namespace names another service', [dr('elsewhere', '{host: reviews}', 'other')], ['IST0174 DestinationRule other/elsewhere']],
    ['a Service exported only to its own namespace', [dr('hidden', '{host: hidden.default.svc.cluster.local}', 'other'), svc.replace('name: reviews,', 'name: hidden, annotations: {networking.istio.io/exportTo: "."},')], ['IST0174 DestinationRule other/hidden']],
    ['subsets matching a pod, one through the node topology label istiod adds', [dr('subsets', '{host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: z1, labels: {topology.kubernetes.io/zone: z1}}]}')], []],
    ['a subset no pod matches', [dr('v2', '{host: reviews.default.svc.cluster.local, subsets: [{name: v2, labels: {version: v2}}]}')], ['IST0173 DestinationRule default/v2']],
    ['a ServiceEntry host', [se('external', '{hosts: [api.example.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}'), dr('external', '{host: api.example.com}')], []],
    ['a host under a wildcard ServiceEntry host', [se('eu', '{hosts: ["*.eu.example.com"], resolution: NONE}'), dr('eu', '{host: reviews.eu.example.com}')], []],
    ['a ServiceEntry exported only to its own namespace', [se('private', '{hosts: [private.example.com], exportTo: ["."], resolution: NONE}', 'other'), dr('private', '{host: private.example.com}')], ['IST0174 DestinationRule default/private']],
    ['a ServiceEntry exported to the rule\'s namespace', [se('shared', '{hosts: [shared.example.com], exportTo: [default], resolution: NONE}', 'other'), dr('shared', '{host: shared.example.com}')], []],
    ['a ServiceEntry subset matches by its workloadSelector', [se('vm', '{hosts: [vm.example.com], workloadSelector: {labels: {app: reviews}}, resolution: STATIC}'), dr('vm', '{host: vm.example.com, subsets: [{name: v1, labels: {version: v1}}, {name: v3, labels: {version: v3}}]}')], ['IST0173 DestinationRule default/vm']],
  ];
  for (const [name, docs, expected] of cases) {
    it(name, () => assert.deepEqual(found([svc, node, reviewsV1, ...docs].join('\n---\n'), 'destinationrule.SubsetSelectPodAnalyzer'), expected));
  }
});

// The VirtualService analyzers' fixtures: Istio's virtualservice_*.yaml test data, rewritten as our documents.
const vs = (name: string, namespace: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;
const serviceEntry = (name: string, namespace: string, spec: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: ${spec}`;
const service = (name: string, namespace: string, ports: string, annotations: Record<string, string> = {}) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${namespace}, annotations: ${JSON.stringify(annotations)}}\nspec: {ports: ${ports}}`;
const routeTo = (destination: string, extra = '') => `{http: [{route: [{destination: ${destination}}]${extra}}]}`;

describe('virtualservice.DestinationHostAnalyzer', () => {
  // Istio's virtualservice_destinationhosts.yaml.
  const world = [
    service('reviews', 'default', '[{port: 42, name: tcp-test, protocol: TCP}]'),
    service('reviews-2port', 'default', '[{port: 80, name: http-test}, {port: 443, name: https-test}]'),
    service('details', 'default', '[{port: 9080, name: http}]', { 'networking.istio.io/exportTo': 'banana' }),
    service('hello', 'hello', '[{port: 9080, name: http}]', { 'networking.istio.io/exportTo': 'hello1,hello2,.' }),
    serviceEntry('external-reviews', 'default', '{hosts: [external-reviews.org], resolution: NONE}'),
    serviceEntry('eu-wildcard', 'default', '{hosts: ["*.eu.bookinfo.com"], resolution: NONE}'),
    serviceEntry('service-entry-other', 'other', '{hosts: [other.bookinfo.com], exportTo: ["."], resolution: NONE}'),
    serviceEntry('service-entry-exported', 'other', '{hosts: [abc.bookinfo.com], exportTo: [default], resolution: NONE}'),
  ];
  const cases: Array<[string, string, string[]]> = [
    ['a short host naming a Service (the base case)', vs('reviews', 'default', routeTo('{host: reviews, subset: v1}')), []],
    // Istio's fixture also has a route without destination (reported with host ""): here the schema refuses one.
    ['a host nothing defines', vs('reviews-bogushost', 'default', routeTo('{host: reviews-bogus, subset: v1}')), ['IST0101 VirtualService default/reviews-bogushost']],
    ['a Service FQDN', vs('reviews-fqdn', 'default', routeTo('{host: reviews.default.svc.cluster.local, subset: v1}')), []],
    ['a ServiceEntry host', vs('reviews-external', 'default', routeTo('{host: external-reviews.org}')), []],
    ['a host under a wildcard ServiceEntry host', vs('reviews-bookinfo-eu', 'default', routeTo('{host: reviews.eu.bookinfo.com}')), []],
    ['the wildcard ServiceEntry host itself', vs('reviews-bookinfo-eu-wildcard', 'default', routeTo('{host: "*.eu.bookinfo.com"}')), []],
    ['a ServiceEntry host exported only to its own, other namespace', vs('reviews-bookinfo-other', 'default', routeTo('{host: other.bookinfo.com}')), ['IST0101 VirtualService default/reviews-bookinfo-other']],
    ['a mirror to a known host', vs('reviews-mirror', 'default', routeTo('{host: reviews, subset: v1}', ', mirror: {host: reviews, subset: v1}')), []],
    ['a mirror to a host nothing defines', vs('reviews-mirror-bogushost', 'default', routeTo('{host: reviews, subset: v1}', ', mirror: {host: reviews-bogus, subset: v1}')), ['IST0101 VirtualService default/reviews-mirror-bogushost']],
    ['a port the Service does not have', vs('reviews-bogusport', 'default', routeTo('{host: reviews, subset: v1, port: {number: 999}}')), ['IST0101 VirtualService default/reviews-bogusport']],
    ['no port for a Service with two', vs('reviews-2port-missing', 'default', routeTo('{host: reviews-2port, subset: v1}')), ['IST0112 VirtualService default/reviews-2port-missing']],
    ['a port for a Service with two', vs('reviews-2port-present', 'default', routeTo('{host: reviews-2port, subset: v1, port: {number: 80}}')), []],
    ['an FQDN of a Service in another namespace', vs('cross-namespace', 'istio-system', `{hosts: [reviews], ${routeTo('{host: reviews.default.svc.cluster.local}').slice(1)}`), []],
    ['a Service exported to another namespace only', vs('cross-namespace-details', 'istio-system', `{hosts: [details], ${routeTo('{host: details.default.svc.cluster.local}').slice(1)}`), ['IST0101 VirtualService istio-system/cross-namespace-details']],
    ['from the namespace a Service is exported to', vs('banana-details', 'banana', `{hosts: [details], ${routeTo('{host: details.default.svc.cluster.local}').slice(1)}`), []],
    ['from each namespace of a Service\'s exportTo list', [vs('hello', 'hello1', routeTo('{host: hello.hello.svc.cluster.local}')), vs('hello', 'hello2', routeTo('{host: hello.hello.svc.cluster.local}')), vs('hello', 'hello', routeTo('{host: hello.hello.svc.cluster.local}'))].join('\n---\n'), []],
    ['a VirtualService exported elsewhere looks its hosts up there', vs('hello-export-to-bogus', 'hello', `{exportTo: [bogus], ${routeTo('{host: hello.hello.svc.cluster.local}').slice(1)}`), ['IST0101 VirtualService hello/hello-export-to-bogus']],
    ['a ServiceEntry of another namespace exported to this one', vs('vs-to-exported-serviceentry', 'default', routeTo('{host: abc.bookinfo.com}')), []],
  ];
  for (const [name, doc, expected] of cases) {
    it(name, () => assert.deepEqual(found([...world, doc].join('\n---\n'), 'virtualservice.DestinationHostAnalyzer'), expected));
  }

  it('tcp and tls routes and mirrors are checked too; the texts are istioctl\'s', () => {
    const doc = vs('all', 'default', `{hosts: [reviews], tcp: [{route: [{destination: {host: reviews-2port}}]}], tls: [{match: [{sniHosts: [reviews]}], route: [{destination: {host: nowhere}}]}], http: [{route: [{destination: {host: reviews, port: {number: 43}}}], mirrors: [{destination: {host: gone}}]}]}`);
    const texts = analyze(input([...world, doc].join('\n---\n')), { analyzers: ['virtualservice.DestinationHostAnalyzer'] }).map((m) => `${m.type.code} ${m.text}`);
    assert.deepEqual(texts, [
      'IST0101 Referenced host not found: "nowhere"',
      'IST0101 Referenced host:port not found: "reviews:43"',
      'IST0101 Referenced mirror host not found: "gone"',
      'IST0112 This VirtualService routes to a service "reviews-2port" that exposes multiple ports [80 443]. Specifying a port in the destination is required to disambiguate.',
    ]);
  });
});

describe('virtualservice.DestinationRuleAnalyzer', () => {
  const dr = (name: string, namespace: string, host: string, subsets: string[]) =>
    `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: {host: "${host}", subsets: ${JSON.stringify(subsets.map((n) => ({ name: n, labels: { version: n } })))}}`;
  // Istio's virtualservice_destinationrules.yaml: a rule for reviews with subset v1.
  const world = [dr('reviews', 'default', 'reviews', ['v1'])];
  const cases: Array<[string, string, string[]]> = [
    ['a subset the rule defines (the base case)', vs('reviews', 'default', routeTo('{host: reviews, subset: v1}')), []],
    ['a subset no rule defines', vs('reviews-bogussubset', 'default', routeTo('{host: reviews, subset: bogus}')), ['IST0101 VirtualService default/reviews-bogussubset']],
    ['the host as a Service FQDN', vs('reviews-fqdn', 'default', routeTo('{host: reviews.default.svc.cluster.local, subset: v1}')), []],
    ['a mirror to a defined subset', vs('reviews-mirror', 'default', routeTo('{host: reviews, subset: v1}', ', mirror: {host: reviews, subset: v1}')), []],
    ['a mirror to a subset no rule defines', vs('reviews-mirror-bogussubset', 'default', routeTo('{host: reviews, subset: v1}', ', mirror: {host: reviews, subset: bogus}')), ['IST0101 VirtualService default/reviews-mirror-bogussubset']],
    // Beyond Istio's fixture, the rest of istioctl's rules.
    ['no subset: nothing to look up, rule or not', vs('no-subset', 'default', routeTo('{host: ratings}')), []],
    ['a short host names the VirtualService\'s namespace\'s service', vs('elsewhere', 'other', routeTo('{host: reviews, subset: v1}')), ['IST0101 VirtualService other/elsewhere']],
    ['an FQDN from another namespace', vs('cross', 'other', routeTo('{host: reviews.default.svc.cluster.local, subset: v1}')), []],
    ['a rule of another namespace naming the host by FQDN', [dr('ratings', 'istio-system', 'ratings.default.svc.cluster.local', ['v2']), vs('ratings', 'default', routeTo('{host: ratings, subset: v2}'))].join('\n---\n'), []],
    ['a rule of another namespace naming a short host names its own', [dr('ratings', 'other', 'ratings', ['v2']), vs('ratings', 'default', routeTo('{host: ratings, subset: v2}'))].join('\n---\n'), ['IST0101 VirtualService default/ratings']],
    ['a rule\'s exportTo is not consulted', [dr('ratings', 'other', 'ratings.default.svc.cluster.local', ['v2']).replace('spec: {', 'spec: {exportTo: ["."], '), vs('ratings', 'default', routeTo('{host: ratings, subset: v2}'))].join('\n---\n'), []],
    ['another host, as named in the same namespace', [dr('api', 'default', 'api.example.com', ['v1']), vs('api', 'default', routeTo('{host: api.example.com, subset: v1}'))].join('\n---\n'), []],
    ['another host, from another namespace: a different name for istioctl', [dr('api', 'default', 'api.example.com', ['v1']), vs('api', 'other', routeTo('{host: api.example.com, subset: v1}'))].join('\n---\n'), ['IST0101 VirtualService other/api']],
    ['a wildcard rule host is a name, not a pattern', [dr('eu', 'default', '*.eu.example.com', ['v1']), vs('eu', 'default', routeTo('{host: a.eu.example.com, subset: v1}')), vs('eu-wildcard', 'default', routeTo('{host: "*.eu.example.com", subset: v1}'))].join('\n---\n'), ['IST0101 VirtualService default/eu']],
  ];
  for (const [name, doc, expected] of cases) {
    it(name, () => assert.deepEqual(found([...world, doc].join('\n---\n'), 'virtualservice.DestinationRuleAnalyzer'), expected));
  }

  it('checks tcp and tls routes and mirrors too, with istioctl\'s texts', () => {
    const doc = vs('all', 'default', `{hosts: [reviews], tcp: [{route: [{destination: {host: reviews, subset: t}}]}], tls: [{match: [{sniHosts: [reviews]}], route: [{destination: {host: reviews, subset: v1}}]}], http: [{route: [{destination: {host: reviews, subset: h}}], mirrors: [{destination: {host: reviews.default.svc.cluster.local, subset: m}}]}]}`);
    const texts = analyze(input([...world, doc].join('\n---\n')), { analyzers: ['virtualservice.DestinationRuleAnalyzer'] }).map((m) => `${m.type.code} ${m.text}`);
    assert.deepEqual(texts, [
      'IST0101 Referenced host+subset in destinationrule not found: "reviews+h"',
      'IST0101 Referenced host+subset in destinationrule not found: "reviews+t"',
      'IST0101 Referenced mirror+subset in destinationrule not found: "reviews.default.svc.cluster.local+m"',
    ]);
  });
});

describe('virtualservice.ConflictingMeshGatewayHostsAnalyzer', () => {
  const mesh = (name: string, namespace: string, hosts: string[], extra = '') => vs(name, namespace, `{hosts: ${JSON.stringify(hosts)}${extra}, ${routeTo('{host: ratings}').slice(1)}`);
  it('reports every VirtualService bound to the mesh that names a host another names (Istio\'s conflictingmeshgatewayhosts)', () => {
    const docs = [
      mesh('productpage', 'foo', ['productpage']),
      mesh('bogus-productpage', 'foo', ['productpage']),
      mesh('reviews', 'foo', ['reviews']),
      // Bound to a gateway only: no conflict with foo/reviews.
      mesh('reviews', 'bar', ['reviews.foo.svc.cluster.local'], ', gateways: [istio-ingressgateway]'),
      mesh('ratings', 'foo', ['ratings'], ', gateways: [mesh]'),
      mesh('ratings', 'bar', ['ratings.foo.svc.cluster.local', 'google.com'], ', gateways: [istio-ingressgateway, mesh]'),
      // Exported to its own namespace only: no conflict with team2's.
      mesh('ratings', 'team1', ['ratings'], ', gateways: [mesh], exportTo: ["."]'),
      // Its google.com conflicts with bar/ratings', exported to all.
      mesh('ratings', 'team2', ['ratings.team1.svc.cluster.local', 'google.com'], ', exportTo: ["."], gateways: [istio-ingressgateway, mesh]'),
      mesh('ratings', 'team3', ['ratings'], ', gateways: [mesh], exportTo: ["*"]'),
      mesh('ratings', 'team4', ['ratings.team3.svc.cluster.local'], ', gateways: [istio-ingressgateway, mesh]'),
    ];
    assert.deepEqual(found(docs.join('\n---\n'), 'virtualservice.ConflictingMeshGatewayHostsAnalyzer'), [
      'IST0109 VirtualService bar/ratings',
      'IST0109 VirtualService foo/bogus-productpage',
      'IST0109 VirtualService foo/productpage',
      'IST0109 VirtualService foo/ratings',
      'IST0109 VirtualService team2/ratings',
      'IST0109 VirtualService team3/ratings',
      'IST0109 VirtualService team4/ratings',
    ]);
  });

  it('takes exportTo and wildcards into account (Istio\'s conflictingmeshgatewayhosts_with_exportto)', () => {
    const docs = [
      mesh('productpage', 'foo', ['*.productpage']),
      mesh('productpage', 'bar', ['*.productpage']),
      // Each seen in foo only: no conflict.
      mesh('productpage-b', 'foo', ['*.productpage.b'], ', exportTo: [foo]'),
      mesh('productpage-b', 'bar', ['*.productpage.b'], ', exportTo: ["."]'),
      // Seen in foo, and everywhere.
      mesh('productpage-c', 'foo', ['*.productpage.c'], ', exportTo: [foo]'),
      mesh('productpage-c', 'bar', ['*.productpage.c'], ', exportTo: ["*"]'),
      // *.d, exported everywhere, covers *.productpage.d.
      mesh('productpage-d', 'foo', ['*.productpage.d'], ', exportTo: ["."]'),
      mesh('productpage-d', 'bar', ['*.d'], ', exportTo: ["*"]'),
    ];
    assert.deepEqual(found(docs.join('\n---\n'), 'virtualservice.ConflictingMeshGatewayHostsAnalyzer'), [
      'IST0109 VirtualService bar/productpage',
      'IST0109 VirtualService bar/productpage-c',
      'IST0109 VirtualService bar/productpage-d',
      'IST0109 VirtualService foo/productpage',
      'IST0109 VirtualService foo/productpage-c',
      'IST0109 VirtualService foo/productpage-d',
    ]);
  });

  it('names the VirtualServices, sorted, and the host with its scope, as istioctl', () => {
    const docs = [mesh('b', 'foo', ['productpage']), mesh('a', 'foo', ['productpage.foo.svc.cluster.local'])];
    const texts = analyze(input(docs.join('\n---\n')), { analyzers: ['virtualservice.ConflictingMeshGatewayHostsAnalyzer'] }).map((m) => m.text);
    const text = 'The VirtualServices foo/a,foo/b associated with mesh gateway define the same host */productpage.foo.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.';
    assert.deepEqual(texts, [text, text]);
  });
});

describe('virtualservice.GatewayAnalyzer', () => {
  const istioGateway = (name: string, namespace: string, hosts?: string[][]) =>
    `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec: {selector: {istio: ingressgateway}${hosts ? `, servers: ${JSON.stringify(hosts.map((h) => ({ hosts: h, port: { name: 'http', number: 80, protocol: 'HTTP' } })))}` : ''}}`;
  const bound = (name: string, namespace: string, gateways: string[], hosts: string[]) =>
    vs(name, namespace, `{gateways: ${JSON.stringify(gateways)}, hosts: ${JSON.stringify(hosts)}, http: [{match: [{uri: {prefix: /}}], route: [{destination: {host: ratings}}]}]}`);
  const check = (docs: string[]) => found(docs.join('\n---\n'), 'virtualservice.GatewayAnalyzer');

  it('reports gateways that do not exist and gateways without the hosts (Istio\'s virtualservice_gateways)', () => {
    assert.deepEqual(check([
      istioGateway('httpbin-gateway', 'default'),
      istioGateway('crossnamespace-gw', 'another'),
      // The gateway exists, but serves no host.
      bound('httpbin', 'default', ['httpbin-gateway'], ['*']),
      bound('httpbin-bogus', 'default', ['httpbin-gateway-bogus'], ['*']),
      // "mesh" is no gateway to look up.
      bound('httpbin-mesh', 'default', ['mesh'], ['*']),
      bound('cross-test', 'default', ['another/crossnamespace-gw'], ['*']),
    ]), [
      'IST0101 VirtualService default/httpbin-bogus',
      'IST0132 VirtualService default/cross-test',
      'IST0132 VirtualService default/httpbin',
      'IST0132 VirtualService default/httpbin-bogus',
    ]);
  });

  it('matches hosts exactly and under wildcards, per gateway (Istio\'s virtualservice_host_not_found_gateway)', () => {
    const gw = (name: string, hosts: string[][]) => istioGateway(name, 'istio-system', hosts);
    assert.deepEqual(check([
      gw('testing-gateway-01-test-01', [['testing-01.com']]),
      bound('testing-service-01-test-01', 'default', ['istio-system/testing-gateway-01-test-01'], ['testing-01.com']),
      bound('testing-service-02-test-01', 'default', ['istio-system/testing-gateway-01-test-01'], ['wrong-01.com']),
      gw('testing-gateway-01-test-02', [['*.testing-02.com']]),
      bound('testing-service-01-test-02', 'default', ['istio-system/testing-gateway-01-test-02'], ['web.testing-02.com']),
      bound('testing-service-02-test-02', 'default', ['istio-system/testing-gateway-01-test-02'], ['web.wrong.com']),
      gw('testing-gateway-01-test-03', [['*.api.testing-03.com']]),
      gw('testing-gateway-02-test-03', [['*.homepage.testing-03.com']]),
      bound('testing-service-01-test-03', 'default', ['istio-system/testing-gateway-01-test-03', 'istio-system/testing-gateway-02-test-03'], ['user.api.testing-03.com', 'profile.homepage.testing-03.com']),
      // Each gateway must serve one of the hosts: the second serves none of them.
      bound('testing-service-02-test-03', 'default', ['istio-system/testing-gateway-01-test-03', 'istio-system/testing-gateway-02-test-03'], ['user.api.testing-03.com']),
      gw('testing-gateway-01-test-04', [['*.testing-01-04.com'], ['web.testing-02-04.com']]),
      bound('testing-service-01-test-04', 'default', ['istio-system/testing-gateway-01-test-04'], ['web.testing-02-04.com']),
      bound('testing-service-02-test-04', 'default', ['istio-system/testing-gateway-01-test-04'], ['profile.user.testing-01-04.com']),
      bound('testing-service-03-test-04', 'default', ['istio-system/testing-gateway-01-test-04'], ['user.testing-02-04.com', 'users.testing-02-04.com']),
    ]), [
      'IST0132 VirtualService default/testing-service-02-test-01',
      'IST0132 VirtualService default/testing-service-02-test-02',
      'IST0132 VirtualService default/testing-service-02-test-03',
      'IST0132 VirtualService default/testing-service-03-test-04',
    ]);
  });

  it('reads namespace prefixes of gateway hosts (Istio\'s virtualservice_host_not_found_gateway_with_ns_prefix)', () => {
    const docs: string[] = [];
    ['./testing-01.com', '*/testing-01.com', '*/*', 'testing-01.com'].forEach((host, i) => {
      const name = i === 0 ? 'testing-gateway' : `testing-gateway-${i + 1}`;
      docs.push(istioGateway(name, 'istio-system', [[host]]));
      // One VirtualService in the gateway's namespace, one in another: only `./` keeps the host to its own.
      for (const ns of ['istio-system', 'default']) docs.push(bound(`testing-service-01-test-0${i + 1}`, ns, [`istio-system/${name}`], ['testing-01.com']));
    });
    assert.deepEqual(check(docs), ['IST0132 VirtualService default/testing-service-01-test-01']);
  });

  it('reads the hostnames of a Kubernetes Gateway\'s listeners (Istio\'s virtualservice_kubernetes_gateways)', () => {
    const kubeGateway = (hostname: string | undefined) =>
      `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: my-gateway, namespace: default}\nspec: {gatewayClassName: istio, listeners: [{name: http, ${hostname ? `hostname: ${hostname}, ` : ''}port: 80, protocol: HTTP}]}`;
    const vss = [bound('my-vs', 'default', ['default/my-gateway'], ['example.com']), bound('my-vs-host-mismatch', 'default', ['default/my-gateway'], ['wrong.example.com'])];
    assert.deepEqual(check([kubeGateway('example.com'), ...vss]), ['IST0132 VirtualService default/my-vs-host-mismatch']);
    // A listener without hostname takes every host.
    assert.deepEqual(check([kubeGateway(undefined), ...vss]), []);
  });

  it('warns about a reference to a gateway istiod generates (Istio\'s virtualservice_internal_gateway_ref); the texts are istioctl\'s', () => {
    const docs = [bound('httpbin', 'default', ['istio-ingress/gateway~istio-autogenerated-k8s-gateway~foo'], ['foo.com']), bound('bogus', 'default', ['nope'], ['a.com', 'b.com'])];
    const texts = analyze(input(docs.join('\n---\n')), { analyzers: ['virtualservice.GatewayAnalyzer'] }).map((m) => `${m.type.code} ${m.text}`);
    assert.deepEqual(texts, [
      'IST0101 Referenced gateway not found: "nope"',
      'IST0132 one or more host [a.com b.com] defined in VirtualService default/bogus not found in Gateway default/nope.',
      'IST0165 Gateway reference in VirtualService default/httpbin is to an implementation-generated internal Gateway: istio-ingress/gateway~istio-autogenerated-k8s-gateway~foo.',
    ]);
  });
});

describe('schema.ValidationAnalyzer.VirtualService', () => {
  const to = (host: string) => `route: [{destination: {host: ${host}}}]`;
  const rules = (name: string, namespace: string, spec: string) => vs(name, namespace, spec);
  // Istio's virtualservice_dupmatches.yaml and virtualservice_overlappingmatches.yaml.
  const docs = [
    rules('sample-foo-cluster01', 'foo', `{hosts: [sample.foo.svc.cluster.local], http: [{fault: {delay: {fixedDelay: 5s, percentage: {value: 100}}}, ${to('sample.foo.svc.cluster.local')}}, {mirror: {host: sample.bar.svc.cluster.local}, ${to('sample.bar.svc.cluster.local')}}]}`),
    rules('duplicate-match', 'default', `{hosts: [sample.baz.svc.cluster.local], http: [
      {name: send /api/v1/products to sample.foo, match: [{name: prefix /api/v1/products, uri: {prefix: /api/v1/products}}], ${to('sample.foo.svc.cluster.local')}},
      {name: send /api/v1/products to sample.bar, match: [{uri: {prefix: /api/v1/products}}], ${to('sample.bar.svc.cluster.local')}}]}`),
    rules('almost-duplicate-match', 'default', `{hosts: [sample.bar.svc.cluster.local], http: [
      {match: [{uri: {prefix: /api/v1/products}}], ${to('sample.foo.svc.cluster.local')}},
      {name: send /api/v1/products and /potato to sample.bar, match: [{name: prefix /api/v1/products, uri: {prefix: /api/v1/products}}, {name: prefix /potato, uri: {prefix: /potato}}], ${to('sample.bar.svc.cluster.local')}}]}`),
    rules('duplicate-tcp-match', 'default', `{hosts: ["*"], gateways: [tcp-echo-gateway], tcp: [{match: [{port: 31400}], ${to('tcp-echo')}}, {match: [{port: 31400}], ${to('tcp-echo')}}]}`),
    rules('duplicate-empty-tcp', 'default', `{hosts: ["*"], gateways: [tcp-echo-gateway], tcp: [{${to('tcp-echo')}}, {${to('tcp-echo')}}]}`),
    rules('almost-duplicate-tcp-match', 'default', `{hosts: ["*"], gateways: [tcp-echo-gateway], tcp: [{match: [{port: 31400}], ${to('tcp-echo')}}, {match: [{port: 31400}, {port: 31401}], ${to('tcp-echo')}}]}`),
    rules('tls-routing', 'none', `{hosts: [www1.googleapis.com, api1.facebook.com], tls: [
      {match: [{port: 2443, sniHosts: [www1.googleapis.com]}], ${to('www1.googleapis.com')}},
      {match: [{port: 2443, sniHosts: [www1.googleapis.com]}], ${to('api1.facebook.com')}}]}`),
    rules('tls-routing-almostmatch', 'none', `{hosts: [www1.example.com], tls: [
      {match: [{port: 2443, sniHosts: [www1.example.com]}], ${to('www1.googleapis.com')}},
      {match: [{port: 2443, sniHosts: [www1.example.com]}, {port: 8443, sniHosts: [www1.example.com]}], ${to('api1.facebook.com')}}]}`),
    rules('non-method-get', 'default', `{hosts: [sample.baz.svc.cluster.local], http: [{name: send product to sample.foo, match: [{uri: {prefix: /api/v1/product}}, {uri: {prefix: /api/v1/products}, method: {exact: GET}}], ${to('sample.foo.svc.cluster.local')}}]}`),
    rules('uri-with-prefix-exact', 'default', `{hosts: [sample.baz.svc.cluster.local], http: [{name: send product to sample.foo, match: [{uri: {prefix: /}}, {uri: {exact: /}, method: {exact: GET}}], ${to('sample.foo.svc.cluster.local')}}]}`),
    rules('overlapping-in-single-match', 'default', `{hosts: [sample.baz.svc.cluster.local], http: [{name: send product to sample.foo, match: [{uri: {prefix: /api/v1/product}, method: {exact: GET}}, {uri: {prefix: /api/v1/products}, method: {exact: GET}}], ${to('sample.foo.svc.cluster.local')}}]}`),
    rules('overlapping-in-two-matches', 'default', `{hosts: [sample.baz.svc.cluster.local], http: [
      {name: send product to sample.foo, match: [{uri: {prefix: /api/v1/product}, method: {exact: GET}}], ${to('sample.foo.svc.cluster.local')}},
      {name: send products to sample.bar, match: [{uri: {prefix: /api/v1/products}, method: {exact: GET}}], ${to('sample.bar.svc.cluster.local')}}]}`),
    rules('overlapping-mathes-with-different-methods', 'default', `{hosts: [sample.baz.svc.cluster.local], http: [
      {name: send product to sample.foo, match: [{uri: {prefix: /api/v1/prod}, method: {exact: GET}}], ${to('sample.foo.svc.cluster.local')}},
      {name: send products to sample.bar, match: [{uri: {prefix: /api/v1/product}, method: {exact: GET}}, {uri: {prefix: /api/v1/products}, method: {exact: POST}}], ${to('sample.bar.svc.cluster.local')}}]}`),
  ];
  const messages = () => analyze(input(docs.join('\n---\n')), { analyzers: ['schema.ValidationAnalyzer.VirtualService'] });

  it('reports rules never reached and matches that repeat or fall under earlier ones, as istioctl', () => {
    assert.deepEqual(messages().map((m) => `${m.type.code} ${friendlyName(m.origin!)}`).sort(), [
      'IST0130 VirtualService default/duplicate-empty-tcp',
      'IST0130 VirtualService default/duplicate-match',
      'IST0130 VirtualService default/duplicate-tcp-match',
      'IST0130 VirtualService foo/sample-foo-cluster01',
      'IST0130 VirtualService none/tls-routing',
      'IST0131 VirtualService default/almost-duplicate-match',
      'IST0131 VirtualService default/almost-duplicate-tcp-match',
      'IST0131 VirtualService default/duplicate-match',
      'IST0131 VirtualService default/duplicate-tcp-match',
      'IST0131 VirtualService default/non-method-get',
      'IST0131 VirtualService default/overlapping-in-single-match',
      'IST0131 VirtualService default/overlapping-in-two-matches',
      'IST0131 VirtualService default/overlapping-mathes-with-different-methods',
      'IST0131 VirtualService none/tls-routing',
      'IST0131 VirtualService none/tls-routing-almostmatch',
    ]);
  });

  it('names rules and matches by name (quoted) or number, as istiod', () => {
    const texts = new Map(messages().map((m) => [`${m.type.code} ${m.origin!.name}`, m.text]));
    assert.equal(texts.get('IST0130 sample-foo-cluster01'), 'VirtualService rule #1 not used (only the last rule can have no matches).');
    assert.equal(texts.get('IST0130 duplicate-match'), 'VirtualService rule "send /api/v1/products to sample.bar" not used (all matches used by prior rules).');
    assert.equal(texts.get('IST0131 duplicate-match'), 'VirtualService rule "send /api/v1/products to sample.bar" match #0 is not used (duplicate/overlapping match in rule "send /api/v1/products to sample.foo").');
    assert.equal(texts.get('IST0131 almost-duplicate-match'), 'VirtualService rule "send /api/v1/products and /potato to sample.bar" match "prefix /api/v1/products" is not used (duplicate/overlapping match in rule #0).');
    assert.equal(texts.get('IST0131 tls-routing-almostmatch'), 'VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).');
    assert.equal(texts.get('IST0131 overlapping-in-two-matches'), 'VirtualService rule "send products to sample.bar" match #0 of prefix /api/v1/products is not used (duplicate/overlapping match in rule #0 of prefix /api/v1/product on "send product to sample.foo").');
    // A match without a method counts as GET.
    assert.equal(texts.get('IST0131 non-method-get'), 'VirtualService rule "send product to sample.foo" match #1 of prefix /api/v1/products is not used (duplicate/overlapping match in rule #0 of prefix /api/v1/product on "send product to sample.foo").');
    assert.equal(messages().filter((m) => m.origin!.name === 'overlapping-mathes-with-different-methods').length, 1);
  });

  it('compares matches as Go writes them: zero values are no values, header names count', () => {
    const http = (matches: string[]) => vs('v', 'default', `{hosts: [a], http: [${matches.map((m) => `{match: [${m}], ${to('a')}}`).join(', ')}]}`);
    const codes = (doc: string) => analyze(input(doc), { analyzers: ['schema.ValidationAnalyzer.VirtualService'] }).map((m) => m.type.code);
    assert.deepEqual(codes(http(['{uri: {exact: /a}, ignoreUriCase: false, headers: {}}', '{uri: {exact: /a}}'])), ['IST0130', 'IST0131']);
    assert.deepEqual(codes(http(['{headers: {x: {exact: "1"}}}', '{headers: {y: {exact: "1"}}}'])), []);
    assert.deepEqual(codes(http(['{uri: {prefix: /a}, port: 80}', '{uri: {prefix: /ab}, port: 8080}'])), []);
    // After a rule without matches, every match of a later rule is unreachable (one message, reported per match).
    assert.deepEqual(codes(http(['', '{uri: {exact: /a}}, {uri: {exact: /b}}']).replace('match: [], ', '')), ['IST0130']);
  });
});

describe('service.PortNameAnalyzer', () => {
  const svc = (name: string, ports: string, extra = '') => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: default${extra}}\nspec: {ports: ${ports}}`;
  it('reports ports whose protocol cannot be told from name or appProtocol, as istioctl; ExternalName tcp ports apart', () => {
    const docs = [
      svc('named', '[{name: http, port: 80}, {name: grpc-api, port: 9090}, {name: tcp-db, port: 5432}]'),
      svc('by-app-protocol', '[{name: web, port: 80, appProtocol: http}]'),
      svc('well-known', '[{port: 3306}]'),
      svc('udp', '[{name: dns, port: 53, protocol: UDP}]'),
      svc('bad-name', '[{name: web, port: 80, targetPort: 8080}]'),
      svc('unnamed', '[{port: 8080}]'),
      svc('control-plane', '[{name: web, port: 80}]', ', labels: {istio: pilot}'),
      svc('waypoint', '[{name: mesh, port: 15008}]', ', labels: {gateway.istio.io/managed: istio.io-mesh-controller}'),
      `apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec: {type: ExternalName, externalName: db.example.com, ports: [{name: tcp, port: 5432}]}`,
    ].join('\n---\n');
    assert.deepEqual(found(docs, 'service.PortNameAnalyzer'), ['IST0118 Service default/bad-name', 'IST0118 Service default/unnamed', 'IST0150 Service default/ext']);
    const texts = (fromFile: boolean) => analyze(input(docs, { fromFile }), { analyzers: ['service.PortNameAnalyzer'] }).filter((m) => m.type.code === 'IST0118').map((m) => m.text);
    assert.deepEqual(texts(false), [
      "Port name web (port: 80, targetPort: 8080) doesn't follow the naming convention of Istio port.",
      "Port name  (port: 8080, targetPort: 8080) doesn't follow the naming convention of Istio port.",
    ]);
    // A file's Service has not had its targetPort defaulted by an API server: Go prints the zero value.
    assert.equal(texts(true)[1], "Port name  (port: 8080, targetPort: 0) doesn't follow the naming convention of Istio port.");
  });
});

describe('waypoint.UseWaypointAnalyzer', () => {
  const gateway = `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: shop}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}`;
  it('reports namespaces and pods whose use-waypoint names no Gateway', () => {
    const docs = [
      gateway,
      ns('shop', { 'istio.io/use-waypoint': 'waypoint' }),
      ns('lost', { 'istio.io/use-waypoint': 'missing' }),
      ns('opted-out', { 'istio.io/use-waypoint': 'none' }),
      ns('cross', { 'istio.io/use-waypoint': 'waypoint', 'istio.io/use-waypoint-namespace': 'shop' }),
      pod('p', 'shop', { 'istio.io/use-waypoint': 'nowhere' }),
    ];
    assert.deepEqual(found(docs.join('\n---\n'), 'waypoint.UseWaypointAnalyzer'), ['IST0101 Namespace lost', 'IST0101 Pod shop/p']);
    const [m] = analyze(input(docs.join('\n---\n')), { analyzers: ['waypoint.UseWaypointAnalyzer'], namespace: 'lost' });
    assert.equal(m!.text, 'Referenced waypoint not found: "lost/missing"');
  });
});

describe('the runner', () => {
  const docs = [ns('a'), ns('b'), ns('c', { 'istio-injection': 'enabled', 'istio.io/dataplane-mode': 'ambient' }), ap('x', 'a', '{selector: {matchLabels: {app: none}}}')];

  it('keeps the messages of the namespace asked for (a Namespace counts as its own)', () => {
    const got = analyze(input(docs.join('\n---\n')), { namespace: 'a' }).map((m) => `${m.type.code} ${friendlyName(m.origin!)}`);
    assert.deepEqual(got, ['IST0127 AuthorizationPolicy a/x', 'IST0102 Namespace a']);
  });

  it('sorts by level, then code, then resource, and prints log lines as istioctl', () => {
    const messages = analyze(input(docs.join('\n---\n')));
    assert.equal(
      formatMessages(messages, 'log'),
      [
        'Warning [IST0123] (Namespace c) The namespace has more than one type of injection labels [istio-injection=enabled istio.io/dataplane-mode=ambient], which may lead to undefined behavior. Make sure only one injection label exists.',
        'Warning [IST0127] (AuthorizationPolicy a/x) No matching workloads for this resource with the following labels: app=none',
        "Info [IST0102] (Namespace a) The namespace is not enabled for Istio injection. Run 'kubectl label namespace a istio-injection=enabled' to enable it, or 'kubectl label namespace a istio-injection=disabled' to explicitly mark it as not needing injection.",
        "Info [IST0102] (Namespace b) The namespace is not enabled for Istio injection. Run 'kubectl label namespace b istio-injection=enabled' to enable it, or 'kubectl label namespace b istio-injection=disabled' to explicitly mark it as not needing injection.",
      ].join('\n'),
    );
    assert.match(formatMessages(messages.slice(0, 1), 'log', true), /^\u001b\[33mWarning\u001b\[0m \[IST0123\]/);
  });

  it('drops suppressed messages: --suppress CODE=RESOURCE with * globs, and the analyze-suppress annotation', () => {
    const base = input(docs.join('\n---\n'));
    const codes = (opts: Parameters<typeof analyze>[1], i = base) => analyze(i, opts).map((m) => `${m.type.code} ${friendlyName(m.origin!)}`);
    assert.deepEqual(codes({ suppressions: [{ code: 'IST0102', resource: 'Namespace *' }, { code: 'IST0127', resource: 'AuthorizationPolicy a/x' }] }), ['IST0123 Namespace c']);
    assert.deepEqual(codes({ suppressions: [{ code: 'IST0102', resource: 'Namespace b' }] }).length, 3);
    const annotated = input([ns('a'), ap('x', 'a', '{selector: {matchLabels: {app: none}}}').replace('namespace: a}', 'namespace: a, annotations: {galley.istio.io/analyze-suppress: "IST0127"}}')].join('\n---\n'));
    assert.deepEqual(codes({}, annotated), ['IST0102 Namespace a']);
    const all = input(ns('a').replace('labels: {}', 'labels: {}, annotations: {galley.istio.io/analyze-suppress: "*"}'));
    assert.deepEqual(codes({}, all), []);
  });

  it('deduplicates identical messages and keeps messages without a resource first within a code', () => {
    const reported: Message[] = [{ type: { code: 'IST0102', name: 'NamespaceNotInjected', level: 'Info' }, text: 't' }];
    const got = analyze(input([ns('a'), ns('a')].join('\n---\n')), {}, reported);
    assert.equal(got.length, 2);
    assert.equal(got[0]!.origin, undefined);
  });

  it('prints JSON and YAML with the fields and URL istioctl prints', () => {
    const [m] = analyze(input([ns('a'), ap('x', 'a', '{selector: {matchLabels: {app: none}}}')].join('\n---\n')), { analyzers: ['auth.AuthorizationPoliciesAnalyzer'] });
    const located = { ...m!, origin: { ...m!.origin!, file: 'policies.yaml', line: 7 } };
    assert.deepEqual(JSON.parse(formatMessages([located], 'json')), [{
      code: 'IST0127',
      documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0127/?ref=istioctl-analyze',
      level: 'Warning',
      message: 'No matching workloads for this resource with the following labels: app=none',
      origin: 'AuthorizationPolicy a/x',
      reference: 'policies.yaml:7',
    }]);
    assert.match(formatMessages([located], 'json'), /^\[\n\t\{\n\t\t"code": "IST0127",/);
    assert.deepEqual(parseYaml(formatMessages([located], 'yaml')), JSON.parse(formatMessages([located], 'json')));
    assert.equal(formatMessages([], 'json'), '[]');
    assert.equal(formatMessages([{ ...located, origin: { ...located.origin, file: 'p.json' } }], 'log'), 'Warning [IST0127] (AuthorizationPolicy a/x p.json) No matching workloads for this resource with the following labels: app=none');
  });

  it('refuses an unknown analyzer name and lists the analyzers sorted with their descriptions', () => {
    assert.throws(() => analyze(input(ns('a')), { analyzers: ['nope.Analyzer'] }), /unknown analyzer "nope.Analyzer": see the list with -L/);
    const list = listAnalyzers();
    assert.ok(list.startsWith('* auth.AuthorizationPoliciesAnalyzer:\n    Checks the validity of authorization policies\n'));
    assert.deepEqual(ANALYZERS.map((a) => a.name), [...ANALYZERS.map((a) => a.name)].sort());
  });
});
