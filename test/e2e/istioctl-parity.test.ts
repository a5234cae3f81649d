// istioctl's views against a running local cluster: ztunnel-config over each node's /config_dump (workloads,
// services, policies, certificates, and a connection held open while it is listed), proxy-status over the control
// plane's /debug/syncz, version, and analyze over the cluster's objects (with files layered on top). One cluster,
// two nodes, a client and a server pod, one policy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster, TCP_HOLD } from './mesh-harness.js';
import { TCP_ROUND_TRIP } from './local-harness.js';

const APP = `
apiVersion: v1
kind: Namespace
metadata: {name: mesh, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: mesh, labels: {app: server}}
spec:
  nodeName: node-2
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080", --tcp-port, "9090"]
    ports: [{name: tcp-echo, containerPort: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: mesh}
spec:
  selector: {app: server}
  ports: [{name: tcp-echo, port: 9090, targetPort: tcp-echo}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: mesh}
spec:
  nodeName: node-1
  containers:
  - {name: main, command: [sleep, infinity]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-mesh, namespace: mesh}
spec:
  selector: {matchLabels: {app: server}}
  rules: [{from: [{source: {namespaces: [mesh]}}]}]
`;

describe('istioctl parity against the running cluster', { timeout: 300_000 }, () => {
  const c = new MeshCluster();
  let hostBefore: ReturnType<typeof hostSnapshot> | undefined;

  before(async () => {
    hostBefore = hostSnapshot();
    await c.ok(['up', '--nodes', '2', '-f', c.manifest('app.yaml', APP)]);
  });
  after(async () => {
    await c.destroy();
    if (hostBefore) assert.deepEqual(hostSnapshot(), hostBefore);
  });

  it('ztunnel-config workload/service/policy/certificate read the running ztunnels, per node or merged', async () => {
    const workloads = await eventually('both pods in the ztunnels', async () => {
      const out = await c.ok(['ztunnel-config', 'workload', '--workload-namespace', 'mesh']);
      return /\nmesh +client +\S+ +node-1 +None +HBONE\n/.test(out) && /\nmesh +server +\S+ +node-2 +None +HBONE\n/.test(out) ? out : undefined;
    });
    assert.match(workloads, /^NAMESPACE POD NAME ADDRESS +NODE +WAYPOINT PROTOCOL\n/);
    assert.match(await c.ok(['ztunnel-config', 'service', '--service-namespace', 'mesh']), /\nmesh +server +10\.96\.\S+ +None +1\/1\n/);
    assert.match(await c.ok(['ztunnel-config', 'policy']), /\nmesh +allow-mesh +Allow +WorkloadSelector\n/);
    const json = JSON.parse(await c.ok(['ztunnel-config', 'policy', '-o', 'json', '--node', 'node-1'])) as { name: string }[];
    assert.deepEqual(json.map((p) => p.name), ['allow-mesh']);
    // Each node's ztunnel holds its own pods' certificates: node-1 the client's (default SA), merged also node-2's.
    const certs = await eventually('the client certificate', async () => {
      const out = await c.ok(['ztunnel-config', 'certificate', '--node', 'node-1']);
      return /spiffe:\/\/cluster\.local\/ns\/mesh\/sa\/default +Leaf +Available +true +[0-9a-f]+ +\S+Z +\S+Z/.test(out) ? out : undefined;
    });
    assert.match(certs, /^CERTIFICATE NAME +TYPE +STATUS +VALID CERT +SERIAL NUMBER +NOT AFTER +NOT BEFORE\n/);
    assert.match(certs, / Root +Available +true /);
    const bad = await c.cli(['ztunnel-config', 'workload', '--node', 'node-9']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /node "node-9" not found/);
  });

  it('ztunnel-config connections lists a connection while it is open, on both ends', async () => {
    const svc = await c.ok(['ztunnel-config', 'service', '-o', 'json', '--service-namespace', 'mesh']);
    const vip = ((JSON.parse(svc) as { vips: string[] }[])[0]!.vips[0] ?? '').split('/')[1]!;
    const hold = c.spawnExec('mesh/client', TCP_HOLD, vip, '9090');
    try {
      await eventually('the held connection answers', async () => hold.output().includes('pong 1') || undefined);
      const out = await eventually('both ends listed', async () => {
        const o = await c.ok(['ztunnel-config', 'connections']);
        return /\nclient\.mesh +Outbound +client\.mesh:\d+ +server\.mesh:15008 +server\.mesh\.svc\.cluster\.local:9090 +HBONE\n/.test(o) && /\nserver\.mesh +Inbound +server\.mesh:9090 +client\.mesh:\d+ +HBONE\n/.test(o) ? o : undefined;
      });
      assert.match(out, /^WORKLOAD +DIRECTION LOCAL +REMOTE +REMOTE TARGET +PROTOCOL\n/);
      assert.match(await c.ok(['ztunnel-config', 'connections', '--raw', '--direction', 'inbound']), /\nserver\.mesh +Inbound +10\.\S+:9090 +10\.\S+:\d+ +HBONE\n/);
    } finally {
      hold.child.kill();
    }
    await eventually('the connection gone from the listing', async () => {
      const o = await c.ok(['ztunnel-config', 'connections']);
      return !o.includes('client.mesh') || undefined;
    });
  });

  it('proxy-status shows each ztunnel, its subscribed types in sync, and version shows every proxy', async () => {
    const out = await eventually('both ztunnels synced', async () => {
      const o = await c.ok(['proxy-status', '-v', '1']);
      const rows = o.split('\n').filter((l) => /SYNCED \(\S+\) +SYNCED \(\S+\) +controlplane +0\.1\.0$/.test(l));
      return rows.length === 2 ? o : undefined;
    });
    assert.match(out, /^NAME +CLUSTER +CDS +ECDS +EDS +LDS +RDS +WADS +WDS +ISTIOD +VERSION\n/);
    assert.match(await c.ok(['proxy-status']), /\n\S+ +Kubernetes +controlplane +0\.1\.0 +2 \(WADS,WDS\)\n/);
    const version = await c.ok(['version']);
    assert.match(version, /^client version: 0\.1\.0\ncontrol plane version: 0\.1\.0\ndata plane version: 0\.1\.0 \(2 proxies\)\nfollows Istio: 1\.32\n$/);
  });

  it('analyze reads the running cluster: clean, then a typo\'d selector and a missing waypoint, and files layered on top', async () => {
    const clean = await c.cli(['analyze', '-n', 'mesh']);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stderr, '\u2714 No validation issues found when analyzing namespace: mesh.\n');
    assert.equal((await c.cli(['analyze', '-n', 'nowhere'])).stderr, 'namespace "nowhere" not found\n');

    await c.ok(['apply', '-f', c.manifest('typo.yaml', `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo, namespace: mesh}
spec:
  selector: {matchLabels: {app: servr}}
---
apiVersion: v1
kind: Pod
metadata: {name: lost, namespace: mesh, labels: {istio.io/use-waypoint: gone}}
spec:
  nodeName: node-1
  containers:
  - {name: main, command: [sleep, infinity]}
`)]);
    const r = await c.cli(['analyze', '-n', 'mesh']);
    assert.equal(r.code, 79, r.stderr);
    assert.equal(
      r.stdout,
      'Error [IST0101] (Pod mesh/lost) Referenced waypoint not found: "mesh/gone"\n' +
        'Warning [IST0127] (AuthorizationPolicy mesh/typo) No matching workloads for this resource with the following labels: app=servr\n',
    );
    // A file replaces the cluster's object of the same name: the fixed policy is analyzed, not the stored one.
    const fixed = c.manifest('fixed.yaml', 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: typo, namespace: mesh}\nspec:\n  selector: {matchLabels: {app: server}}\n');
    const layered = await c.cli(['analyze', '-n', 'mesh', '--failure-threshold', 'Warning', '-S', 'IST0101=Pod mesh/*', fixed]);
    assert.equal(layered.code, 0, layered.stdout + layered.stderr);
    assert.equal(layered.stderr, `\u2714 No validation issues found when analyzing ${fixed}.\n`);
  });

  it('a ServiceEntry selecting a mesh pod: its host resolves (DNS proxy) to an auto-allocated VIP that reaches the pod over HBONE', async () => {
    await c.ok(['apply', '-f', c.manifest('se.yaml', `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: server-ext, namespace: mesh}
spec:
  hosts: [server.internal.example]
  ports: [{number: 9090, name: tcp-echo, protocol: TCP}]
  resolution: STATIC
  workloadSelector:
    labels: {app: server}
`)]);
    const svc = await eventually('the entry served to the ztunnels', async () => {
      const o = await c.ok(['ztunnel-config', 'service', '--service-namespace', 'mesh']);
      return /\nmesh +server-ext +240\.240\.\d+\.\d+,2001:2::f0f0:\S+ +None +1\/1\n/.test(o) ? o : undefined;
    });
    assert.match(svc, /server-ext/);
    const r = await eventually('a round trip by the entry\'s host', async () => {
      const res = await c.exec('mesh/client', TCP_ROUND_TRIP, 'server.internal.example', '9090');
      return res.code === 0 ? res : undefined;
    });
    assert.match(r.stdout, /ping/);
    const log = await c.ok(['logs', 'ztunnel', '--node', 'node-1']);
    assert.match(log, /dst\.service="server\.internal\.example"/);
  });
});
