// The local cluster end to end: real namespaces, veths, nftables, processes, driven through the `ambit` CLI.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { call } from '../../src/common/rpc.js';
import { StateLayout } from '../../src/local/layout.js';
import { ECHO_SERVER, FETCH, LOOKUP, TCP_ROUND_TRIP, TestCluster, eventually, hostSnapshot } from './local-harness.js';

const NS = 'shop';

const APP = `
apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
  labels:
    istio.io/dataplane-mode: ambient
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: ${NS}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${NS}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: example/echo
        command: [node, -e, "${ECHO_SERVER}"]
        env:
        - {name: PORT, value: "8080"}
        - name: MY_POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: MY_NODE
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        - name: MY_SA
          valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}
        ports:
        - {name: http-web, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /, port: http-web}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${NS}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http-web, appProtocol: http}
---
apiVersion: v1
kind: Service
metadata: {name: web-headless, namespace: ${NS}}
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - {name: http, port: 8080}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      containers:
      - name: client
        command: [sleep, infinity]
`;

describe('local cluster: two nodes, services, DNS, lifecycle', () => {
  const c = new TestCluster();
  let hostBefore: ReturnType<typeof hostSnapshot>;
  let upOutput = '';

  before(async () => {
    hostBefore = hostSnapshot();
    upOutput = await c.ok(['up', '-f', c.manifest('app.yaml', APP)]);
    c.recordNetns();
  });
  after(async () => {
    await c.destroy();
    assert.deepEqual(hostSnapshot(), hostBefore, "the host's interfaces and nft tables must be untouched");
  });

  it('spreads the replicas over both nodes and reports them ready', async () => {
    assert.match(upOutput, /deployment\.apps\/web created/);
    assert.match(upOutput, /is ready/);
    const web = (await c.pods(NS)).filter((p) => p.labels.app === 'web');
    assert.equal(web.length, 2);
    assert.deepEqual(web.map((p) => p.node).sort(), ['node-1', 'node-2']);
    assert.ok(web.every((p) => p.ready && /^10\.244\.[12]\.\d+$/.test(p.ip)), JSON.stringify(web));
    assert.equal(web[0]!.ip.split('.')[2], web[0]!.node.slice(-1), 'pod IP comes from its node’s pod CIDR');
  });

  it('reaches pods on both nodes by pod IP, by VIP (named targetPort) and by every DNS form', async () => {
    const web = (await c.pods(NS)).filter((p) => p.labels.app === 'web');
    for (const p of web) {
      assert.equal((await c.ok(['exec', `${NS}/client`, '--', 'node', '-e', FETCH, `http://${p.ip}:8080/`])).trim(), p.name);
    }
    const svc = JSON.parse(await c.ok(['get', 'services', 'web', '-n', NS, '-o', 'json'])) as { spec: { clusterIP: string } };
    assert.match(svc.spec.clusterIP, /^10\.96\.\d+\.\d+$/);
    const names = web.map((p) => p.name).sort();
    const seen = new Set<string>();
    for (const url of [`http://${svc.spec.clusterIP}/`, 'http://web/', `http://web.${NS}/`, `http://web.${NS}.svc.cluster.local/`]) {
      const body = (await c.ok(['exec', `${NS}/client`, '--', 'node', '-e', FETCH, url])).trim();
      assert.ok(names.includes(body), `${url} answered by ${body}`);
      seen.add(body);
    }
    // numgen random over 2 endpoints: 12 more requests all hitting one pod has probability 2^-12.
    for (let i = 0; i < 12 && seen.size < 2; i++) seen.add((await c.ok(['exec', `${NS}/client`, '--', 'node', '-e', FETCH, 'http://web/'])).trim());
    assert.equal(seen.size, 2, 'the VIP balances over both endpoints');
    // A VIP port no Service declares is refused at once, like kube-proxy does.
    // A raw TCP round trip, not fetch: undici's handling of a connection closed before any answer is not reliable
    // enough to assert on (it may retry until its timeout, or settle nothing at all).
    const refused = await c.cli(['exec', `${NS}/client`, '--', 'node', '-e', TCP_ROUND_TRIP, svc.spec.clusterIP, '8080']);
    assert.equal(refused.code, 1);
    // The namespace is ambient: ztunnel accepts the app's connection first, then closes it when the VIP refuses.
    assert.match(refused.stderr, /ECONNREFUSED|ECONNRESET|closed/);
    const headless = JSON.parse(await c.ok(['exec', `${NS}/client`, '--', 'node', '-e', LOOKUP, 'web-headless']));
    assert.deepEqual(headless, web.map((p) => p.ip).sort());
    const missing = await c.cli(['exec', `${NS}/client`, '--', 'node', '-e', LOOKUP, 'nope.svc.cluster.local']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /ENOTFOUND/);
  });

  it("reaches a Service VIP from a node's own namespace, as on a Kubernetes node", async () => {
    const svc = JSON.parse(await c.ok(['get', 'services', 'web', '-n', NS, '-o', 'json'])) as { spec: { clusterIP: string } };
    const names = (await c.pods(NS)).filter((p) => p.labels.app === 'web').map((p) => p.name);
    for (const node of ['node-1', 'node-2']) {
      const netns = new StateLayout(c.stateDir).netns(node);
      const seen = new Set<string>();
      // One endpoint is on this node, one on the other: numgen random reaches both within 16 tries but with 2^-15.
      for (let i = 0; i < 16 && seen.size < 2; i++) {
        const r = spawnSync('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', FETCH, `http://${svc.spec.clusterIP}/`], { encoding: 'utf8', timeout: 15_000 });
        assert.equal(r.status, 0, `from ${node}: ${r.stderr}`);
        assert.ok(names.includes(r.stdout.trim()), `from ${node} answered by ${r.stdout}`);
        seen.add(r.stdout.trim());
      }
      assert.equal(seen.size, 2, `from ${node} both endpoints answer`);
    }
  });

  const manyPods = (replicas: number) => `
apiVersion: v1
kind: Namespace
metadata: {name: scale}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: many, namespace: scale}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: many}}
  template:
    metadata: {labels: {app: many}}
    spec:
      # No such service account: the pods are created but never started, so only the reconciler's own work is measured.
      serviceAccountName: missing
      containers: [{name: c, command: [sleep, infinity]}]
`;

  it('refuses a Deployment with more replicas than its nodes have pod addresses', async () => {
    try {
      const tooMany = await c.cli(['apply', '-f', c.manifest('too-many.yaml', manyPods(507))]);
      assert.equal(tooMany.code, 1);
      assert.match(
        tooMany.stderr,
        /The Deployment "many" is invalid: spec\.replicas: Invalid value: 507: must be less than or equal to 506, the pod addresses of this cluster's 2 node\(s\)/,
      );
      assert.equal(JSON.parse(await c.ok(['get', 'pods', '-n', 'scale', '-o', 'json'])).items.length, 0);
    } finally {
      await c.cli(['delete', 'namespace', 'scale']);
    }
  });

  it('keeps answering its socket while a Deployment scales up by hundreds of pods', async () => {
    const socket = new StateLayout(c.stateDir).socket;
    try {
      const REPLICAS = 400;
      let applied = false;
      const apply = c.cli(['apply', '-f', c.manifest('many.yaml', manyPods(REPLICAS))]).finally(() => (applied = true));
      // Answers while the apply is still in progress that show part of the pods prove the scale-up yields to the
      // event loop; a synchronous loop can only be seen before it (0 pods) or after it (all of them).
      const partial: number[] = [];
      const poll = async () => {
        while (!applied) {
          const { items } = await call<{ items: unknown[] }>(socket, 'GET', '/v1/resources?kind=pods&namespace=scale');
          if (!applied && items.length > 0 && items.length < REPLICAS) partial.push(items.length);
        }
      };
      await Promise.all([poll(), poll(), poll(), apply]);
      const r = await apply;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(partial.length > 0, 'no answer came while the pods were being created');
      assert.equal(JSON.parse(await c.ok(['get', 'pods', '-n', 'scale', '-o', 'json'])).items.length, REPLICAS);
    } finally {
      await c.cli(['delete', 'namespace', 'scale']);
    }
  });

  it('exec passes stdin through, gives the pod environment and returns the exit code', async () => {
    assert.equal(await c.ok(['exec', `${NS}/client`, '--', 'cat'], 'hello pod\n'), 'hello pod\n');
    const env = await c.ok(['exec', `${NS}/web`, '--', 'sh', '-c', 'echo $MY_POD_IP $MY_NODE $MY_SA $HOSTNAME; hostname; cat /etc/resolv.conf']);
    const web = (await c.pods(NS)).filter((p) => p.labels.app === 'web');
    const [ip, node, sa, host, uts] = env.split(/\s+/);
    const pod = web.find((p) => p.name === host)!;
    assert.ok(pod, `exec on a Deployment picks one of its pods: ${env}`);
    assert.deepEqual([ip, node, sa, uts], [pod.ip, pod.node, 'web', pod.name]);
    assert.match(env, new RegExp(`search ${NS}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local`));
    const r = await c.cli(['exec', `${NS}/client`, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
  });

  it("restarts a crashing container with back-off and keeps the previous run's log", async () => {
    await c.ok(['apply', '-f', c.manifest('crash.yaml', `
apiVersion: v1
kind: Pod
metadata: {name: crasher, namespace: ${NS}}
spec:
  containers:
  - name: main
    command: [sh, -c, 'echo "run at $(date +%s%N)"; exit 3']
`)]);
    try {
      // Between restarts the pod waits in back-off and is not ready. A container with no readiness probe counts as
      // ready for the few milliseconds it runs, exactly as the kubelet counts it, so wait for a back-off snapshot.
      await eventually('two restarts, waiting in back-off', async () =>
        (await c.pods(NS)).find((p) => p.name === 'crasher' && p.restarts >= 2 && !p.ready));
      await eventually('the table shows the back-off', async () => {
        const table = await c.ok(['get', 'pods', 'crasher', '-n', NS]);
        return /crasher\s+0\/1\s+(CrashLoopBackOff|Error)\s+[2-9]/.test(table) ? table : undefined;
      });
      // Each run has its own log, and the one before the last restart is kept (`-p`), as the kubelet keeps it. The
      // previous log is read first: a restart in between then still leaves two different runs.
      const runs = async (args: string[]) => (await c.ok(['logs', `${NS}/crasher`, ...args])).split('\n').filter((l) => l.startsWith('run at'));
      await eventually('one run in the log and the one before it in the previous log', async () => {
        const previous = await runs(['-p']);
        const current = await runs([]);
        return previous.length === 1 && current.length === 1 && previous[0] !== current[0];
      });
      // A restart may have just begun an empty log: the tail is taken once the run has written its line.
      await eventually('the last line of the current run', async () => ((await c.ok(['logs', `${NS}/crasher`, '--tail', '1'])).split('\n').filter(Boolean).length === 1 ? true : undefined));
    } finally {
      // `up` waits for every pod: a crash-looping one would hold up the next test.
      assert.match(await c.ok(['delete', 'pod', 'crasher', '-n', NS]), /pod "crasher" deleted/);
    }
  });

  it('readiness gates `up`, and `up` names what never gets ready', async () => {
    const start = Date.now();
    const out = await c.ok(['up', '-f', c.manifest('slow.yaml', `
apiVersion: v1
kind: Pod
metadata: {name: slow, namespace: ${NS}}
spec:
  containers:
  - name: main
    command: [sh, -c, 'sleep 3; PORT=9090 exec node -e "$0"', "${ECHO_SERVER}"]
    readinessProbe:
      tcpSocket: {port: 9090}
      periodSeconds: 1
`)]);
    assert.ok(Date.now() - start >= 3000, 'up returned before the readiness probe could pass');
    assert.match(out, /slow\s+1\/1\s+Running/);
    const never = await c.cli(['up', '--timeout', '3', '-f', c.manifest('never.yaml', `
apiVersion: v1
kind: Pod
metadata: {name: never, namespace: ${NS}}
spec:
  containers:
  - name: main
    command: [sleep, infinity]
    readinessProbe:
      httpGet: {path: /healthz, port: 8081}
      periodSeconds: 1
`)]);
    assert.equal(never.code, 1);
    assert.match(never.stderr, /pod shop\/never: Running \(Readiness probe failed: Get "http:\/\/10\.244\.\d+\.\d+:8081\/healthz": dial tcp .*connection refused/);
    await c.ok(['delete', 'pod', 'never', 'slow', '-n', NS]);
  });

  it('applies the valid objects of a file with errors and exits non-zero', async () => {
    const r = await c.cli(['apply', '-f', c.manifest('mixed.yaml', `
apiVersion: v1
kind: ConfigMap
metadata: {name: nope, namespace: ${NS}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/${NS}/sa/default]}
---
apiVersion: v1
kind: Service
metadata: {name: ghost, namespace: missing-ns}
spec:
  ports: [{port: 80}]
`)]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /authorizationpolicy\.security\.istio\.io\/allow-client created/);
    assert.match(r.stderr, /mixed\.yaml:\d+:\d+: error: .*namespaces "missing-ns" not found/);
    // A kind the mesh does not read is stored all the same, as the API stores it.
    assert.match(r.stdout, /^configmap\/nope created$/m);
    const stored = JSON.parse(await c.ok(['get', 'authorizationpolicies', '-n', NS, '-o', 'json'])) as { items: { metadata: { name: string } }[] };
    assert.deepEqual(stored.items.map((i) => i.metadata.name), ['allow-client']);
  });

  it('signs a service account token only for a pod whose volumes project one, for the containers that mount it', async () => {
    await c.ok(['apply', '-f', c.manifest('token.yaml', `
apiVersion: v1
kind: Pod
metadata: {name: proxy, namespace: ${NS}}
spec:
  serviceAccountName: web
  containers:
  - name: proxy
    command: [sleep, infinity]
    volumeMounts:
    - {name: istio-token, mountPath: /var/run/secrets/tokens}
  - name: helper
    command: [sleep, infinity]
  volumes:
  - name: istio-token
    projected:
      sources:
      - serviceAccountToken: {audience: istio-ca, expirationSeconds: 43200, path: istio-token}
`)]);
    await eventually('the proxy pod to be ready', async () => (await c.pods(NS)).find((p) => p.name === 'proxy' && p.ready));
    const uid = (JSON.parse(await c.ok(['get', 'pods', 'proxy', '-n', NS, '-o', 'json'])) as { metadata: { uid: string } }).metadata.uid;
    const token = (await c.ok(['exec', `${NS}/proxy`, '-c', 'proxy', '--', 'cat', '/var/run/secrets/tokens/istio-token'])).trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, any>;
    assert.deepEqual([claims.aud, claims.exp - claims.iat, claims.sub], [['istio-ca'], 43200, `system:serviceaccount:${NS}:web`]);
    assert.deepEqual(claims['kubernetes.io'].pod, { name: 'proxy', uid });
    // Only a container that mounts the volume sees the token, and it cannot write it (projected volumes are read-only).
    const noToken = 'test -e /var/run/secrets/tokens/istio-token && echo present || echo absent';
    assert.equal((await c.ok(['exec', `${NS}/proxy`, '-c', 'helper', '--', 'sh', '-c', noToken])).trim(), 'absent');
    const write = await c.cli(['exec', `${NS}/proxy`, '-c', 'proxy', '--', 'sh', '-c', 'echo x > /var/run/secrets/tokens/istio-token']);
    assert.match(write.stderr, /Read-only file system/);
    // An ordinary pod gets no token at all.
    const client = (await c.pods(NS)).find((p) => p.labels.app === 'client')!;
    assert.equal((await c.ok(['exec', `${NS}/client`, '--', 'sh', '-c', noToken])).trim(), 'absent');
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(`${c.stateDir}/pods/${NS}_proxy/sandbox/volumes`), ['istio-token']);
    assert.deepEqual(readdirSync(`${c.stateDir}/pods/${NS}_${client.name}/sandbox/volumes`), []);

    const refused = await c.cli(['apply', '-f', c.manifest('bad-token.yaml', `
apiVersion: v1
kind: Pod
metadata: {name: short, namespace: ${NS}}
spec:
  containers:
  - {name: c, command: [sleep, infinity]}
  volumes:
  - name: t
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 300}
---
apiVersion: v1
kind: Pod
metadata: {name: unmounted, namespace: ${NS}}
spec:
  containers:
  - name: c
    command: [sleep, infinity]
    volumeMounts:
    - {name: nope, mountPath: /x}
`)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /The Pod "short" is invalid: spec\.volumes\[0\]\.projected\.sources\[0\]\.serviceAccountToken\.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes/);
    assert.match(refused.stderr, /The Pod "unmounted" is invalid: spec\.containers\[0\]\.volumeMounts\[0\]\.name: Not found: "nope"/);
    await c.ok(['delete', 'pod', 'proxy', '-n', NS]);
  });

  it("keeps pods away from the cluster's secrets, other pods and the host's processes", async () => {
    await c.ok(['apply', '-f', c.manifest('sandbox.yaml', `
apiVersion: v1
kind: Pod
metadata: {name: keeper, namespace: ${NS}}
spec:
  containers:
  - name: keeper
    command: [sh, -c, 'echo pod-secret > /tmp/secret; exec sleep 7777']
---
apiVersion: v1
kind: Pod
metadata: {name: app-user, namespace: ${NS}}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000]}
  containers:
  - name: app
    command: [sleep, infinity]
    volumeMounts:
    - {name: scratch, mountPath: /var/run/scratch}
  volumes:
  - {name: scratch, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: must-not-root, namespace: ${NS}}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: app
    command: [sleep, infinity]
`)]);
    await eventually('the sandbox pods to run', async () => {
      const pods = await c.pods(NS);
      return ['keeper', 'app-user'].every((n) => pods.find((p) => p.name === n)?.ready);
    });
    const inPod = (pod: string, script: string) => c.cli(['exec', `${NS}/${pod}`, '--', 'sh', '-c', script]);
    // The cluster's state directory (CA key, token signing key, the ztunnels' tokens, other pods' files) is hidden,
    // also from a root pod.
    const secrets = [`${c.stateDir}/controlplane/ca/root-key.pem`, `${c.stateDir}/apiserver/sa-signer.key`, `${c.stateDir}/nodes/node-1/istio-token`];
    for (const file of secrets) {
      const r = await inPod('client', `cat ${file}`);
      assert.notEqual(r.code, 0, `a pod read ${file}`);
      assert.match(r.stderr, /No such file or directory/);
    }
    // The supervisor's socket cannot be reached.
    const sock = await inPod('client', `curl -sS --max-time 5 --unix-socket ${c.stateDir}/supervisor.sock http://ambit/v1/status`);
    assert.notEqual(sock.code, 0, sock.stdout);
    // Another pod's /tmp is its own, and the other pod's processes (and through /proc their files) are out of sight.
    assert.equal((await c.ok(['exec', `${NS}/keeper`, '--', 'cat', '/tmp/secret'])).trim(), 'pod-secret');
    assert.notEqual((await inPod('client', 'cat /tmp/secret')).code, 0);
    const { readdirSync, readFileSync } = await import('node:fs');
    const keeperPid = readdirSync('/proc').find((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\u00007777\u0000';
      } catch {
        return false;
      }
    });
    assert.ok(keeperPid, "the keeper's process runs on this machine");
    assert.notEqual((await inPod('client', `cat /proc/${keeperPid}/root/tmp/secret`)).code, 0);
    // A root pod has the default container capabilities only: it cannot unmount the mask, nor change its capture rules.
    assert.match((await c.ok(['exec', `${NS}/client`, '--', 'grep', 'CapEff', '/proc/self/status'])).trim(), /CapEff:\s+00000000a80425fb$/);
    assert.notEqual((await inPod('client', `umount ${c.stateDir}`)).code, 0);
    assert.notEqual((await inPod('client', 'nft list ruleset')).code, 0);
    // The machine's files are read-only to it, device nodes it makes are unusable, and the kernel's knobs stay put.
    const hostWrite = await inPod('client', 'touch /etc/ambit-sandbox-probe');
    assert.match(hostWrite.stderr, /Read-only file system/);
    assert.ok(!existsSync('/etc/ambit-sandbox-probe'));
    assert.notEqual((await inPod('client', 'mknod /tmp/zero c 1 5 && head -c1 /tmp/zero')).code, 0);
    assert.match((await inPod('client', 'echo 1 > /proc/sys/vm/drop_caches')).stderr, /Read-only file system/);
    assert.equal((await inPod('client', 'echo scratch > /tmp/f && cat /tmp/f')).stdout, 'scratch\n');
    // securityContext's user and groups; an emptyDir the user can write; the mesh root where Istio mounts it.
    assert.equal((await c.ok(['exec', `${NS}/app-user`, '--', 'sh', '-c', 'echo $(id -u) $(id -g) $(id -G)'])).trim(), '1000 3000 3000 4000');
    assert.equal((await c.ok(['exec', `${NS}/app-user`, '--', 'sh', '-c', 'echo ok > /var/run/scratch/f && cat /var/run/scratch/f'])).trim(), 'ok');
    assert.equal(await c.ok(['exec', `${NS}/app-user`, '--', 'cat', '/var/run/secrets/istio/root-cert.pem']), readFileSync(`${c.stateDir}/controlplane/ca/root-cert.pem`, 'utf8'));
    // runAsNonRoot with no user to run as: the kubelet's CreateContainerConfigError, and the container never starts.
    const pod = JSON.parse(await c.ok(['get', 'pods', 'must-not-root', '-n', NS, '-o', 'json'])) as {
      metadata: { uid: string };
      status: { containerStatuses: { state: { waiting?: { reason: string; message: string } } }[] };
    };
    assert.deepEqual(pod.status.containerStatuses[0]!.state.waiting, {
      reason: 'CreateContainerConfigError',
      message: `container has runAsNonRoot and image will run as root (pod: "must-not-root_${NS}(${pod.metadata.uid})", container: app)`,
    });
    await c.ok(['delete', 'pod', 'keeper', 'app-user', 'must-not-root', '-n', NS]);
  });

  it('deletes an object once all its owners are gone, as the garbage collector does', async () => {
    const gateways = ['a', 'b'].map((name) => `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${NS}}
spec:
  gatewayClassName: other
  listeners: [{name: http, port: 80, protocol: HTTP}]`);
    await c.ok(['apply', '-f', c.manifest('gateways.yaml', gateways.join('\n---'))]);
    const uid = async (name: string) => (JSON.parse(await c.ok(['get', 'gateways', name, '-n', NS, '-o', 'json'])) as { metadata: { uid: string } }).metadata.uid;
    const owner = async (name: string) => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name, uid: await uid(name) });
    const [a, b] = [await owner('a'), await owner('b')];
    const owned = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'owned', namespace: NS, ownerReferences: [a, b] } };
    await c.ok(['apply', '-f', c.manifest('owned.json', JSON.stringify(owned))]);
    const refs = async () => {
      const r = await c.cli(['get', 'serviceaccounts', 'owned', '-n', NS, '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as { metadata: { ownerReferences?: unknown[] } }).metadata.ownerReferences : undefined;
    };
    await c.ok(['delete', 'gateway', 'a', '-n', NS]);
    assert.deepEqual(await refs(), [b], 'one owner left: kept, without the reference to the gone one');
    await c.ok(['delete', 'gateway', 'b', '-n', NS]);
    assert.equal(await refs(), undefined, 'no owner left: deleted');
  });

  it('replaces pods when the template changes and deletes them (with their namespaces) on delete', async () => {
    const before = (await c.pods(NS)).filter((p) => p.labels.app === 'client');
    await c.ok(['apply', '-f', c.manifest('client2.yaml', `
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client, version: v2}}
    spec:
      containers:
      - name: client
        command: [sleep, infinity]
`)]);
    const replaced = await eventually('the client pod to be replaced', async () => {
      const now = (await c.pods(NS)).filter((p) => p.labels.app === 'client');
      return now.length === 1 && now[0]!.labels.version === 'v2' && now[0]!.ready ? now[0] : undefined;
    });
    assert.notEqual(replaced.name, before[0]!.name);
    const netnsBefore = (await c.ok(['status', '-o', 'json'])).length;
    assert.ok(netnsBefore > 0);
    const out = await c.ok(['delete', '-f', c.manifest('app.yaml', APP)]);
    assert.match(out, /namespace "shop" deleted/);
    assert.match(out, /deployment\.apps "web" deleted/);
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(`${c.stateDir}/netns`).sort(), ['fabric', 'node-1', 'node-2'], 'pod network namespaces are removed');
    assert.deepEqual(readdirSync(`${c.stateDir}/pods`), []);
    // What is left are the pods standing for the cluster's components (istiod, one ztunnel per node).
    const left = await c.ok(['get', 'pods', '-A']);
    assert.deepEqual(left.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['istio-system', 'istio-system', 'istio-system']);
  });
});
