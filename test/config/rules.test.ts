// Every validation rule, checked end to end through the loader: the exact `file:line:col`, object, field path and
// message a user sees. Each case is a small YAML text; columns are counted by hand from the text.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue, parseText } from '../../src/config/loader.js';
import { LABEL_VALUE_RULE, QUALIFIED_NAME_RULE, RFC1035_LABEL_RULE, RFC1123_LABEL_RULE, RFC1123_SUBDOMAIN_RULE, invalid } from '../support/kube-messages.js';

const AP = (spec: string) => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ap, namespace: ns}\nspec:\n${spec}`;
const PA = (spec: string) => `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: ns}\nspec:\n${spec}`;
const RA = (spec: string) => `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: ns}\nspec:\n${spec}`;
const flowList = (n: number, item: string) => `[${Array.from({ length: n }, () => item).join(', ')}]`;

interface Case {
  name: string;
  yaml: string;
  expect: string[];
}

const F = 'rules.yaml';

const cases: Case[] = [
  // ---- selector / targetRef / targetRefs ----
  {
    name: 'selector and targetRef together',
    yaml: AP('  selector:\n    matchLabels: {app: a}\n  targetRef: {kind: Gateway, name: w}\n'),
    expect: [`${F}:7:14: error: AuthorizationPolicy ns/ap: spec.targetRef: only one of targetRefs or selector can be set`],
  },
  {
    name: 'selector and targetRefs together (RequestAuthentication)',
    yaml: RA('  selector: {matchLabels: {app: a}}\n  targetRefs:\n  - {kind: Gateway, name: w}\n'),
    expect: [`${F}:7:3: error: RequestAuthentication ns/ra: spec.targetRefs: only one of targetRefs or selector can be set`],
  },
  {
    name: 'targetRefs namespace must be empty',
    yaml: AP('  targetRefs:\n  - kind: Gateway\n    name: w\n    namespace: other\n'),
    expect: [`${F}:8:16: error: AuthorizationPolicy ns/ap: spec.targetRefs[0].namespace: cross namespace referencing is not currently supported`],
  },
  {
    name: 'at most 16 targetRefs',
    yaml: AP(`  targetRefs: ${flowList(17, '{kind: Service, name: s}')}\n`),
    expect: [`${F}:5:15: error: AuthorizationPolicy ns/ap: spec.targetRefs: must have at most 16 items, found 17`],
  },
  {
    name: 'targetRef kind is required, name is limited to 253 characters',
    yaml: AP(`  targetRefs:\n  - name: w\n  - kind: Service\n    name: ${'n'.repeat(254)}\n`),
    expect: [
      `${F}:6:5: error: AuthorizationPolicy ns/ap: spec.targetRefs[0].kind: required`,
      `${F}:8:11: error: AuthorizationPolicy ns/ap: spec.targetRefs[1].name: must be at most 253 characters, found 254`,
    ],
  },
  {
    name: 'targetRef kind length and syntax',
    yaml: AP(`  targetRef: {kind: "${'K'.repeat(64)}", name: w}\n`),
    expect: [`${F}:5:21: error: AuthorizationPolicy ns/ap: spec.targetRef.kind: must be at most 63 characters, found 64`],
  },
  // ---- sources ----
  {
    name: 'serviceAccounts with principals',
    yaml: AP('  rules:\n  - from:\n    - source:\n        principals: [a]\n        serviceAccounts: [ns/sa]\n'),
    expect: [`${F}:9:26: error: AuthorizationPolicy ns/ap: spec.rules[0].from[0].source.serviceAccounts: Cannot set serviceAccounts with namespaces or principals`],
  },
  {
    name: 'notServiceAccounts with notNamespaces',
    yaml: AP('  rules:\n  - from:\n    - source: {notNamespaces: [x], notServiceAccounts: [sa]}\n'),
    expect: [`${F}:7:56: error: AuthorizationPolicy ns/ap: spec.rules[0].from[0].source.notServiceAccounts: Cannot set serviceAccounts with namespaces or principals`],
  },
  {
    name: 'serviceAccounts: at most 16, at most 320 characters, no wildcard',
    yaml: AP(
      `  rules:\n  - from:\n    - source:\n        serviceAccounts: ${flowList(17, 'a')}\n    - source:\n        serviceAccounts:\n        - ${'s'.repeat(321)}\n        - "ns/*"\n`,
    ),
    expect: [
      `${F}:8:26: error: AuthorizationPolicy ns/ap: spec.rules[0].from[0].source.serviceAccounts: must have at most 16 items, found 17`,
      `${F}:11:11: error: AuthorizationPolicy ns/ap: spec.rules[0].from[1].source.serviceAccounts[0]: must be at most 320 characters, found 321`,
      `${F}:12:11: error: AuthorizationPolicy ns/ap: spec.rules[0].from[1].source.serviceAccounts[1]: wildcards are not supported in serviceAccounts, found "ns/*"`,
    ],
  },
  {
    name: 'ipBlocks that are not addresses or CIDRs (istiod webhook check: a warning)',
    yaml: AP('  rules:\n  - from:\n    - source: {ipBlocks: ["10.0.0.0/8", "10.0.0.0/33", "nope"]}\n'),
    expect: [
      `${F}:7:41: warning: AuthorizationPolicy ns/ap: spec.rules[0].from[0].source.ipBlocks[1]: must be an IP address or CIDR, found "10.0.0.0/33"`,
      `${F}:7:56: warning: AuthorizationPolicy ns/ap: spec.rules[0].from[0].source.ipBlocks[2]: must be an IP address or CIDR, found "nope"`,
    ],
  },
  // ---- rules, operations, conditions ----
  {
    name: 'at most 512 rules',
    yaml: AP(`  rules: ${flowList(513, '{}')}\n`),
    expect: [`${F}:5:10: error: AuthorizationPolicy ns/ap: spec.rules: must have at most 512 items, found 513`],
  },
  {
    name: 'operation ports are strings (CRD type: an error)',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        ports: [8080, "80"]\n'),
    expect: [`${F}:8:17: error: AuthorizationPolicy ns/ap: spec.rules[0].to[0].operation.ports[0]: expected a string, found number 8080`],
  },
  {
    name: 'operation ports that are not port numbers (istiod webhook check: a warning)',
    yaml: AP('  rules:\n  - to:\n    - operation:\n        notPorts: ["99999"]\n'),
    expect: [`${F}:8:20: warning: AuthorizationPolicy ns/ap: spec.rules[0].to[0].operation.notPorts[0]: must be a port number 0-65535, found "99999"`],
  },
  {
    name: 'when: key required, one of values/notValues',
    yaml: AP('  rules:\n  - when:\n    - key: request.headers[x-user]\n      values: [a]\n    - values: [b]\n    - key: source.ip\n'),
    expect: [
      `${F}:9:7: error: AuthorizationPolicy ns/ap: spec.rules[0].when[1].key: required`,
      `${F}:10:7: error: AuthorizationPolicy ns/ap: spec.rules[0].when[2]: at least one of \`values\` or \`notValues\` must be set for key source.ip`,
    ],
  },
  {
    name: 'when: unknown attributes and bad values (istiod webhook checks: warnings)',
    yaml: AP('  rules:\n  - when:\n    - key: source.color\n      values: [c]\n    - key: destination.port\n      notValues: ["http"]\n    - key: source.ip\n      values: ["10.1.2.3", "ten"]\n'),
    expect: [
      `${F}:7:12: warning: AuthorizationPolicy ns/ap: spec.rules[0].when[0].key: unknown attribute "source.color"`,
      `${F}:10:19: warning: AuthorizationPolicy ns/ap: spec.rules[0].when[1].notValues[0]: invalid value for key destination.port: must be a port number 0-65535, found "http"`,
      `${F}:12:28: warning: AuthorizationPolicy ns/ap: spec.rules[0].when[2].values[1]: invalid value for key source.ip: must be an IP address or CIDR, found "ten"`,
    ],
  },
  // ---- action / provider ----
  {
    name: 'provider only with CUSTOM',
    yaml: AP('  action: DENY\n  provider: {name: ext-authz}\n  rules: [{}]\n'),
    expect: [`${F}:6:13: error: AuthorizationPolicy ns/ap: spec.provider: \`provider\` must not be with non CUSTOM action, found DENY`],
  },
  {
    name: 'CUSTOM needs a provider',
    yaml: AP('  action: CUSTOM\n  rules: [{}]\n'),
    expect: [`${F}:5:11: error: AuthorizationPolicy ns/ap: spec.action: \`provider.name\` must not be empty`],
  },
  {
    name: 'unknown action',
    yaml: AP('  action: ALLOWED\n'),
    expect: [`${F}:5:11: error: AuthorizationPolicy ns/ap: spec.action: expected one of ALLOW, DENY, AUDIT, CUSTOM; found "ALLOWED"`],
  },
  {
    name: 'DENY without rules',
    yaml: AP('  action: DENY\n'),
    expect: [
      `${F}:5:11: warning: AuthorizationPolicy ns/ap: spec.action: DENY action without \`rules\` is meaningless as it will never be triggered, add an empty rule \`{}\` if you want it be triggered for every request`,
    ],
  },
  // ---- selectors and labels ----
  {
    name: 'selector matchLabels: no wildcards, no empty key, value at most 63',
    yaml: AP(`  selector:\n    matchLabels:\n      "app*": a\n      version: "v*"\n      "": x\n      long: ${'v'.repeat(64)}\n`),
    expect: [
      `${F}:7:7: error: AuthorizationPolicy ns/ap: spec.selector.matchLabels["app*"]: wildcard not allowed in label key match`,
      `${F}:8:16: error: AuthorizationPolicy ns/ap: spec.selector.matchLabels.version: wildcard not allowed in label value match`,
      `${F}:9:7: error: AuthorizationPolicy ns/ap: spec.selector.matchLabels[""]: key must not be empty`,
      `${F}:10:13: error: AuthorizationPolicy ns/ap: spec.selector.matchLabels.long: must be at most 63 characters, found 64`,
    ],
  },
  {
    name: 'metadata labels follow Kubernetes syntax',
    yaml: `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  labels:\n    app.kubernetes.io/name: ok\n    "-bad": x\n    Example.com/x: y\n    good: "-bad-"\n    long: ${'a'.repeat(64)}\n`,
    expect: [
      `${F}:7:5: error: ServiceAccount default/sa: metadata.labels["-bad"]: ${invalid('-bad', `name part ${QUALIFIED_NAME_RULE}`)}`,
      `${F}:8:5: error: ServiceAccount default/sa: metadata.labels["Example.com/x"]: ${invalid('Example.com/x', `prefix part ${RFC1123_SUBDOMAIN_RULE}`)}`,
      `${F}:9:11: error: ServiceAccount default/sa: metadata.labels.good: ${invalid('-bad-', LABEL_VALUE_RULE)}`,
      `${F}:10:11: error: ServiceAccount default/sa: metadata.labels.long: ${invalid('a'.repeat(64), 'must be no more than 63 characters')}`,
    ],
  },
  // ---- PeerAuthentication ----
  {
    name: 'portLevelMtls needs a selector and valid ports',
    yaml: PA('  mtls: {mode: STRICT}\n  portLevelMtls:\n    0: {mode: PERMISSIVE}\n    "70000": {mode: PERMISSIVE}\n    8080: {mode: LAX}\n'),
    expect: [
      `${F}:7:5: error: PeerAuthentication ns/pa: spec.portLevelMtls["0"]: port must be between 1-65535`,
      `${F}:7:5: error: PeerAuthentication ns/pa: spec.portLevelMtls: portLevelMtls requires selector`,
      `${F}:8:5: error: PeerAuthentication ns/pa: spec.portLevelMtls["70000"]: port must be between 1-65535`,
      `${F}:9:18: error: PeerAuthentication ns/pa: spec.portLevelMtls["8080"].mode: expected one of UNSET, DISABLE, PERMISSIVE, STRICT; found "LAX"`,
    ],
  },
  // ---- RequestAuthentication ----
  {
    name: 'JWT rule: issuer required, jwks and jwksUri exclusive',
    yaml: RA('  jwtRules:\n  - jwksUri: https://example.com/jwks\n  - issuer: iss\n    jwksUri: https://example.com/jwks\n    jwks: \'{"keys": []}\'\n'),
    expect: [
      `${F}:6:5: error: RequestAuthentication ns/ra: spec.jwtRules[0].issuer: required`,
      `${F}:9:11: error: RequestAuthentication ns/ra: spec.jwtRules[1].jwks: only one of jwks or jwksUri can be set`,
    ],
  },
  {
    name: 'JWT rule: header names and timeouts',
    yaml: RA('  jwtRules:\n  - issuer: iss\n    timeout: 5 seconds\n    outputClaimToHeaders:\n    - {header: "x user", claim: sub}\n'),
    expect: [
      `${F}:7:14: error: RequestAuthentication ns/ra: spec.jwtRules[0].timeout: must be a duration such as "5s" or "100ms", found "5 seconds"`,
      `${F}:9:16: error: RequestAuthentication ns/ra: spec.jwtRules[0].outputClaimToHeaders[0].header: must be an HTTP header name (letters, digits, '-' and '_'), found "x user"`,
    ],
  },
  {
    name: 'JWT rule: inline JWKS that does not parse (istiod webhook check: a warning)',
    yaml: RA('  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: wp}]\n  jwtRules:\n  - issuer: iss\n    jwks: "not json"\n  - issuer: iss2\n    jwks: \'{"kty": "RSA"}\'\n'),
    expect: [
      `${F}:8:11: warning: RequestAuthentication ns/ra: spec.jwtRules[0].jwks: jwks parse error: Unexpected token 'o', "not json" is not valid JSON`,
      `${F}:10:11: warning: RequestAuthentication ns/ra: spec.jwtRules[1].jwks: jwks parse error: expected a JSON object with a "keys" list`,
    ],
  },
  {
    name: 'RequestAuthentication without targetRefs: not enforced in ambient mode (a warning)',
    yaml: RA('  selector: {matchLabels: {app: api}}\n  jwtRules:\n  - issuer: iss\n'),
    expect: [
      `${F}:5:13: warning: RequestAuthentication ns/ra: spec.selector: in ambient mode only waypoints enforce a RequestAuthentication, through targetRefs (a Gateway or a Service bound to a waypoint); one with a selector or none applies to sidecars and is not enforced`,
    ],
  },
  // ---- metadata ----
  {
    name: 'metadata.name required',
    yaml: 'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  namespace: ns\n',
    expect: [`${F}:4:3: error: ServiceAccount ns/<unnamed>: metadata.name: required`],
  },
  {
    name: 'metadata required',
    yaml: 'apiVersion: v1\nkind: ServiceAccount\n',
    expect: [`${F}:1:1: error: ServiceAccount default/<unnamed>: metadata: required`],
  },
  {
    name: 'label keys: every rule a key breaks is reported, as kube-apiserver does',
    yaml: `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  labels:\n    "${'k'.repeat(64)}-": x\n    a/b/c: y\n`,
    expect: [
      `${F}:6:5: error: ServiceAccount default/sa: metadata.labels.${'k'.repeat(64)}-: ${invalid(`${'k'.repeat(64)}-`, 'name part must be no more than 63 characters')}`,
      `${F}:6:5: error: ServiceAccount default/sa: metadata.labels.${'k'.repeat(64)}-: ${invalid(`${'k'.repeat(64)}-`, `name part ${QUALIFIED_NAME_RULE}`)}`,
      `${F}:7:5: error: ServiceAccount default/sa: metadata.labels["a/b/c"]: ${invalid('a/b/c', `a qualified name ${QUALIFIED_NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`)}`,
    ],
  },
  {
    name: 'annotations: qualified-name keys (any case) and at most 256 KiB in all',
    yaml: `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  annotations:\n    Example.COM/Note: fine\n    "bad key": x\n    big: "${'x'.repeat(262144 - 'big'.length - 'Example.COM/Note'.length - 'fine'.length)}"\n`,
    expect: [
      `${F}:6:5: error: ServiceAccount default/sa: metadata.annotations: Too long: may not be more than 262144 bytes`,
      `${F}:7:5: error: ServiceAccount default/sa: metadata.annotations["bad key"]: ${invalid('bad key', `name part ${QUALIFIED_NAME_RULE}`)}`,
    ],
  },
  {
    name: 'annotations of exactly 256 KiB are accepted',
    yaml: `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  annotations:\n    big: "${'x'.repeat(262144 - 3)}"\n`,
    expect: [],
  },
  {
    name: 'Deployment template annotations are bounded too',
    yaml:
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata:\n      labels: {app: d}\n      annotations: {big: "${'y'.repeat(262144)}"}\n    spec: {containers: [{name: c}]}\n`,
    expect: [`${F}:9:20: error: Deployment default/d: spec.template.metadata.annotations: Too long: may not be more than 262144 bytes`],
  },
  {
    name: 'Deployment replicas: not negative, and no more than Ambit holds',
    yaml:
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 100000000\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec: {containers: [{name: c}]}\n---\n' +
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: e}\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: e}}\n  template:\n    metadata: {labels: {app: e}}\n    spec: {containers: [{name: c}]}\n',
    expect: [
      `${F}:5:13: error: Deployment default/d: spec.replicas: ${invalid(100000000, 'must be less than or equal to 10000')}`,
      `${F}:15:13: error: Deployment default/e: spec.replicas: ${invalid(-1, 'must be greater than or equal to 0')}`,
    ],
  },
  {
    name: 'names: too long and invalid are two problems; an empty name is required',
    yaml: `apiVersion: v1\nkind: Pod\nmetadata: {name: "${'p'.repeat(253)}-"}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ""}\n`,
    expect: [
      `${F}:3:18: error: Pod default/${'p'.repeat(253)}-: metadata.name: ${invalid(`${'p'.repeat(253)}-`, 'must be no more than 253 characters')}`,
      `${F}:3:18: error: Pod default/${'p'.repeat(253)}-: metadata.name: ${invalid(`${'p'.repeat(253)}-`, RFC1123_SUBDOMAIN_RULE)}`,
      `${F}:8:18: error: ServiceAccount default/<unnamed>: metadata.name: Required value: name or generateName is required`,
    ],
  },
  {
    name: 'a missing spec is required, not a crash of the rules that read it (found by the loader fuzz)',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n',
    expect: [`${F}:1:1: error: DestinationRule default/dr: spec: required`, `${F}:5:1: error: Service default/s: spec: required`],
  },
  {
    name: 'names follow the rule of their kind',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: 1svc, namespace: Prod}\nspec: {clusterIP: None}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\nspec: {containers: [{name: c}]}\n',
    expect: [
      `${F}:3:18: error: Namespace a.b: metadata.name: ${invalid('a.b', 'must not contain dots')}`,
      `${F}:7:18: error: Service Prod/1svc: metadata.name: ${invalid('1svc', RFC1035_LABEL_RULE)}`,
      `${F}:7:35: error: Service Prod/1svc: metadata.namespace: ${invalid('Prod', RFC1123_LABEL_RULE)}`,
      `${F}:12:18: error: Pod default/Web_1: metadata.name: ${invalid('Web_1', RFC1123_SUBDOMAIN_RULE)}`,
    ],
  },
  // ---- core kinds ----
  {
    name: 'Service ports: range, names, required',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: 0\n    name: http\n  - port: 8080\n    targetPort: 70000\n---\napiVersion: v1\nkind: Service\nmetadata: {name: empty}\nspec:\n  selector: {app: x}\n',
    expect: [
      `${F}:6:11: error: Service default/web: spec.ports[0].port: must be a port number 1-65535, found number 0`,
      `${F}:8:5: error: Service default/web: spec.ports[1].name: required when the Service has more than one port`,
      `${F}:9:17: error: Service default/web: spec.ports[1].targetPort: must be a port number 1-65535, found number 70000`,
      `${F}:15:3: error: Service default/empty: spec.ports: required (at least one port) unless clusterIP is "None"`,
    ],
  },
  {
    name: 'Pod: containers required, container name required, containerPort range',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - image: busybox\n    ports:\n    - containerPort: 65536\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers: []\n',
    expect: [
      `${F}:6:5: error: Pod default/p: spec.containers[0].name: required`,
      `${F}:8:22: error: Pod default/p: spec.containers[0].ports[0].containerPort: must be a port number 1-65535, found number 65536`,
      `${F}:14:15: error: Pod default/q: spec.containers: must have at least one container`,
    ],
  },
  {
    name: 'Deployment: selector and template required; selector must match template',
    yaml: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 1\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: e}\nspec:\n  selector: {matchLabels: {app: e}}\n  template:\n    metadata: {labels: {app: f}}\n    spec: {containers: [{name: c}]}\n',
    expect: [
      `${F}:5:3: error: Deployment default/d: spec.selector: required`,
      `${F}:5:3: error: Deployment default/d: spec.template: required`,
      `${F}:13:24: error: Deployment default/e: spec.template.metadata.labels: selector does not match template labels (missing app=e)`,
    ],
  },
  // ---- Gateway API ----
  {
    name: 'Gateway: gatewayClassName and listeners required',
    yaml: 'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: ns}\nspec:\n  addresses: []\n',
    expect: [
      `${F}:5:3: error: Gateway ns/waypoint: spec.gatewayClassName: required`,
      `${F}:5:3: error: Gateway ns/waypoint: spec.listeners: required`,
    ],
  },
  {
    name: 'Gateway listeners: port range, unique names, protocol',
    yaml: 'apiVersion: gateway.networking.k8s.io/v1beta1\nkind: Gateway\nmetadata: {name: gw, namespace: ns}\nspec:\n  gatewayClassName: istio-waypoint\n  listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}\n  - {name: mesh, port: 0, protocol: "not a protocol"}\n',
    expect: [
      `${F}:8:12: error: Gateway ns/gw: spec.listeners[1].name: Listener name must be unique within the Gateway (also listeners[0])`,
      `${F}:8:24: error: Gateway ns/gw: spec.listeners[1].port: must be a port number 1-65535, found number 0`,
      `${F}:8:37: error: Gateway ns/gw: spec.listeners[1].protocol: must be a protocol such as "HTTP", "HBONE" or "example.com/Custom", found "not a protocol"`,
    ],
  },
  {
    name: 'HTTPRoute: parentRef name, Service backend port, path and duration syntax',
    yaml: 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\nspec:\n  parentRefs:\n  - {group: "", kind: Service}\n  rules:\n  - matches:\n    - path: {type: PathPrefix, value: api}\n    backendRefs:\n    - name: reviews\n    timeouts: {request: 1.5s}\n',
    expect: [
      `${F}:6:5: error: HTTPRoute ns/r: spec.parentRefs[0].name: required`,
      `${F}:9:39: error: HTTPRoute ns/r: spec.rules[0].matches[0].path.value: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']`,
      `${F}:11:7: error: HTTPRoute ns/r: spec.rules[0].backendRefs[0]: Must have port for Service reference`,
      `${F}:12:25: error: HTTPRoute ns/r: spec.rules[0].timeouts.request: must be a duration such as "10s" or "1h30m", found "1.5s"`,
    ],
  },
  {
    name: 'GRPCRoute: method match needs service or method',
    yaml: 'apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: ns}\nspec:\n  rules:\n  - matches:\n    - method: {type: Exact}\n    backendRefs: [{name: svc, port: 70000}]\n',
    expect: [
      `${F}:7:15: error: GRPCRoute ns/g: spec.rules[0].matches[0].method: One or both of 'service' or 'method' must be specified`,
      `${F}:8:37: error: GRPCRoute ns/g: spec.rules[0].backendRefs[0].port: must be a port number 1-65535, found number 70000`,
    ],
  },
  // ---- networking.istio.io / telemetry ----
  {
    name: 'DestinationRule host required; VirtualService route destination host required',
    yaml: 'apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: dr}\nspec:\n  subsets: [{name: v1}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {subset: v1}\n  - timeout: 5s\n',
    expect: [
      `${F}:5:3: error: DestinationRule default/dr: spec.host: required`,
      `${F}:14:20: error: VirtualService default/vs: spec.http[0].route[0].destination.host: required`,
      `${F}:15:5: error: VirtualService default/vs: spec.http[1]: HTTP route, redirect or direct response is required`,
    ],
  },
  {
    name: 'Telemetry: selector and targetRefs exclusive, sampling percentage range, metric names',
    yaml: 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t, namespace: ns}\nspec:\n  selector: {matchLabels: {app: a}}\n  targetRefs: [{kind: Gateway, name: w}]\n  tracing: [{randomSamplingPercentage: 101}]\n  metrics:\n  - overrides: [{match: {metric: REQUESTS}}]\n',
    expect: [
      `${F}:6:15: error: Telemetry ns/t: spec.targetRefs: only one of targetRefs or selector can be set`,
      `${F}:7:40: error: Telemetry ns/t: spec.tracing[0].randomSamplingPercentage: must be at most 100, found number 101`,
      `${F}:9:34: error: Telemetry ns/t: spec.metrics[0].overrides[0].match.metric: expected one of ALL_METRICS, REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE, TCP_OPENED_CONNECTIONS, TCP_CLOSED_CONNECTIONS, TCP_SENT_BYTES, TCP_RECEIVED_BYTES, GRPC_REQUEST_MESSAGES, GRPC_RESPONSE_MESSAGES; found "REQUESTS"`,
    ],
  },
  // ---- warnings: valid objects that are probably wrong ----
  {
    name: 'DENY with only HTTP attributes (istiod warning) and selector without labels',
    yaml: AP('  selector: {}\n  action: DENY\n  rules:\n  - to: [{operation: {paths: ["/admin"]}}]\n  - to: [{operation: {ports: ["8080"], paths: ["/x"]}}]\n'),
    expect: [
      `${F}:5:13: warning: AuthorizationPolicy ns/ap: spec.selector: workload selector specified without labels`,
      `${F}:8:5: warning: AuthorizationPolicy ns/ap: spec.rules[0]: configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port`,
    ],
  },
  {
    // kube-apiserver's strict decoding: a misspelt selector would otherwise make the policy namespace-wide.
    name: 'unknown (misspelt) fields are errors, at the misspelt key',
    yaml: AP('  selecter:\n    matchLabels: {app: a}\n  rules:\n  - from:\n    - source: {principal: [x]}\n'),
    expect: [
      `${F}:5:3: error: AuthorizationPolicy ns/ap: unknown field "spec.selecter"`,
      `${F}:9:16: error: AuthorizationPolicy ns/ap: unknown field "spec.rules[0].from[0].source.principal"`,
    ],
  },
  {
    name: 'PeerAuthentication DISABLE in ambient',
    yaml: PA('  mtls:\n    mode: DISABLE\n'),
    expect: [`${F}:6:11: warning: PeerAuthentication ns/pa: spec.mtls.mode: DISABLE mode is not supported in ambient mode; it is treated as PERMISSIVE`],
  },
  // ---- documents that are not objects Ambit knows ----
  {
    // kubectl's REST mapping error; a kind the registry serves (ConfigMap) is no issue even if the mesh ignores it.
    name: 'an apiVersion/kind the registry does not serve is an error',
    yaml: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: ns}\n---\napiVersion: security.istio.io/v2\nkind: AuthorizationPolicy\nmetadata: {name: x}\n',
    expect: [
      `${F}:5:1: error: resource mapping not found for name: "x" namespace: "" from "${F}": no matches for kind "AuthorizationPolicy" in version "security.istio.io/v2"\nensure CRDs are installed first`,
    ],
  },
  {
    name: 'apiVersion and kind required; a scalar document is not an object',
    yaml: 'metadata: {name: x}\n---\njust a string\n',
    expect: [
      `${F}:1:1: error: apiVersion: required`,
      `${F}:1:1: error: kind: required`,
      `${F}:3:1: error: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found "just a string"`,
    ],
  },
];

describe('validation rules through the loader', () => {
  for (const c of cases) {
    it(c.name, () => {
      const result = parseText(c.yaml, F);
      assert.deepEqual(result.issues.map(formatIssue), c.expect);
      const hasError = c.expect.some((e) => e.includes(': error: '));
      if (hasError) assert.equal(result.objects.length, 0, 'an object with errors must not be loaded');
    });
  }
});
