// Unknown fields as kube-apiserver's strict decoding reports them: the field trees of every kind of the registry,
// kube's path format (dots for fields and map keys, [i] for list items), its order (document order for built-in
// kinds, sorted for custom resources), its message, and realistic objects that must pass untouched.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { RESOURCE_TYPES, groupVersion } from '../../src/api/kinds.js';
import { fieldTree, strictDecodingError, unknownFields, type FieldTable } from '../../src/api/fields.js';
import { KUBE_KINDS, KUBE_TYPES } from '../../src/api/generated/kube-fields.js';
import { GATEWAY_API_FIELDS } from '../../src/api/gateway-fields.js';
import { ISTIO_FIELDS } from '../../src/api/istio-fields.js';

const doc = (yaml: string) => parse(yaml) as Record<string, unknown>;
const unknownIn = (o: Record<string, unknown>) => unknownFields(o.apiVersion as string, o.kind as string, o);

describe('strictDecodingError', () => {
  it('words the 400 as kube-apiserver: the version without its group, every field in order', () => {
    assert.equal(strictDecodingError('Deployment', 'apps/v1', ['spec.selectr']), 'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.selectr"');
    assert.equal(
      strictDecodingError('AuthorizationPolicy', 'security.istio.io/v1beta1', ['spec.foo', 'spec.bar']),
      'AuthorizationPolicy in version "v1beta1" cannot be handled as a AuthorizationPolicy: strict decoding error: unknown field "spec.foo", unknown field "spec.bar"',
    );
    assert.equal(strictDecodingError('Pod', 'v1', ['spec.containers[0].imagePullPolcy']), 'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagePullPolcy"');
  });
});

describe('unknownFields: paths', () => {
  it('names list items by index and map values by their key, as kube does', () => {
    const deploy = doc(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labelz: {app: web}}
spec:
  selectr: {matchLabels: {app: web}}
  template:
    spec:
      containers:
      - {name: a, image: a}
      - name: b
        imagePullPolcy: Always
        env: [{name: X, valueFrm: {}}]
`);
    assert.deepEqual(unknownIn(deploy), ['metadata.labelz', 'spec.selectr', 'spec.template.spec.containers[1].imagePullPolcy', 'spec.template.spec.containers[1].env[0].valueFrm']);
    const pa = doc('apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nspec: {portLevelMtls: {"8080": {mod: STRICT}}}\n');
    assert.deepEqual(unknownIn(pa), ['spec.portLevelMtls.8080.mod']);
    const vs = doc('apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec: {http: [{match: [{headers: {x-user.id: {exactt: a}}}], route: [{destination: {host: r}}]}]}\n');
    assert.deepEqual(unknownIn(vs), ['spec.http[0].match[0].headers.x-user.id.exactt']);
    // Nested maps of objects: a CRD's schema properties, map in map.
    const crd = doc(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimun: 1}
`);
    assert.deepEqual(unknownIn(crd), ['spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.minimun']);
  });

  it('reports a built-in object\'s fields in document order, at most 100 as kube-apiserver keeps', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', zeta: 1, spec: { b: 1, containers: [{ name: 'c', y: 1 }], a: 1 }, alpha: 1 };
    assert.deepEqual(unknownIn(pod), ['zeta', 'spec.b', 'spec.containers[0].y', 'spec.a', 'alpha']);
    const many = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`f${i}`, 1]));
    const found = unknownIn({ apiVersion: 'v1', kind: 'ConfigMap', ...many });
    assert.equal(found.length, 100);
    assert.equal(found[99], 'f99');
  });

  it('reports a custom resource\'s metadata fields first, then the others sorted, as apiextensions-apiserver', () => {
    const ap = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', zeta: 1, metadata: { nme: 'x', labelz: {} }, spec: { selectr: {}, action: 'ALLOW' } };
    assert.deepEqual(unknownIn(ap), ['metadata.nme', 'metadata.labelz', 'spec.selectr', 'zeta']);
  });

  it('checks status: built-in and Gateway API statuses fully, Istio\'s declared fields only (the rest is preserved)', () => {
    assert.deepEqual(unknownIn({ apiVersion: 'v1', kind: 'Pod', status: { phase: 'Running', podIp: '10.0.0.1' } }), ['status.podIp']);
    const se = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', status: { addresses: [{ host: 'a', value: '240.240.0.1' }], conditions: [{ type: 'Reconciled', staus: 'True' }] } };
    assert.deepEqual(unknownIn(se), ['status.conditions[0].staus']);
    const gw = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', status: { addresses: [{ value: '10.0.0.1' }], listeners: [{ name: 'mesh', attachedRoutes: 0, supportedKinds: [], conditions: [], extra: 1 }] } };
    assert.deepEqual(unknownIn(gw), ['status.listeners[0].extra']);
    // ReferenceGrant's CRD declares no status at all.
    assert.deepEqual(unknownIn({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', status: {} }), ['status']);
  });

  it('leaves free-form places open: EnvoyFilter patch values, WasmPlugin configuration, ConfigMap data', () => {
    const ef = doc(`
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua, namespace: istio-system}
spec:
  workloadSelector: {labels: {app: web}}
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager, subFilter: {name: envoy.filters.http.router}}}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.lua
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua, inlineCode: "function envoy_on_request(h) end"}
`);
    assert.deepEqual(unknownIn(ef), []);
    const wasm = doc('apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nspec: {url: oci://x, pluginConfig: {anything: {goes: [1]}}, vmConfig: {env: [{name: A, value: b}]}}\n');
    assert.deepEqual(unknownIn(wasm), []);
    assert.deepEqual(unknownIn({ apiVersion: 'v1', kind: 'ConfigMap', data: { 'a.conf': 'x' }, binaryData: {} }), []);
  });

  it('treats inherited property names as unknown fields, not as Object\'s prototype', () => {
    assert.deepEqual(unknownIn(JSON.parse('{"apiVersion":"v1","kind":"Pod","spec":{"constructor":{},"toString":1}}')), ['spec.constructor', 'spec.toString']);
  });

  it('throws for kinds the registry does not serve', () => {
    assert.throws(() => unknownFields('example.com/v1', 'Widget', {}), /not a kind the registry serves/);
    assert.throws(() => unknownFields('apps/v1beta1', 'Deployment', {}), /not a kind the registry serves/);
  });
});

describe('unknownFields: the registry', () => {
  it('has a field tree for every kind and version of the registry, with metadata and typos found', () => {
    let checked = 0;
    for (const t of RESOURCE_TYPES) {
      for (const version of t.versions) {
        const apiVersion = groupVersion(t.group, version);
        assert.ok(fieldTree(apiVersion, t.kind), `${apiVersion} ${t.kind}`);
        const o = { apiVersion, kind: t.kind, metadata: { name: 'x', namespace: 'n', labels: { a: 'b' }, annotatons: {} }, specc: {} };
        assert.deepEqual(unknownFields(apiVersion, t.kind, o), ['metadata.annotatons', 'specc'], `${apiVersion} ${t.kind}`);
        checked++;
      }
    }
    assert.equal(checked, RESOURCE_TYPES.reduce((n, t) => n + t.versions.length, 0));
    assert.ok(checked >= 50);
  });

  it('every type a tree names exists, and every custom kind\'s root is an object of spec (and status)', () => {
    const tables: [string, FieldTable][] = [
      ['kube', { kinds: Object.assign({}, ...Object.values(KUBE_KINDS)) as Record<string, string>, types: KUBE_TYPES }],
      ['istio', ISTIO_FIELDS],
      ['gateway', GATEWAY_API_FIELDS],
    ];
    for (const [name, table] of tables) {
      const names = [...Object.values(table.kinds), ...Object.values(table.types).flatMap((fields) => Object.values(fields))].map((t) => t.replace(/^(\[\]|\{\})+/, ''));
      const missing = names.filter((t) => t !== '' && t !== '*' && !Object.hasOwn(table.types, t));
      assert.deepEqual(missing, [], `${name}: types named but not defined`);
      const used = new Set(names);
      const unused = Object.keys(table.types).filter((t) => !used.has(t) && t !== 'V1ObjectMeta');
      assert.deepEqual(unused, [], `${name}: types defined but never named`);
    }
    for (const table of [ISTIO_FIELDS, GATEWAY_API_FIELDS]) {
      for (const root of Object.values(table.kinds)) assert.ok(Object.keys(table.types[root]!).every((f) => f === 'spec' || f === 'status'), root);
    }
  });

  it('the generated built-in trees are those of the installed @kubernetes/client-node', async () => {
    const script = new URL('../../../scripts/gen-kube-fields.mjs', import.meta.url);
    const { generate, OUTPUT } = (await import(script.href)) as { generate: () => Promise<string>; OUTPUT: string };
    assert.equal(await generate(), readFileSync(OUTPUT, 'utf8'), 'run: npm run build && node scripts/gen-kube-fields.mjs');
  });
});

describe('unknownFields: realistic objects pass untouched', () => {
  it('a Deployment with probes, resources, securityContext, affinity, volumes and status', () => {
    const deploy = doc(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
  namespace: bookinfo
  labels: {app: reviews}
  annotations: {deployment.kubernetes.io/revision: "3"}
  ownerReferences: [{apiVersion: v1, kind: Namespace, name: bookinfo, uid: "1", controller: false, blockOwnerDeletion: true}]
  managedFields: [{manager: kubectl, operation: Apply, apiVersion: apps/v1, fieldsType: FieldsV1, fieldsV1: {"f:spec": {"f:replicas": {}}}}]
spec:
  replicas: 3
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 600
  minReadySeconds: 5
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}}
  selector:
    matchLabels: {app: reviews}
    matchExpressions: [{key: version, operator: In, values: [v1, v2]}]
  template:
    metadata:
      labels: {app: reviews, version: v1}
      annotations: {prometheus.io/scrape: "true"}
    spec:
      serviceAccountName: reviews
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      priorityClassName: high
      nodeSelector: {kubernetes.io/os: linux}
      tolerations: [{key: dedicated, operator: Equal, value: mesh, effect: NoSchedule, tolerationSeconds: 60}]
      topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: reviews}}}]
      securityContext: {runAsNonRoot: true, runAsUser: 1000, fsGroup: 2000, seccompProfile: {type: RuntimeDefault}, sysctls: [{name: net.ipv4.ip_local_port_range, value: "1024 65535"}]}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64]}]}]
          preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchFields: [{key: metadata.name, operator: NotIn, values: [n1]}]}}]
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: reviews}}, namespaces: [bookinfo]}
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: topology.kubernetes.io/zone, namespaceSelector: {}, labelSelector: {matchExpressions: [{key: app, operator: Exists}]}}]
      initContainers:
      - name: init
        image: busybox
        command: [sh, -c, "true"]
        restartPolicy: Always
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.2
        imagePullPolicy: IfNotPresent
        args: [--port, "9080"]
        workingDir: /opt
        ports: [{name: http, containerPort: 9080, protocol: TCP}]
        env:
        - {name: LOG_DIR, value: /tmp/logs}
        - name: POD_NAME
          valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}
        - name: LIMIT
          valueFrom: {resourceFieldRef: {containerName: reviews, resource: limits.memory, divisor: 1Mi}}
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: s, key: token, optional: true}}
        envFrom: [{configMapRef: {name: settings}, prefix: CFG_}]
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: "1", memory: 512Mi, ephemeral-storage: 1Gi}
        readinessProbe:
          httpGet: {path: /health, port: http, scheme: HTTP, httpHeaders: [{name: X-Probe, value: "1"}]}
          initialDelaySeconds: 5
          periodSeconds: 10
          timeoutSeconds: 2
          successThreshold: 1
          failureThreshold: 3
        livenessProbe:
          tcpSocket: {port: 9080}
          terminationGracePeriodSeconds: 10
        startupProbe:
          exec: {command: [cat, /tmp/ready]}
          failureThreshold: 30
        lifecycle:
          preStop: {exec: {command: [sleep, "5"]}}
          postStart: {httpGet: {path: /started, port: 9080}}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          privileged: false
          runAsGroup: 3000
          capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
        volumeMounts:
        - {name: tmp, mountPath: /tmp}
        - {name: istio-token, mountPath: /var/run/secrets/tokens, readOnly: true}
        terminationMessagePolicy: FallbackToLogsOnError
      volumes:
      - name: tmp
        emptyDir: {medium: Memory, sizeLimit: 64Mi}
      - name: istio-token
        projected:
          defaultMode: 420
          sources:
          - serviceAccountToken: {audience: istio-ca, expirationSeconds: 43200, path: istio-token}
          - configMap: {name: istio-ca-root-cert, items: [{key: root-cert.pem, path: root-cert.pem}]}
          - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
      - name: data
        persistentVolumeClaim: {claimName: data}
status:
  observedGeneration: 3
  replicas: 3
  readyReplicas: 3
  availableReplicas: 3
  updatedReplicas: 3
  conditions: [{type: Available, status: "True", reason: MinimumReplicasAvailable, message: ok, lastUpdateTime: "2025-01-01T00:00:00Z", lastTransitionTime: "2025-01-01T00:00:00Z"}]
`);
    assert.deepEqual(unknownIn(deploy), []);
  });

  it('an HTTPRoute with filters (also on a backend), matches, timeouts and its status', () => {
    const route = doc(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: bookinfo}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}, {name: ingress, sectionName: https, namespace: gw}]
  hostnames: [reviews.example.com]
  rules:
  - name: canary
    matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{type: Exact, name: x-canary, value: "1"}]
      queryParams: [{type: RegularExpression, name: v, value: "^2"}]
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-a, value: "1"}], add: [{name: x-b, value: "2"}], remove: [x-c]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {remove: [server]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 9080}, percent: 10}
    - type: URLRewrite
      urlRewrite: {hostname: internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Filter, name: f}
    backendRefs:
    - name: reviews-v2
      port: 9080
      weight: 90
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-v, value: "2"}]}}]
    - {group: "", kind: Service, name: reviews-v1, namespace: bookinfo, port: 9080, weight: 10}
    timeouts: {request: 10s, backendRequest: 2s}
    retry: {attempts: 2, backoff: 100ms, codes: [503]}
  - filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: example.com, port: 443, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /}}
status:
  parents:
  - parentRef: {group: "", kind: Service, name: reviews, port: 9080}
    controllerName: istio.io/gateway-controller
    conditions: [{type: Accepted, status: "True", reason: Accepted, message: ok, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:00:00Z"}]
`);
    assert.deepEqual(unknownIn(route), []);
  });

  it('a VirtualService with http (every action), tls and tcp routes', () => {
    const vs = doc(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  gateways: [mesh]
  exportTo: ["."]
  http:
  - name: canary
    match:
    - uri: {prefix: /api}
      headers: {end-user: {exact: jason}}
      queryParams: {v: {regex: "^2"}}
      withoutHeaders: {x-skip: {exact: "1"}}
      method: {exact: GET}
      authority: {prefix: reviews}
      scheme: {exact: http}
      port: 9080
      sourceLabels: {app: productpage}
      sourceNamespace: bookinfo
      ignoreUriCase: true
      name: api
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      weight: 90
      headers: {request: {set: {x-v: "2"}}, response: {remove: [server]}}
    - destination: {host: reviews, subset: v1}
      weight: 10
    rewrite: {uri: /, authority: reviews.internal}
    timeout: 10s
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,reset", retryRemoteLocalities: true}
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 10}}
      abort: {httpStatus: 503, percentage: {value: 1}}
    mirror: {host: shadow}
    mirrorPercentage: {value: 5}
    corsPolicy: {allowOrigins: [{exact: https://example.com}], allowMethods: [GET], allowHeaders: [x-a], exposeHeaders: [x-b], maxAge: 24h, allowCredentials: true}
    headers: {request: {add: {x-from: mesh}}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.com, redirectCode: 301, scheme: https, port: 443}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: "I'm a teapot"}}
  - match: [{uri: {regex: "^/v[0-9]+/.*"}}]
    rewrite: {uriRegexRewrite: {match: "^/v([0-9]+)/", rewrite: /version\\\\1/}}
    route: [{destination: {host: reviews}}]
    mirrors: [{destination: {host: shadow, port: {number: 80}}, percentage: {value: 1}}]
  - delegate: {name: reviews-delegate, namespace: bookinfo}
  tls:
  - match: [{sniHosts: [reviews.example.com], port: 443, destinationSubnets: [10.0.0.0/8], sourceLabels: {app: a}, gateways: [mesh], sourceNamespace: bookinfo}]
    route: [{destination: {host: reviews, port: {number: 443}}, weight: 100}]
  tcp:
  - match: [{port: 27017, destinationSubnets: [10.1.0.0/16], sourceSubnet: 10.2.0.0/16, sourceLabels: {app: b}, gateways: [mesh], sourceNamespace: bookinfo}]
    route: [{destination: {host: mongo, port: {number: 27017}}}]
status:
  observedGeneration: 1
  conditions: [{type: Reconciled, status: "True"}]
  validationMessages: [{documentationUrl: https://istio.io, level: WARNING, type: {code: IST0101, name: ReferencedResourceNotFound}}]
`);
    assert.deepEqual(unknownIn(vs), []);
  });

  it('a Telemetry with tracing, metrics and access logging', () => {
    const telemetry = doc(`
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]
  tracing:
  - providers: [{name: otel}]
    randomSamplingPercentage: 10
    disableSpanReporting: false
    match: {mode: CLIENT_AND_SERVER}
    customTags:
      cluster: {literal: {value: east}}
      pod: {environment: {name: POD_NAME, defaultValue: unknown}}
      user: {header: {name: x-user, defaultValue: anonymous}}
  metrics:
  - providers: [{name: prometheus}]
    reportingInterval: 15s
    overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER}
      disabled: false
      tagOverrides: {request_host: {operation: REMOVE}, team: {operation: UPSERT, value: "'mesh'"}}
    - match: {customMetric: my_metric}
  accessLogging:
  - providers: [{name: envoy}]
    filter: {expression: response.code >= 400}
    match: {mode: SERVER}
    disabled: false
`);
    assert.deepEqual(unknownIn(telemetry), []);
  });

  it("Istio's Gateway with TLS servers, and a Sidecar", () => {
    const gateway = doc(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https, protocol: HTTPS, targetPort: 8443}
    hosts: [bookinfo/reviews.example.com]
    name: https
    bind: 0.0.0.0
    tls:
      mode: MUTUAL
      credentialName: reviews-cert
      subjectAltNames: [spiffe://cluster.local/ns/a/sa/b]
      minProtocolVersion: TLSV1_2
      maxProtocolVersion: TLSV1_3
      cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]
`);
    assert.deepEqual(unknownIn(gateway), []);
    const sidecar = doc(`
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bookinfo}
spec:
  workloadSelector: {labels: {app: reviews}}
  ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: 127.0.0.1:8080, connectionPool: {http: {http1MaxPendingRequests: 10}}}]
  egress: [{hosts: [./*, istio-system/*]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`);
    assert.deepEqual(unknownIn(sidecar), []);
  });
});
