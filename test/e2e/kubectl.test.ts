// The seed guides' kubectl commands, verbatim, against a local cluster (2 nodes): `ambit up` sets the context, the
// ztunnel pods are found by label in istio-system with their logs and an exec into them, labelling a namespace
// captures its running pods (Istio's redirection annotation appears), applying and deleting a policy with kubectl
// changes enforcement, waypoint Gateways are found by label, each ztunnel pod's istio-token is what TokenReview
// says it is (and is written anew for a replaced pod), and `kubectl get -w` follows a pod.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FETCH, eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster } from './mesh-harness.js';

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-2
  containers:
  - name: web
    command: [ambit-echo, --http-port, "8080"]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec:
  nodeName: node-1
  containers:
  - {name: main, command: [sleep, infinity]}
`;

const DENY_ALL = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{}]
`;

describe('kubectl, as the guides use it', { skip: KUBECTL ? false : 'kubectl is not installed', timeout: 420_000 }, () => {
  const c = new MeshCluster();
  let hostBefore: ReturnType<typeof hostSnapshot> | undefined;

  const kubectl = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(KUBECTL!, args, { env: c.env, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(input ?? '');
    });
  const ok = async (args: string[], input?: string) => {
    const r = await kubectl(args, input);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')} exited ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const fetchWeb = () => c.exec('shop/client', FETCH, 'http://web.shop/');

  before(async () => {
    hostBefore = hostSnapshot();
    const up = await c.ok(['up', '--nodes', '2', '-f', c.manifest('app.yaml', APP)]);
    c.recordNetns();
    assert.match(up, new RegExp(`Set kubectl context to "ambit-${c.name}"`));
  });
  after(async () => {
    await c.destroy();
    if (hostBefore) assert.deepEqual(hostSnapshot(), hostBefore);
  });

  it('finds ztunnel by label in istio-system, one per node, owned by its DaemonSet', async () => {
    const out = await eventually('both ztunnel pods ready', async () => {
      const text = await ok(['get', 'pods', '-n', 'istio-system', '-l', 'app=ztunnel']);
      return (text.match(/^ztunnel-\S+\s+1\/1\s+Running\s+0\s+\S+$/gm) ?? []).length === 2 ? text : undefined;
    });
    assert.match(out, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/m);
    const pods = JSON.parse(await ok(['get', 'pods', '-n', 'istio-system', '-l', 'app=ztunnel', '-o', 'json'])) as { items: { spec: { nodeName: string }; metadata: { ownerReferences: { kind: string; name: string }[] } }[] };
    assert.deepEqual(pods.items.map((p) => p.spec.nodeName).sort(), ['node-1', 'node-2']);
    for (const p of pods.items) assert.deepEqual(p.metadata.ownerReferences.map((o) => `${o.kind}/${o.name}`), ['DaemonSet/ztunnel']);
    assert.match(await ok(['get', 'pods', '-n', 'istio-system', '-l', 'app=istiod']), /^istiod-\S+\s+1\/1\s+Running/m);
    assert.match(await ok(['get', 'nodes']), /^node-1\s+Ready\s+<none>\s+\S+\s+v1\.33\.0-ambit$/m);
  });

  it("shows every ztunnel's log by label and execs into one for its health endpoint", async () => {
    const logs = await ok(['logs', '-l', 'app=ztunnel', '-n', 'istio-system', '--tail=50']);
    assert.match(logs, /ztunnel/);
    const name = (await ok(['get', 'pod', '-n', 'istio-system', '-l', 'app=ztunnel', '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
    assert.match(name, /^ztunnel-/);
    // The guide's command: curl from inside the ztunnel pod (its node's network namespace) to 15020.
    const health = await kubectl(['exec', '-n', 'istio-system', name, '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'localhost:15020/healthz']);
    assert.deepEqual([health.code, health.stdout], [0, '200'], health.stderr);
    const failed = await kubectl(['exec', '-n', 'istio-system', name, '--', 'sh', '-c', 'exit 3']);
    assert.equal(failed.code, 3);
    assert.match(failed.stderr, /command terminated with exit code 3/);
  });

  it('labels a namespace into ambient: running pods are captured and marked, a DENY applied with kubectl is enforced', async () => {
    assert.match(await ok(['label', 'namespace', 'shop', 'istio.io/dataplane-mode=ambient']), /namespace\/shop labeled/);
    await eventually('web captured', async () => {
      const annotations = await ok(['get', 'pod', 'web', '-n', 'shop', '-o', 'jsonpath={.metadata.annotations}']);
      return annotations.includes('"ambient.istio.io/redirection":"enabled"') || undefined;
    });
    await eventually('web answers through the mesh', async () => ((await fetchWeb()).code === 0 ? true : undefined));
    assert.match(await ok(['apply', '-f', '-'], DENY_ALL), /authorizationpolicy.security.istio.io\/deny-web created/);
    await eventually('the DENY applied with kubectl refuses', async () => ((await fetchWeb()).code !== 0 ? true : undefined));
    assert.match(await ok(['get', 'ap', '-n', 'shop']), /^deny-web\s+DENY\s+\S+$/m);
    assert.match(await ok(['delete', '-f', '-'], DENY_ALL), /authorizationpolicy.security.istio.io "deny-web" deleted/);
    await eventually('allowed again once deleted', async () => ((await fetchWeb()).code === 0 ? true : undefined));
  });

  it('refuses a policy with a typo instead of applying it namespace-wide', async () => {
    const typo = DENY_ALL.replace('selector:', 'selectr:');
    const r = await kubectl(['apply', '-f', '-'], typo);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /strict decoding error: unknown field "spec\.selectr"/);
    assert.equal((await kubectl(['get', 'ap', 'deny-web', '-n', 'shop'])).code, 1, 'nothing was stored');
    assert.equal((await fetchWeb()).code, 0, 'and nothing is denied');
  });

  it("refuses names kube-apiserver refuses, for kinds the mesh does not read too, and the namespaces it never deletes", async () => {
    const r = await kubectl(['create', 'configmap', 'Bad_Name', '-n', 'shop']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /error: failed to create configmap: ConfigMap "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of/);
    const d = await kubectl(['delete', 'namespace', 'default']);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /Error from server \(Forbidden\): namespaces "default" is forbidden: this namespace may not be deleted/);
  });

  it('finds waypoint Gateways by label', async () => {
    await c.ok(['waypoint', 'apply', '-n', 'shop', '--for', 'service', '--wait']);
    assert.match(await ok(['get', 'gateway', '-n', 'shop', '-l', 'istio.io/waypoint-for']), /^waypoint\s+istio-waypoint\s+\S*\s+True\s+\S+$/m);
    assert.match(await ok(['get', 'pods', '-n', 'shop', '-l', 'gateway.networking.k8s.io/gateway-name=waypoint']), /^waypoint-\S+\s+1\/1\s+Running/m);
  });

  it('issues service account tokens (kubectl create token) that TokenReview authenticates, as istiod checks them', async () => {
    const token = (await ok(['create', 'token', 'default', '-n', 'shop', '--audience', 'istio-ca'])).trim();
    assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    const review = JSON.parse(await ok(['create', '-f', '-', '-o', 'json'], JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['istio-ca'] } }))) as {
      status: { authenticated: boolean; user: { username: string; groups: string[] }; audiences: string[] };
    };
    assert.equal(review.status.authenticated, true);
    assert.equal(review.status.user.username, 'system:serviceaccount:shop:default');
    assert.deepEqual(review.status.audiences, ['istio-ca']);
    const other = JSON.parse(await ok(['create', '-f', '-', '-o', 'json'], JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['another'] } }))) as { status: { authenticated: boolean } };
    assert.equal(other.status.authenticated, false);
  });

  it("describes a pod and a Deployment with the scheduler's, kubelet's and controller's events", async () => {
    const pod = await ok(['describe', 'pod', 'web', '-n', 'shop']);
    assert.match(pod, /Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned shop\/web to node-2/);
    assert.match(pod, /Normal\s+Created\s+\S+\s+kubelet\s+Created container: web/);
    assert.match(pod, /Normal\s+Started\s+\S+\s+kubelet\s+Started container web/);
    await ok(['create', 'deployment', 'hello', '-n', 'shop', '--image', 'none', '--replicas', '2', '--', 'sleep', 'infinity']);
    await ok(['scale', 'deployment', 'hello', '-n', 'shop', '--replicas', '1']);
    const described = await eventually('the scale-down event', async () => {
      const out = await ok(['describe', 'deployment', 'hello', '-n', 'shop']);
      return /Scaled down replica set hello-\S+ from 2 to 1/.test(out) ? out : undefined;
    });
    assert.match(described, /Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set hello-\S+ from 0 to 2/);
    const events = await ok(['get', 'events', '-n', 'shop', '--field-selector', 'involvedObject.kind=Deployment']);
    assert.match(events, /Normal\s+ScalingReplicaSet\s+deployment\/hello\s+Scaled down replica set/);
    await ok(['delete', 'deployment', 'hello', '-n', 'shop']);
  });

  it("gives each ztunnel pod its istio-token (service account ztunnel, audience istio-ca, bound to the pod and its node), written anew when the pod is replaced", async () => {
    assert.match(await ok(['get', 'serviceaccount', 'ztunnel', '-n', 'istio-system']), /^ztunnel\s/m);
    const ztunnelOn = async (node: string) => {
      const pods = JSON.parse(await ok(['get', 'pods', '-n', 'istio-system', '-l', 'app=ztunnel', '-o', 'json'])) as { items: { metadata: { name: string; uid: string }; spec: { nodeName: string; serviceAccountName: string } }[] };
      return pods.items.find((p) => p.spec.nodeName === node);
    };
    const tokenFile = join(c.stateDir, 'nodes', 'node-1', 'istio-token');
    const review = async (token: string) =>
      (JSON.parse(await ok(['create', '-f', '-', '-o', 'json'], JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['istio-ca'] } }))) as {
        status: { authenticated: boolean; error?: string; user?: { username: string; extra: Record<string, string[]> } };
      }).status;
    const pod = (await ztunnelOn('node-1'))!;
    assert.equal(pod.spec.serviceAccountName, 'ztunnel');
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    const status = await review(token);
    assert.equal(status.user?.username, 'system:serviceaccount:istio-system:ztunnel');
    assert.deepEqual(
      [status.user?.extra['authentication.kubernetes.io/pod-name'], status.user?.extra['authentication.kubernetes.io/pod-uid'], status.user?.extra['authentication.kubernetes.io/node-name']],
      [[pod.metadata.name], [pod.metadata.uid], ['node-1']],
    );
    // Deleted, the pod object is published again (another uid): the old token is void and the node gets a new one,
    // with which node-1's ztunnel keeps getting certificates (a pod started there now is served through the mesh).
    await ok(['delete', 'pod', '-n', 'istio-system', pod.metadata.name]);
    const replaced = await eventually('the ztunnel pod published again', async () => {
      const p = await ztunnelOn('node-1');
      return p && p.metadata.uid !== pod.metadata.uid ? p : undefined;
    });
    assert.match((await review(token)).error ?? '', /service account token has been invalidated|does not match service account pod ref claim/);
    await eventually('a token bound to the new pod', async () => ((await review(readFileSync(tokenFile, 'utf8').trim())).user?.extra['authentication.kubernetes.io/pod-uid']?.[0] === replaced.metadata.uid ? true : undefined));
    // shop is ambient (an earlier test labelled it); a service account new to node-1 makes its ztunnel ask the CA.
    await ok(['apply', '-f', '-'], `apiVersion: v1
kind: ServiceAccount
metadata: {name: late, namespace: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: late, namespace: shop}
spec:
  nodeName: node-1
  serviceAccountName: late
  containers:
  - {name: main, command: [sleep, infinity]}
`);
    await eventually('the new pod served through the mesh from node-1', async () => ((await c.exec('shop/late', FETCH, 'http://web.shop/')).code === 0 ? true : undefined), 60_000);
    assert.match(await c.ok(['logs', 'ztunnel', '--node', 'node-1']), /fetched certificate.*spiffe:\/\/cluster\.local\/ns\/shop\/sa\/late/);
  });

  it('follows a pod with get -w', async () => {
    const child = spawn(KUBECTL!, ['get', 'pods', '-n', 'shop', '-w'], { env: c.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    try {
      await eventually('the listing', async () => (/^client\s/m.test(out) ? true : undefined));
      await ok(['delete', 'pod', 'client', '-n', 'shop', '--wait=false']);
      await eventually('the deletion streamed', async () => ((out.match(/^client\s/gm) ?? []).length >= 2 ? true : undefined));
    } finally {
      child.kill();
    }
  });
});
