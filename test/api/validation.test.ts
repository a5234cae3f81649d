// validateResource on decoded objects: which kinds/versions are accepted, what happens to unknown input, and what
// the returned resource looks like (defaults applied, unknown fields carried through, input left untouched).
// Rule-by-rule messages and positions are covered through the loader in test/config/rules.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SUPPORTED_KINDS, formatPath, validateResource } from '../../src/api/validation.js';

/** The smallest valid object of each kind (metadata added by the test). */
const MINIMAL: Record<string, Record<string, unknown>> = {
  Namespace: {},
  ServiceAccount: {},
  Service: { spec: { ports: [{ port: 80 }] } },
  Pod: { spec: { containers: [{ name: 'c' }] } },
  Deployment: { spec: { selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c' }] } } } },
  AuthorizationPolicy: {},
  PeerAuthentication: {},
  RequestAuthentication: {},
  DestinationRule: { spec: { host: 'reviews' } },
  VirtualService: { spec: { hosts: ['reviews'] } },
  Telemetry: {},
  Gateway: { spec: { gatewayClassName: 'istio-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } },
  GatewayClass: { spec: { controllerName: 'istio.io/mesh-controller' } },
  HTTPRoute: {},
  GRPCRoute: {},
};

describe('validateResource', () => {
  it('accepts every supported kind in every served apiVersion', () => {
    assert.equal(SUPPORTED_KINDS.length, 15);
    let checked = 0;
    for (const { kind, apiVersions } of SUPPORTED_KINDS) {
      for (const apiVersion of apiVersions) {
        const r = validateResource({ apiVersion, kind, metadata: { name: 'x' }, ...MINIMAL[kind] });
        assert.deepEqual(r.issues, [], `${apiVersion}/${kind}`);
        assert.equal(r.resource?.kind, kind);
        assert.equal(r.resource?.apiVersion, apiVersion, 'the apiVersion is kept as written');
        checked++;
      }
    }
    assert.equal(checked, 27);
  });

  it('accepts the versions the brief and Istio serve', () => {
    const served = Object.fromEntries(SUPPORTED_KINDS.map((k) => [k.kind, k.apiVersions]));
    assert.deepEqual(served.AuthorizationPolicy, ['security.istio.io/v1', 'security.istio.io/v1beta1']);
    assert.deepEqual(served.DestinationRule, ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']);
    assert.deepEqual(served.HTTPRoute, ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1']);
    assert.deepEqual(served.Deployment, ['apps/v1']);
  });

  it('skips unknown kinds and unknown versions of known kinds with a warning', () => {
    assert.deepEqual(validateResource({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }), {
      issues: [{ path: [], severity: 'warning', message: 'unknown kind v1/ConfigMap, skipped' }],
    });
    assert.deepEqual(validateResource({ apiVersion: 'apps/v1beta1', kind: 'Deployment', metadata: { name: 'x' } }), {
      issues: [{ path: [], severity: 'warning', message: 'unknown kind apps/v1beta1/Deployment, skipped' }],
    });
    // An inherited property name must not be mistaken for a kind.
    assert.equal(validateResource({ apiVersion: 'v1', kind: 'toString', metadata: { name: 'x' } }).issues[0]!.severity, 'warning');
  });

  it('rejects documents that are not objects and objects without apiVersion/kind', () => {
    assert.deepEqual(validateResource([1, 2]).issues, [
      { path: [], severity: 'error', message: 'expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found a list' },
    ]);
    assert.deepEqual(validateResource({ apiVersion: 1, metadata: {} }).issues, [
      { path: ['apiVersion'], severity: 'error', message: 'expected a string, found number 1' },
      { path: ['kind'], severity: 'error', message: 'required' },
    ]);
  });

  it('returns no resource when there is any error, and the resource with warnings otherwise', () => {
    const bad = validateResource({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 0 }] } });
    assert.equal(bad.resource, undefined);
    assert.deepEqual(bad.issues, [{ path: ['spec', 'ports', 0, 'port'], severity: 'error', message: 'must be a port number 1-65535, found number 0' }]);
    const warned = validateResource({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'p' }, spec: { mtls: { mode: 'DISABLE' } } });
    assert.equal(warned.resource?.kind, 'PeerAuthentication');
    assert.deepEqual(warned.issues.map((i) => i.severity), ['warning']);
  });

  it('types the volumes the local cluster acts on: projected service account tokens and volume mounts', () => {
    const pod = (volumes: unknown, volumeMounts: unknown) =>
      validateResource({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', volumeMounts }], volumes } }).issues;
    const token = { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } };
    // Other volume types and sources are carried through unchecked.
    assert.deepEqual(pod([token, { name: 'data', emptyDir: {} }, { name: 'ca', projected: { sources: [{ configMap: { name: 'c' } }] } }], [{ name: 'istio-token', mountPath: '/var/run/secrets/tokens' }]), []);
    assert.deepEqual(
      pod([{ name: 'Token', projected: { sources: [{ serviceAccountToken: { expirationSeconds: '12h' } }] } }], [{ name: 'istio-token', readOnly: 'yes' }]).map((i) => `${formatPath(i.path)}: ${i.message}`),
      [
        'spec.containers[0].volumeMounts[0].mountPath: required',
        'spec.containers[0].volumeMounts[0].readOnly: expected true or false, found "yes"',
        `spec.volumes[0].name: must be a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending alphanumeric), found "Token"`,
        'spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: expected a number, found "12h"',
        'spec.volumes[0].projected.sources[0].serviceAccountToken.path: required',
      ],
    );
  });

  it('defaults the namespace, an absent spec and drops nulls, without touching the input', () => {
    const raw = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a', labels: null } };
    const snapshot = structuredClone(raw);
    const r = validateResource(raw);
    assert.deepEqual(r.issues, []);
    assert.deepEqual(r.resource, { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a', namespace: 'default' }, spec: {} });
    assert.deepEqual(raw, snapshot);
  });

  it('carries unknown fields through instead of failing; warns about them in security policies', () => {
    const r = validateResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'a', namespace: 'n', finalizers: ['x'] },
      spec: { action: 'ALLOW', futureField: { enabled: true }, rules: [{ from: [{ source: { principals: ['p'], newMatcher: 1 } }] }] },
      extraTopLevel: 'kept',
    });
    assert.deepEqual(r.issues, [
      { path: ['spec', 'rules', 0, 'from', 0, 'source', 'newMatcher'], severity: 'warning', message: 'unknown field "newMatcher", ignored', aboutKey: true },
      { path: ['spec', 'futureField'], severity: 'warning', message: 'unknown field "futureField", ignored', aboutKey: true },
    ]);
    const spec = (r.resource as unknown as { spec: Record<string, unknown> }).spec;
    assert.deepEqual(spec.futureField, { enabled: true });
    assert.equal((r.resource as unknown as Record<string, unknown>).extraTopLevel, 'kept');
    // Kinds whose schema types only the fields Ambit uses carry the rest silently.
    const pod = validateResource({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', resources: { limits: { cpu: '1' } } }], volumes: [] } });
    assert.deepEqual(pod.issues, []);
    assert.deepEqual((pod.resource as unknown as { spec: { volumes: unknown } }).spec.volumes, []);
  });

  it('reports every independent problem of an object in one pass', () => {
    const r = validateResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'Bad_Name' },
      spec: { selector: { matchLabels: { app: 'a' } }, targetRefs: [{ kind: 'Gateway', name: 'w' }], action: 'ALLOW', provider: { name: 'ext' }, rules: [{ when: [{ key: 'source.ip' }] }] },
    });
    assert.deepEqual(
      r.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
      [
        'metadata.name: must be a lowercase RFC 1123 subdomain (a-z, 0-9, \'-\' and \'.\', starting and ending alphanumeric), found "Bad_Name"',
        'spec.rules[0].when[0]: at least one of `values` or `notValues` must be set for key source.ip',
        'spec.targetRefs: only one of targetRefs or selector can be set',
        'spec.provider: `provider` must not be with non CUSTOM action, found ALLOW',
      ],
    );
  });

  it('marks issues about a mapping key so the loader can point at the key', () => {
    const r = validateResource({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', labels: { 'a b': 'x' } } });
    assert.deepEqual(r.issues.map((i) => [i.path, i.aboutKey]), [[['metadata', 'labels', 'a b'], true]]);
  });
});

describe('formatPath', () => {
  it('renders indexes in brackets and quotes keys that are not identifiers', () => {
    assert.equal(formatPath(['spec', 'rules', 0, 'when', 1, 'key']), 'spec.rules[0].when[1].key');
    assert.equal(formatPath(['metadata', 'labels', 'app.kubernetes.io/name']), 'metadata.labels["app.kubernetes.io/name"]');
    assert.equal(formatPath(['spec', 'portLevelMtls', '8080', 'mode']), 'spec.portLevelMtls["8080"].mode');
    assert.equal(formatPath([]), '');
  });
});
