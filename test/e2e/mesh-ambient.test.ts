// The ambient mesh end to end in one local cluster (2 nodes): capture, cross-node HBONE with identities, L4
// authorization in Istio's order, PeerAuthentication, live (re)labelling, policy changes under open connections,
// malformed HBONE, and the data plane riding out a control-plane outage and a ztunnel restart. One cluster serves
// every assertion (a cluster start costs far more than a test); tests run in order and undo what they apply.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { isCaptured } from '../../src/cni/capture.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/identity/csr.js';
import { FETCH, LOOKUP, TCP_ROUND_TRIP, eventually, hostSnapshot } from './local-harness.js';
import { MeshCluster, TCP_HOLD, samples } from './mesh-harness.js';

const ECHO = (name: string, ns: string, node: string, sa = 'default') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${name}}}
spec:
  nodeName: ${node}
  serviceAccountName: ${sa}
  containers:
  - name: echo
    command: [ambit-echo, --http-port, "8080", --tcp-port, "9090"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports:
    - {name: http, containerPort: 8080}
    - {name: tcp-echo, containerPort: 9090}
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`;
const SLEEPER = (name: string, ns: string, node: string, sa = 'default') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
  nodeName: ${node}
  serviceAccountName: ${sa}
  containers:
  - {name: main, command: [sleep, infinity]}
`;
const SA = (name: string, ns: string) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ${name}, namespace: ${ns}}\n`;
const NAMESPACE = (name: string, ambient: boolean) =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${ambient ? '  labels: {istio.io/dataplane-mode: ambient}\n' : ''}`;

/** Runs an nft script inside a namespace. */
const nft = (netns: string, script: string) =>
  new Promise<void>((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${netns}`, '--', 'nft', '-f', '-'], (err, _out, stderr) => (err ? reject(new Error(`nft: ${stderr || err.message}`)) : resolve()));
    child.stdin!.end(script);
  });

const APP = [
  NAMESPACE('mesh', true),
  NAMESPACE('other', true),
  NAMESPACE('plain', false),
  NAMESPACE('late', false),
  SA('server', 'mesh'),
  SA('client', 'mesh'),
  SA('client2', 'mesh'),
  ECHO('server', 'mesh', 'node-2', 'server'),
  `apiVersion: v1
kind: Service
metadata: {name: server, namespace: mesh}
spec:
  selector: {app: server}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: tcp-echo, port: 9090, targetPort: tcp-echo}
`,
  `apiVersion: v1
kind: Service
metadata: {name: empty, namespace: mesh}
spec:
  selector: {app: nobody}
  ports:
  - {name: http, port: 80, targetPort: 8080}
`,
  SLEEPER('client', 'mesh', 'node-1', 'client'),
  SLEEPER('client2', 'mesh', 'node-1', 'client2'),
  SLEEPER('caller', 'other', 'node-1'),
  SLEEPER('outsider', 'plain', 'node-1'),
  ECHO('plainsrv', 'plain', 'node-2'),
  ECHO('late-srv', 'late', 'node-2'),
  SLEEPER('late-cli', 'late', 'node-1'),
].join('---\n');

const ID = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

/** An AuthorizationPolicy on the server pod. */
const POLICY = (name: string, action: 'ALLOW' | 'DENY', rules: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: mesh}
spec:
  selector: {matchLabels: {app: server}}
  action: ${action}
  rules:
${rules}`;

describe('ambient mesh in the local cluster', () => {
  const c = new MeshCluster();
  let hostBefore: ReturnType<typeof hostSnapshot>;
  const ip: Record<string, string> = {};
  let serverVip = '';
  let upOutput = '';

  const http = (from: string, url: string) => c.exec(from, FETCH, url);
  const tcp = (from: string, host: string, port = 9090) => c.exec(from, TCP_ROUND_TRIP, host, String(port));
  /** Waits until `from` → server:9090 gives the wanted outcome (policies reach the proxies asynchronously). */
  const expectTcp = (from: string, allowed: boolean, host = 'server.mesh') =>
    eventually(`${from} → ${host}:9090 ${allowed ? 'allowed' : 'denied'}`, async () => ((await tcp(from, host)).code === 0) === allowed || undefined, 20_000);
  const removePolicies = async (...names: string[]) => {
    await c.ok(['delete', 'authorizationpolicy', ...names, '-n', 'mesh']);
  };

  before(async () => {
    hostBefore = hostSnapshot();
    upOutput = await c.ok(['up', '-f', c.manifest('app.yaml', APP)]);
    c.recordNetns();
    for (const ns of ['mesh', 'other', 'plain', 'late']) for (const p of await c.pods(ns)) ip[p.name] = p.ip;
    serverVip = (JSON.parse(await c.ok(['get', 'services', 'server', '-n', 'mesh', '-o', 'json'])) as { spec: { clusterIP: string } }).spec.clusterIP;
  });
  // A failed test must not leave its policies to fail the next ones.
  afterEach(async () => {
    for (const kind of ['authorizationpolicies', 'peerauthentications']) {
      const r = await c.cli(['get', kind, '-n', 'mesh', '-o', 'json']);
      const names = r.code === 0 ? (JSON.parse(r.stdout) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name) : [];
      if (names.length) await c.cli(['delete', kind, ...names, '-n', 'mesh']);
    }
  });
  after(async () => {
    await c.destroy();
    assert.deepEqual(hostSnapshot(), hostBefore, "the host's interfaces and nft tables must be untouched");
  });

  it('captures pods of ambient namespaces only, and their readiness probes still pass', async () => {
    for (const pod of ['mesh_server', 'mesh_client', 'other_caller']) assert.equal(await isCaptured(c.netns(`pod_${pod}`)), true, pod);
    for (const pod of ['plain_outsider', 'plain_plainsrv', 'late_late-srv']) assert.equal(await isCaptured(c.netns(`pod_${pod}`)), false, pod);
    for (const ns of ['mesh', 'plain']) for (const p of await c.pods(ns)) assert.ok(p.ready, `${ns}/${p.name} ready`);
    const status = JSON.parse(await c.ok(['status', '-o', 'json'])) as { components: { name: string; node?: string; healthy: boolean }[] };
    const mesh = status.components.filter((x) => x.name === 'controlplane' || x.name === 'ztunnel').map((x) => `${x.name}${x.node ? `@${x.node}` : ''}:${x.healthy}`);
    assert.deepEqual(mesh.sort(), ['controlplane:true', 'ztunnel@node-1:true', 'ztunnel@node-2:true']);
    // Spelled as this CLI runs here (no `npm link`: node and the script's path).
    assert.match(upOutput, new RegExp(`\\n  node \\S+main\\.js logs ztunnel --node node-1 --cluster ${c.name} \\| grep identity`), 'up says what to try next');
  });

  it('carries cross-node traffic over HBONE with both identities in the access log and the metrics', async () => {
    const r = await http('mesh/client', 'http://server.mesh/');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /server/);
    assert.equal((await tcp('mesh/client', 'server.mesh')).stdout.trim(), 'ping', 'the TCP echo app works unchanged');
    const want = [`src.identity="${ID('mesh', 'client')}"`, `dst.identity="${ID('mesh', 'server')}"`];
    const out = await eventually('outbound access log on node-1', async () => {
      const log = await c.ztunnelLog('node-1');
      return log.split('\n').find((l) => l.includes('connection complete') && l.includes('direction="outbound"') && want.every((w) => l.includes(w)));
    });
    assert.match(out, new RegExp(`dst\\.addr=${ip.server!.replaceAll('.', '\\.')}:15008`));
    assert.match(out, new RegExp(`dst\\.hbone_addr=${ip.server!.replaceAll('.', '\\.')}:(8080|9090)`));
    assert.match(out, /dst\.service="server\.mesh\.svc\.cluster\.local"/);
    await eventually('inbound access log on node-2', async () => {
      const log = await c.ztunnelLog('node-2');
      return log.split('\n').find((l) => l.includes('connection complete') && l.includes('direction="inbound"') && want.every((w) => l.includes(w)));
    });
    const labels = { source_principal: ID('mesh', 'client'), destination_principal: ID('mesh', 'server'), connection_security_policy: 'mutual_tls' };
    const m1 = await c.metrics('node-1');
    assert.ok(samples(m1, 'istio_tcp_connections_opened_total', { ...labels, reporter: 'source' }).some((v) => v >= 1), m1.slice(0, 3000));
    assert.ok(samples(m1, 'istio_tcp_sent_bytes_total', { ...labels, reporter: 'source' }).some((v) => v > 0));
    const m2 = await c.metrics('node-2');
    assert.ok(samples(m2, 'istio_tcp_connections_opened_total', { ...labels, reporter: 'destination' }).some((v) => v >= 1), m2.slice(0, 3000));
  });

  it("answers Service names from ztunnel's DNS proxy and keeps the plain resolver for un-captured pods", async () => {
    assert.deepEqual(JSON.parse((await c.exec('mesh/client', LOOKUP, 'server')).stdout), [serverVip]);
    assert.deepEqual(JSON.parse((await c.exec('plain/outsider', LOOKUP, 'server.mesh')).stdout), [serverVip]);
    // ztunnel's other series that Istio's ztunnel dashboard plots, from the client's node.
    const m = await c.metrics('node-1');
    assert.ok(samples(m, 'istio_dns_requests_total', { source_canonical_service: 'client' }).some((v) => v >= 1), m.slice(0, 3000));
    assert.ok(samples(m, 'istio_xds_message_total', { url: 'type.googleapis.com/istio.workload.Address' }).some((v) => v >= 1));
    assert.ok(samples(m, 'istio_xds_message_bytes_total', { url: 'type.googleapis.com/istio.workload.Address' }).some((v) => v > 0));
    assert.match(m, /^workload_manager_active_proxy_count [1-9]/m);
    assert.match(m, /^workload_manager_pending_proxy_count 0$/m);
    assert.match(m, /^process_open_fds [1-9]/m);
    assert.match(m, /^istio_build\{component="ztunnel",tag="[^"]+"\} 1$/m);
  });

  it('sends plain TCP to un-captured destinations and says "no healthy upstream" for a Service without endpoints', async () => {
    const r = await http('mesh/client', `http://${ip.plainsrv}:8080/`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /plainsrv/);
    // A raw TCP round trip rather than fetch: anything that answers (a misrouted connection) prints a line and exits 0.
    const empty = await tcp('mesh/client', 'empty.mesh', 80);
    assert.equal(empty.code, 1, `a Service without endpoints answered: ${empty.stdout}${empty.stderr}`);
    await eventually('no healthy upstream in the node-1 log', async () => (await c.ztunnelLog('node-1')).includes('no healthy upstream') || undefined);
  });

  it('allows everything without ALLOW policies and denies with Istio\'s text when no ALLOW matches', async () => {
    await expectTcp('mesh/client2', true);
    await c.apply('allow-client.yaml', POLICY('allow-client', 'ALLOW', `  - from:\n    - source: {principals: ["cluster.local/ns/mesh/sa/client"]}\n`));
    await expectTcp('mesh/client2', false);
    await expectTcp('mesh/client', true);
    await eventually('the denial text on node-2', async () =>
      (await c.ztunnelLog('node-2')).includes('connection closed due to policy rejection: allow policies exist, but none allowed') || undefined);
    // The control plane reports the policy as accepted, visible on the object as kubectl would show it.
    const ap = await eventually('policy status', async () => {
      const o = JSON.parse(await c.ok(['get', 'ap', 'allow-client', '-n', 'mesh', '-o', 'json'])) as { status?: { conditions?: { type: string; status: string }[] } };
      return o.status?.conditions?.length ? o : undefined;
    });
    assert.equal(ap.status!.conditions![0]!.type, 'ZtunnelAccepted');
    await removePolicies('allow-client');
    await expectTcp('mesh/client2', true);
  });

  it('allows by namespace and by port', async () => {
    await c.apply('allow-ns.yaml', POLICY('allow-ns', 'ALLOW', `  - from:\n    - source: {namespaces: ["other"]}\n`));
    await expectTcp('mesh/client', false);
    await expectTcp('other/caller', true);
    await removePolicies('allow-ns');
    await c.apply('allow-port.yaml', POLICY('allow-port', 'ALLOW', `  - to:\n    - operation: {ports: ["9090"]}\n`));
    await expectTcp('mesh/client', true);
    await eventually('HTTP on 8080 denied', async () => (await http('mesh/client', 'http://server.mesh/')).code === 1 || undefined, 20_000);
    await removePolicies('allow-port');
  });

  it('lets DENY win over ALLOW, and fails closed on an ALLOW with HTTP attributes', async () => {
    await c.apply('deny.yaml', [
      POLICY('allow-all', 'ALLOW', '  - {}\n'),
      POLICY('deny-client', 'DENY', `  - from:\n    - source: {principals: ["cluster.local/ns/mesh/sa/client"]}\n`),
    ].join('---\n'));
    await expectTcp('mesh/client', false);
    await expectTcp('mesh/client2', true);
    await eventually('explicitly denied text', async () =>
      (await c.ztunnelLog('node-2')).includes('connection closed due to policy rejection: explicitly denied by: mesh/deny-client') || undefined);
    await removePolicies('allow-all', 'deny-client');
    await c.apply('http-attr.yaml', POLICY('allow-get', 'ALLOW', `  - to:\n    - operation: {methods: ["GET"]}\n`));
    await eventually('GET denied by an L7-only ALLOW', async () => (await http('mesh/client', 'http://server.mesh/')).code === 1 || undefined, 20_000);
    await removePolicies('allow-get');
    await expectTcp('mesh/client', true);
  });

  it('STRICT refuses plaintext from an un-captured pod while HBONE works; PERMISSIVE accepts both', async () => {
    assert.equal((await tcp('plain/outsider', ip.server!)).code, 0, 'PERMISSIVE (the default) accepts plaintext');
    const pa = (mode: string) => `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: mesh}\nspec:\n  mtls: {mode: ${mode}}\n`;
    await c.apply('strict.yaml', pa('STRICT'));
    await eventually('plaintext refused', async () => (await tcp('plain/outsider', ip.server!)).code === 1 || undefined, 20_000);
    assert.equal((await tcp('mesh/client', 'server.mesh')).code, 0, 'HBONE still works under STRICT');
    // Three probe periods: a probe refused as plaintext would have made the pod unready by now.
    await new Promise((r) => setTimeout(r, 3500));
    const server = (await c.pods('mesh')).find((p) => p.name === 'server')!;
    assert.ok(server.ready, 'node probes still reach the pod under STRICT');
    const snat = await c.inNode('node-2', `require('child_process').execFileSync('nft', ['list', 'table', 'ip', 'ambit-probes'], { stdio: 'inherit' })`);
    assert.match(snat.stdout, /counter packets [1-9]\d* bytes \d+ snat (ip )?to 169\.254\.7\.127/, 'probes leave the node as 169.254.7.127');
    await c.apply('permissive.yaml', pa('PERMISSIVE'));
    await eventually('plaintext accepted again', async () => (await tcp('plain/outsider', ip.server!)).code === 0 || undefined, 20_000);
    assert.equal((await tcp('mesh/client', 'server.mesh')).code, 0);
    await c.ok(['delete', 'peerauthentication', 'default', '-n', 'mesh']);
  });

  it("moves the byte counters of both reporters while a connection is open, as ztunnel's do", async () => {
    const labels = { source_principal: ID('mesh', 'client'), destination_principal: ID('mesh', 'server') };
    const total = async (node: string, metric: string, reporter: string) => samples(await c.metrics(node), metric, { ...labels, reporter }).reduce((a, b) => a + b, 0);
    const counters = async () => ({
      sourceRequest: await total('node-1', 'istio_tcp_received_bytes_total', 'source'),
      sourceResponse: await total('node-1', 'istio_tcp_sent_bytes_total', 'source'),
      destinationRequest: await total('node-2', 'istio_tcp_received_bytes_total', 'destination'),
      destinationResponse: await total('node-2', 'istio_tcp_sent_bytes_total', 'destination'),
    });
    const before = await counters();
    const hold = c.spawnExec('mesh/client', TCP_HOLD, 'server.mesh', '9090');
    try {
      // Ten echoed lines of 2 bytes: at least 20 bytes each way on a connection that stays open.
      await eventually('echoes flowing', async () => (/pong 10\n/.test(hold.output()) ? true : undefined));
      const during = await counters();
      for (const [name, value] of Object.entries(during)) {
        assert.ok(value - before[name as keyof typeof before] >= 20, `${name} moved by ${value - before[name as keyof typeof before]} while the connection is open`);
      }
      assert.doesNotMatch(hold.output(), /closed/, 'the connection was still open when the counters were read');
    } finally {
      hold.child.kill();
    }
  });

  it('closes a long-lived connection on a policy change only when it becomes denied', async () => {
    const hold = c.spawnExec('mesh/client', TCP_HOLD, 'server.mesh', '9090');
    try {
      await eventually('echoes flowing', async () => (/pong 3/.test(hold.output()) ? true : undefined));
      await c.apply('still-allowed.yaml', POLICY('allow-client', 'ALLOW', `  - from:\n    - source: {principals: ["cluster.local/ns/mesh/sa/client"]}\n`));
      await expectTcp('mesh/client2', false); // The policy is in force.
      const count = () => Number(/pong (\d+)\n(?![\s\S]*pong)/.exec(hold.output())?.[1] ?? 0);
      const before = count();
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(count() > before, `still allowed: the connection keeps echoing\n${hold.output().slice(-300)}`);
      assert.doesNotMatch(hold.output(), /closed/);
      await c.apply('now-denied.yaml', POLICY('allow-client', 'ALLOW', `  - from:\n    - source: {principals: ["cluster.local/ns/mesh/sa/client2"]}\n`));
      await eventually('the held connection closed', async () => (/closed/.test(hold.output()) ? true : undefined), 20_000);
      await eventually('policy-change log text', async () => (await c.ztunnelLog('node-2')).includes('connection closed due to policy change') || undefined);
    } finally {
      hold.child.kill();
      await removePolicies('allow-client');
    }
  });

  it('captures running pods when their namespace is labelled, without restarting them, and releases them again', async () => {
    assert.equal((await tcp('late/late-cli', ip['late-srv']!)).code, 0);
    const before = await c.pods('late');
    await c.apply('late.yaml', NAMESPACE('late', true));
    await eventually('late pods captured', async () => ((await isCaptured(c.netns('pod_late_late-srv'))) && (await isCaptured(c.netns('pod_late_late-cli')))) || undefined, 10_000);
    await eventually('late traffic with identities', async () => {
      await tcp('late/late-cli', ip['late-srv']!);
      const log = await c.ztunnelLog('node-2');
      return log.includes(`src.identity="${ID('late', 'default')}"`) || undefined;
    }, 20_000);
    const afterLabel = await c.pods('late');
    assert.deepEqual(afterLabel.map((p) => [p.name, p.restarts, p.ready]), before.map((p) => [p.name, p.restarts, true]), 'no pod restarted');
    await c.apply('late-off.yaml', NAMESPACE('late', false));
    await eventually('late pods released', async () => (!(await isCaptured(c.netns('pod_late_late-srv'))) ? true : undefined), 10_000);
    assert.equal((await tcp('late/late-cli', ip['late-srv']!)).code, 0);
  });

  it('answers malformed HBONE with 400/503 and keeps serving', async () => {
    // A mesh client certificate, minted from the cluster CA's files as a pod's identity would be.
    const ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: join(c.stateDir, 'controlplane') });
    const keys = await generateKeyPair();
    const chain = await ca.signWorkload(await createCsr({ keys, uriSans: [ID('mesh', 'client')] }), ID('mesh', 'client'), 3600);
    const creds = join(c.base, 'hbone-creds.json');
    writeFileSync(creds, JSON.stringify({ key: privateKeyToPem(keys.privateKey), cert: chain.slice(0, -1).join(''), ca: ca.rootPem }));
    const target = ip.server!;
    const script = `
const http2 = require('http2');
const creds = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
const host = process.argv[2];
const s = http2.connect('https://' + host + ':15008', { ...creds, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
const ask = (headers) => new Promise((resolve) => {
  const r = s.request(headers, { endStream: false });
  r.on('response', (h) => { resolve(h[':status']); r.close(); });
  r.on('error', (e) => resolve('error ' + e.message));
});
(async () => {
  const out = {};
  out.get = await ask({ ':method': 'GET', ':path': '/', ':scheme': 'https', ':authority': host + ':8080' });
  out.badAuthority = await ask({ ':method': 'CONNECT', ':authority': 'not-an-address' });
  out.self15001 = await ask({ ':method': 'CONNECT', ':authority': host + ':15001' });
  out.self15006 = await ask({ ':method': 'CONNECT', ':authority': host + ':15006' });
  out.self15008 = await ask({ ':method': 'CONNECT', ':authority': host + ':15008' });
  out.good = await ask({ ':method': 'CONNECT', ':authority': host + ':9090' });
  console.log(JSON.stringify(out));
  s.close();
})();`;
    const r = await c.inNode('node-1', script, creds, target);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(out, { get: 400, badAuthority: 400, self15001: 503, self15006: 503, self15008: 503, good: 200 });
    const log = await c.ztunnelLog('node-2');
    assert.match(log, /expected method CONNECT, got GET/);
    assert.match(log, /attempted recursive call to ourselves/);
    assert.equal((await tcp('mesh/client', 'server.mesh')).code, 0, 'the proxy keeps serving');
  });

  // The outage outlasts the xDS keepalive (30 s + 10 s) and lets the proxies' back-off reach its cap; the control
  // plane is killed (its streams end at once) and its port refuses connections until the outage ends, though the
  // supervisor restarts the process. The DENY deleted meanwhile must stop denying within the 5 s back-off cap (plus
  // a margin for a loaded machine) of the port opening again; before, gRPC's back-off stacked on ours (27 s seen).
  it('keeps serving through a long control-plane outage, then resyncs within seconds: a DENY deleted meanwhile stops denying', async (t) => {
    const OUTAGE_MS = 42_000;
    const RESYNC_BOUND_MS = 5_000 + 5_000;
    await c.apply('deny-9090.yaml', POLICY('deny-all-tcp', 'DENY', `  - to:\n    - operation: {ports: ["9090"]}\n`));
    await expectTcp('mesh/client', false);
    const fabric = c.netns('fabric');
    const table = `ambit-test-outage-${c.name}`;
    await nft(fabric, `table inet ${table} {\n chain input {\n  type filter hook input priority -10; policy accept;\n  tcp dport 15012 reject with tcp reset\n }\n}\n`);
    let closed = true;
    try {
      const cp = await c.component('controlplane');
      process.kill(cp.pid, 'SIGKILL');
      const started = Date.now();
      await removePolicies('deny-all-tcp');
      assert.equal((await http('mesh/client', 'http://server.mesh/')).code, 0, 'traffic flows with the last configuration');
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - started)))); // the outage itself
      assert.notEqual((await tcp('mesh/client', 'server.mesh')).code, 0, 'the last configuration (the DENY) still applies');
      // Open the port right after a failed reconnect: the next attempt is then a whole back-off away.
      const failures = () => c.ztunnelLog('node-2').then((l) => l.split('XDS client connection error').length - 1);
      const before = await failures();
      await eventually('a failed reconnect on node-2', async () => (await failures()) > before || undefined, 30_000);
      await nft(fabric, `delete table inet ${table}\n`);
      closed = false;
    } finally {
      if (closed) await nft(fabric, `delete table inet ${table}\n`);
    }
    const open = Date.now();
    await eventually('the DENY deleted during the outage stops denying', async () => (await tcp('mesh/client', 'server.mesh')).code === 0 || undefined, RESYNC_BOUND_MS);
    t.diagnostic(`allowed again ${Date.now() - open}ms after the control plane's port opened`);
    // The outage ended streams, which ztunnel counts by reason.
    assert.ok(samples(await c.metrics('node-2'), 'istio_xds_connection_terminations_total', {}).some((v) => v >= 1));
    // Config changes flow again.
    await c.apply('after-cp.yaml', POLICY('deny-all-tcp', 'DENY', `  - to:\n    - operation: {ports: ["9090"]}\n`));
    await expectTcp('mesh/client', false);
    await removePolicies('deny-all-tcp');
    await expectTcp('mesh/client', true);
  });

  it('resumes traffic after a ztunnel is killed and restarted', async () => {
    const zt = await c.component('ztunnel', 'node-2');
    process.kill(zt.pid, 'SIGKILL');
    const back = await eventually('ztunnel on node-2 restarted and healthy', async () => {
      const now = await c.component('ztunnel', 'node-2');
      return now.restarts > zt.restarts && now.healthy ? now : undefined;
    }, 60_000);
    assert.notEqual(back.pid, zt.pid);
    await expectTcp('mesh/client', true);
    const r = await http('mesh/client', 'http://server.mesh/');
    assert.equal(r.code, 0, r.stderr);
  });
});
