// The API server driven by the real kubectl binaries on this machine (the Cloud SDK dispatcher picks the one matching
// the server's minor version; the versioned ones cover 1.27's OpenAPI v2 path and 1.30+'s aggregated discovery):
// what the seed guides and Istio users type must work as against kube-apiserver, with its messages.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createApiCertificates, kubeconfigFor } from '../../src/apiserver/certificates.js';
import { ApiServer } from '../../src/apiserver/server.js';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';

const VERSIONED = '/usr/lib/google-cloud-sdk/bin';
const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('kubectl against the API server', { skip: KUBECTL ? false : 'kubectl is not installed (the suite installs it where it can; see .ci/run)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-kubectl-'));
  const store = new ResourceStore();
  let server: ApiServer;
  let kubeconfig: string;

  const kubectl = (args: string[], input?: string, binary = KUBECTL!): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(binary, args, { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache') }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) ?? 1 : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin!.end(input);
    });
  const ok = async (args: string[], input?: string, binary?: string) => {
    const r = await kubectl(args, input, binary);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const get = (group: string, kind: string, ns: string | undefined, name: string) => store.getObject(group, kind, ns, name);

  before(async () => {
    const certs = await createApiCertificates(['127.0.0.1'], { admin: { user: 'kubernetes-admin', groups: ['system:masters'] } });
    server = new ApiServer({ store, tls: { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca } });
    const port = await server.listen();
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, stringify(kubeconfigFor('ambit-test', `https://127.0.0.1:${port}`, certs.ca, certs.clients.admin!)));
    writeFileSync(join(dir, 'anonymous'), stringify({ ...kubeconfigFor('anon', `https://127.0.0.1:${port}`, certs.ca, certs.clients.admin!), users: [{ name: 'anon', user: { token: 'not-a-token' } }] }));
    for (const ns of ['default', 'istio-system']) store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } } as KubeObject, true);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the version the dispatcher picks a kubectl by, and refuses a token it did not issue', async () => {
    const v = JSON.parse(await ok(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string; minor: string } };
    assert.match(v.serverVersion.gitVersion, /^v1\.33\./);
    const anon = await kubectl(['get', 'pods', '--kubeconfig', join(dir, 'anonymous')], '');
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /error: You must be logged in to the server \(the server has asked for the client to provide credentials\)/);
  });

  it('applies, re-applies (unchanged), changes (strategic merge) and deletes built-in kinds', async () => {
    const deployment = (image: string, env: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ${image}
        command: [sleep, infinity]
        env: [${env}]
`;
    assert.match(await ok(['apply', '-f', '-'], deployment('a:1', '{name: A, value: "1"}, {name: B, value: "2"}')), /deployment.apps\/web created/);
    assert.match(await ok(['apply', '-f', '-'], deployment('a:1', '{name: A, value: "1"}, {name: B, value: "2"}')), /deployment.apps\/web unchanged/);
    assert.match(await ok(['apply', '-f', '-'], deployment('a:2', '{name: A, value: "1"}')), /deployment.apps\/web configured/);
    const d = get("apps", "Deployment", "default", "web") as unknown as { spec: { template: { spec: { containers: { image: string; env: { name: string }[]; command: string[] }[] } } }; metadata: { generation: number } };
    const c = d.spec.template.spec.containers[0]!;
    assert.equal(c.image, 'a:2');
    assert.deepEqual(c.env.map((e) => e.name), ['A'], 'the env var dropped from the file is removed by the strategic patch');
    assert.deepEqual(c.command, ['sleep', 'infinity']);
    assert.equal(d.metadata.generation, 2);
    assert.match(await ok(['scale', 'deployment', 'web', '--replicas=3']), /deployment.apps\/web scaled/);
    assert.equal((get('apps', 'Deployment', 'default', 'web')!.spec as { replicas: number }).replicas, 3);
    assert.match(await ok(['get', 'deploy', 'web']), /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\nweb\s+0\/3\s+0\s+0\s+\d+s\n$/);
    assert.match(await ok(['delete', 'deployment', 'web']), /deployment.apps "web" deleted/);
    assert.equal(get('apps', 'Deployment', 'default', 'web'), undefined);
  });

  it('labels a namespace into ambient, as the guides do, and back out', async () => {
    store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'production' }, status: { phase: 'Active' } } as KubeObject, true);
    assert.match(await ok(['label', 'namespace', 'production', 'istio.io/dataplane-mode=ambient']), /namespace\/production labeled/);
    assert.equal(get('', 'Namespace', undefined, 'production')!.metadata.labels?.['istio.io/dataplane-mode'], 'ambient');
    assert.match(await ok(['get', 'namespace', 'production', '-o', 'yaml']), /istio\.io\/dataplane-mode: ambient/);
    assert.match(await ok(['label', 'namespace', 'production', 'istio.io/dataplane-mode-']), /namespace\/production unlabeled/);
    assert.equal(get('', 'Namespace', undefined, 'production')!.metadata.labels?.['istio.io/dataplane-mode'], undefined);
  });

  it('serves Istio and Gateway API kinds with their short names, printer columns and kube error texts', async () => {
    const policy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-frontend, namespace: default}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: [frontend]}}]}]
`;
    assert.match(await ok(['apply', '-f', '-'], policy), /authorizationpolicy.security.istio.io\/deny-frontend created/);
    assert.match(await ok(['get', 'ap']), /^NAME\s+ACTION\s+AGE\ndeny-frontend\s+DENY\s+\d+s\n$/);
    const gateway = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: default, labels: {istio.io/waypoint-for: service}}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
`;
    assert.match(await ok(['apply', '-f', '-'], gateway), /gateway.gateway.networking.k8s.io\/waypoint created/);
    // Plain `gateway` is the Gateway API's (the first group in discovery order), as the guides expect.
    assert.match(await ok(['get', 'gateway', '-l', 'istio.io/waypoint-for']), /^NAME\s+CLASS\s+ADDRESS\s+PROGRAMMED\s+AGE\nwaypoint\s+istio-waypoint\s+\d+s\n$/);
    assert.match(await ok(['get', 'gtw', '-l', 'istio.io/waypoint-for=workload']), /^$/);
    const missing = await kubectl(['get', 'ap', 'nope']);
    assert.equal(missing.stderr.trim(), 'Error from server (NotFound): authorizationpolicies.security.istio.io "nope" not found');
    const resources = await ok(['api-resources']);
    for (const line of [/^authorizationpolicies\s+ap\s+security\.istio\.io\/v1\s+true\s+AuthorizationPolicy$/m, /^gateways\s+gtw\s+gateway\.networking\.k8s\.io\/v1\s+true\s+Gateway$/m, /^gateways\s+gw\s+networking\.istio\.io\/v1\s+true\s+Gateway$/m]) {
      assert.match(resources, line);
    }
    assert.match(await ok(['delete', '-f', '-'], policy), /authorizationpolicy.security.istio.io "deny-frontend" deleted/);
  });

  it('patches with every patch type kubectl sends', async () => {
    store.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'default' }, data: { a: '1', b: '2' } } as KubeObject);
    await ok(['patch', 'configmap', 'cfg', '--type=merge', '-p', '{"data":{"a":null,"c":"3"}}']);
    assert.deepEqual(get('', 'ConfigMap', 'default', 'cfg')!.data, { b: '2', c: '3' });
    await ok(['patch', 'configmap', 'cfg', '--type=json', '-p', '[{"op":"replace","path":"/data/b","value":"two"}]']);
    assert.deepEqual(get('', 'ConfigMap', 'default', 'cfg')!.data, { b: 'two', c: '3' });
    const failed = await kubectl(['patch', 'configmap', 'cfg', '--type=json', '-p', '[{"op":"test","path":"/data/b","value":"2"}]']);
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /the server rejected our request due to an error in our request/);
    await ok(['patch', 'configmap', 'cfg', '-p', '{"metadata":{"labels":{"x":"y"}}}']);
    assert.deepEqual(get('', 'ConfigMap', 'default', 'cfg')!.metadata.labels, { x: 'y' });
  });

  it('streams changes to `kubectl get -w` from the list it printed', async () => {
    store.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'watched' }, status: { phase: 'Active' } } as KubeObject, true);
    store.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'listed', namespace: 'watched' }, data: {} } as KubeObject);
    const child = spawn(KUBECTL!, ['get', 'configmaps', '-n', 'watched', '-w'], { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache') } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    try {
      const seen = async (pattern: RegExp) => {
        for (let i = 0; i < 200 && !pattern.test(out); i++) await new Promise((r) => setTimeout(r, 50));
        assert.match(out, pattern);
      };
      await seen(/^NAME\s+DATA\s+AGE\nlisted\s+0\s+\d+s$/m);
      store.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first', namespace: 'watched' }, data: { a: '1' } } as KubeObject);
      await seen(/^first\s+1\s+\d+s$/m);
      store.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first', namespace: 'watched' }, data: { a: '1', b: '2' } } as KubeObject);
      await seen(/^first\s+2\s+\d+s$/m);
      store.remove('Namespace', undefined, 'watched');
      store.removeObject('', 'ConfigMap', 'watched', 'listed');
      await seen(/^listed\s+0\s+\d+s\n(.*\n)*listed\s+0\s+\d+s$/m);
    } finally {
      child.kill();
    }
  });

  it('installs a CRD as the guides install the Gateway API, waits for it and serves its custom resources', async () => {
    const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wdg], listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    additionalPrinterColumns: [{name: Size, type: string, jsonPath: .spec.size}]
    subresources: {status: {}}
status: {acceptedNames: {kind: "", plural: ""}, conditions: null, storedVersions: null}
`;
    assert.match(await ok(['apply', '-f', '-'], crd), /customresourcedefinition.apiextensions.k8s.io\/widgets.example.com created/);
    assert.match(await ok(['wait', '--for', 'condition=established', 'crd/widgets.example.com', '--timeout=20s']), /condition met/);
    assert.match(await ok(['apply', '-f', '-'], 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: big}\n'), /widget.example.com\/w1 created/);
    assert.match(await ok(['get', 'wdg']), /^NAME\s+SIZE\nw1\s+big\n$/);
    await ok(['delete', 'crd', 'widgets.example.com']);
    assert.equal(get('example.com', 'Widget', 'default', 'w1'), undefined, "a CRD's custom resources go with it");
  });

  it('explains built-in kinds from their schemas, and custom ones once their CRD is stored', async () => {
    const ports = await ok(['explain', 'pods.spec.containers.ports']);
    assert.match(ports, /^FIELD: ports <\[\]ContainerPort>$/m);
    assert.match(ports, /^ {2}containerPort\t<integer> -required-\n {4}Number of port to expose on the pod's IP address\./m);
    assert.match(await ok(['explain', 'deployment.spec']), /^ {2}strategy\t<DeploymentStrategy>$/m);
    const missing = await kubectl(['explain', 'peerauthentication']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /GVK map\[group:security\.istio\.io kind:PeerAuthentication version:v1\] not found in OpenAPI schema/);
    await ok(['apply', '-f', '-'], `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: peerauthentications.security.istio.io}
spec:
  group: security.istio.io
  names: {kind: PeerAuthentication, plural: peerauthentications, singular: peerauthentication, listKind: PeerAuthenticationList}
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
            description: Peer authentication configuration for workloads.
            type: object
            properties:
              mtls: {type: object, description: Mutual TLS settings for workload., properties: {mode: {type: string, description: Defines the mTLS mode used for peer authentication.}}}
`);
    const explained = await ok(['explain', 'peerauthentication.spec.mtls']);
    assert.match(explained, /^ {2}mode\t<string>\n {4}Defines the mTLS mode used for peer authentication\.$/m);
    await ok(['delete', 'crd', 'peerauthentications.security.istio.io']);
  });

  for (const minor of [27, 30]) {
    const binary = join(VERSIONED, `kubectl.1.${minor}`);
    it(`kubectl 1.${minor} applies and lists (its own discovery and OpenAPI requests)`, { skip: existsSync(binary) ? false : `${binary} is not installed` }, async () => {
      const name = `cm-${minor}`;
      assert.match(await ok(['apply', '-f', '-'], `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {k: v}\n`, binary), new RegExp(`configmap/${name} created`));
      // An update is a strategic merge patch kubectl computes from its compiled-in types, OpenAPI v3 or not.
      assert.match(await ok(['apply', '-f', '-'], `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {k: w}\n`, binary), new RegExp(`configmap/${name} configured`));
      assert.match(await ok(['get', 'configmap', name], undefined, binary), new RegExp(`^NAME\\s+DATA\\s+AGE\\n${name}\\s+1\\s+\\d+s\\n$`));
      assert.match(await ok(['delete', 'configmap', name], undefined, binary), new RegExp(`configmap "${name}" deleted`));
    });
  }
});
