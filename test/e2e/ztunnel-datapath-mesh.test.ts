// The ztunnel data path between real pod network namespaces: two captured pods (A client, B server) and an
// un-captured pod C, each joined to a router netns by a veth; capture rules from src/cni; certificates from a real
// CA over gRPC (SecretManager → ControlPlaneServer); a ProxyState fed directly with xDS-shaped objects; PodProxy for
// A and B running in this process. Everything lives in namespaces the test creates (10.251.x.y only). C also runs
// the stand-in for the cluster resolver (DNS_UPSTREAM) that on-demand DNS asks.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type * as dgram from 'node:dgram';
import type * as net from 'node:net';
import { tmpdir } from 'node:os';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import * as tls from 'node:tls';
import dnsPacket from 'dns-packet';
import { installCapture } from '../../src/cni/index.js';
import { TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { HboneConnectionLimiter } from '../../src/hbone/limits.js';
import { clientTlsOptions } from '../../src/hbone/tls.js';
import { PodNetns } from '../../src/inpod/index.js';
import type { WorkloadCertificate } from '../../src/identity/workload-cert.js';
import { ipToBytes } from '../../src/common/ip.js';
import type { Authorization, Match, Service, Workload } from '../../src/xds/types.js';
import { ZtunnelTelemetry, trafficLabels, type ConnectionInfo, type ConnectionTelemetry, type ConnectionTracker, type ResponseFlag } from '../../src/telemetry/connection.js';
import { LogSink } from '../../src/telemetry/log.js';
import { SecretManager } from '../../src/xds/ca-client.js';
import { loadConfig, type ZtunnelConfig } from '../../src/ztunnel/config.js';
import { OnDemandDnsMetrics } from '../../src/ztunnel/metrics.js';
import { PodProxy } from '../../src/ztunnel/pod-proxy.js';
import { ProxyState } from '../../src/ztunnel/state.js';
import { inNetns, run } from './inpod-fixture.js';
import { serveDns } from '../support/dns-server.js';

const TD = 'cluster.local';
const NS_A = 'tz-client';
const NS_B = 'tz-server';
const ID_A = `spiffe://${TD}/ns/${NS_A}/sa/client`;
const ID_B = `spiffe://${TD}/ns/${NS_B}/sa/server`;
const ID_RAW = `spiffe://${TD}/ns/${NS_A}/sa/raw`;
const NODE = 'tz-node';
const ECHO = 9090;
const WHOAMI = 9091;
const CERT_TTL_SECONDS = 6;

// ---- recording telemetry: the real ZtunnelTelemetry, plus what each connection reported, for assertions --------

interface Record {
  info: ConnectionInfo;
  sent: number;
  received: number;
  error?: { message: string; flag: ResponseFlag };
  closed: boolean;
}
interface Failure {
  info: Pick<ConnectionInfo, 'direction' | 'srcAddr' | 'dstAddr'>;
  error: { message: string; flag: ResponseFlag };
}

class RecordingTelemetry implements ConnectionTelemetry {
  readonly records: Record[] = [];
  readonly failures: Failure[] = [];
  private waiters: (() => void)[] = [];
  constructor(readonly inner: ZtunnelTelemetry) {}

  open(info: ConnectionInfo): ConnectionTracker {
    const t = this.inner.open(info);
    const rec: Record = { info, sent: 0, received: 0, closed: false };
    this.records.push(rec);
    return {
      sent: (n) => ((rec.sent += n), t.sent(n)),
      received: (n) => ((rec.received += n), t.received(n)),
      close: (e) => {
        if (rec.closed) return;
        rec.closed = true;
        if (e) rec.error = e;
        t.close(e);
        this.wake();
      },
    };
  }

  failed(info: Failure['info'], error: Failure['error']): void {
    this.failures.push({ info, error });
    this.inner.failed(info, error);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first closed record (after index `from`) matching `pred`, waiting up to `ms`. */
  async closed(pred: (r: Record) => boolean, from = 0, ms = 8000): Promise<Record> {
    return this.until(() => this.records.slice(from).find((r) => r.closed && pred(r)), ms, 'closed connection record');
  }

  async failure(pred: (f: Failure) => boolean, from = 0, ms = 8000): Promise<Failure> {
    return this.until(() => this.failures.slice(from).find(pred), ms, 'connection failure record');
  }

  private async until<T>(get: () => T | undefined, ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = get();
      if (v !== undefined) return v;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching ${what} within ${ms} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }
}

// ---- topology ---------------------------------------------------------------------------------------------------

interface Topology {
  tag: string;
  router: string;
  a: string;
  b: string;
  c: string;
  ipA: string;
  ipB: string;
  ipC: string;
  vip: string;
  emptyVip: string;
  /** In C's subnet but assigned to nobody: SYNs to it go unanswered. */
  blackhole: string;
  /** A second address of C: the VIP of a PASSTHROUGH Service (a ServiceEntry with resolution NONE). */
  external: string;
  /** A VIP per host of the DNS ServiceEntries (their endpoints known by hostname only), in host order. */
  dnsVips: string[];
  cleanup(): Promise<void>;
}

async function createTopology(): Promise<Topology> {
  const tag = `tz${randomBytes(3).toString('hex')}`;
  const t3 = randomInt(256);
  const net = (i: number) => ({ gw: `10.251.${t3}.${i * 8 + 1}`, pod: `10.251.${t3}.${i * 8 + 2}` });
  const router = `${tag}-r`;
  const pods = [`${tag}-a`, `${tag}-b`, `${tag}-c`] as const;
  const created: string[] = [];
  const cleanup = async () => {
    for (const ns of created.splice(0).reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    for (const ns of [router, ...pods]) {
      await run('ip', ['netns', 'add', ns]);
      created.push(ns);
    }
    await inNetns(router, 'sh', ['-ec', 'ip link set lo up; echo 1 > /proc/sys/net/ipv4/ip_forward']);
    for (const [i, ns] of pods.entries()) {
      const dev = `${tag}${i}`;
      const { gw, pod } = net(i);
      await run('ip', ['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', `${dev}r`, 'netns', router]);
      const extra = i === 2 ? `; ip addr add 10.251.${t3}.19/29 dev ${dev}` : '';
      await inNetns(ns, 'sh', ['-ec', `ip link set lo up; ip addr add ${pod}/29 dev ${dev}${extra}; ip link set ${dev} up; ip route add default via ${gw}`]);
      await inNetns(router, 'sh', ['-ec', `ip addr add ${gw}/29 dev ${dev}r; ip link set ${dev}r up`]);
    }
    // veth queues come up asynchronously; a SYN sent before would cost a 1 s retransmit.
    for (const [i, ns] of pods.entries()) {
      const wait = (n: string, dev: string) =>
        inNetns(n, 'sh', ['-c', `for i in $(seq 100); do ip -o link show dev ${dev} | grep -q 'state UP' && exit 0; sleep 0.02; done; exit 1`]);
      await wait(ns, `${tag}${i}`);
      await wait(router, `${tag}${i}r`);
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    tag, router, a: pods[0], b: pods[1], c: pods[2],
    ipA: net(0).pod, ipB: net(1).pod, ipC: net(2).pod,
    vip: `10.251.${t3}.200`, emptyVip: `10.251.${t3}.201`, blackhole: `10.251.${t3}.21`, external: `10.251.${t3}.19`,
    dnsVips: DNS_HOSTS.map((_, i) => `10.251.${t3}.${210 + i}`),
    cleanup,
  };
}

// ---- the cluster resolver on-demand DNS asks ---------------------------------------------------------------------

/** Hosts of DNS ServiceEntries, each answered its own way by ClusterResolver. */
const DNS_HOSTS = ['api.example.test', 'missing.example.test', 'empty.example.test', 'big.example.test'] as const;
type DnsHost = (typeof DNS_HOSTS)[number];
/** Only ever data in an answer: IPv6 is not configured here, so picking it would fail the connection. */
const UNREACHABLE_V6 = 'fd00:251::1';

/**
 * Answers, over UDP and TCP: api with C's address and UNREACHABLE_V6; missing NXDOMAIN; empty NOERROR without
 * records; big only over TCP (the UDP reply is truncated).
 */
class ClusterResolver {
  /** `<transport> <type> <name>` of each question, in arrival order. */
  readonly seen: string[] = [];
  constructor(readonly udp: dgram.Socket, readonly tcp: net.Server, private readonly ipC: string) {
    serveDns(udp, tcp, (msg, transport) => this.answer(msg, transport));
  }

  close(): void {
    this.udp.close();
    this.tcp.close();
  }

  private answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    const type = question.type as 'A' | 'AAAA';
    this.seen.push(`${transport} ${type} ${question.name}`);
    const host = question.name as DnsHost;
    let flags = dnsPacket.RECURSION_AVAILABLE;
    const answers: dnsPacket.Answer[] = [];
    const address = (data: string): void => void answers.push({ name: question.name, type, class: 'IN', ttl: 300, data });
    if (host === 'api.example.test') address(type === 'A' ? this.ipC : UNREACHABLE_V6);
    else if (host === 'missing.example.test') flags |= 3; // NXDOMAIN
    else if (host === 'big.example.test' && transport === 'udp') flags |= dnsPacket.TRUNCATED_RESPONSE;
    else if (host === 'big.example.test' && type === 'A') address(this.ipC);
    return dnsPacket.encode({ type: 'response', id: q.id, flags, questions: q.questions, answers });
  }
}

// ---- xDS-shaped objects -----------------------------------------------------------------------------------------

function workload(name: string, ns: string, sa: string, ip: string, protocol: Workload['tunnelProtocol'], services: Workload['services'] = {}): Workload {
  return {
    uid: `Kubernetes//Pod/${ns}/${name}`, name, namespace: ns, addresses: [ipToBytes(ip)!], network: '', tunnelProtocol: protocol,
    trustDomain: TD, serviceAccount: sa, node: NODE, canonicalName: name, canonicalRevision: 'v1', workloadType: 'POD',
    workloadName: name, services, authorizationPolicies: [], status: 'HEALTHY', clusterId: 'Kubernetes',
  };
}

function service(name: string, ns: string, vip: string, ports: Service['ports']): Service {
  return { name, namespace: ns, hostname: `${name}.${ns}.svc.${TD}`, addresses: [{ network: '', address: ipToBytes(vip)! }], ports, subjectAltNames: [] };
}

/**
 * What the control plane sends for a ServiceEntry with resolution DNS and no endpoints: its Service, and one workload
 * for the host, with no address but the hostname, plain TCP.
 */
function dnsServiceEntry(host: DnsHost, ns: string, vip: string): { service: Service; workload: Workload } {
  const name = host.split('.')[0]!;
  const ports = [{ servicePort: 80, targetPort: 8080 }];
  const svc: Service = { name: host, namespace: ns, hostname: host, addresses: [{ network: '', address: ipToBytes(vip)! }], ports, subjectAltNames: [] };
  const w: Workload = {
    uid: `Kubernetes/networking.istio.io/ServiceEntry/${ns}/${name}/${host}`, name, namespace: ns, addresses: [], hostname: host, network: '',
    tunnelProtocol: 'NONE', trustDomain: TD, serviceAccount: '', node: '', canonicalName: name, canonicalRevision: 'latest', workloadType: 'POD',
    workloadName: name, services: { [`${ns}/${host}`]: { ports } }, authorizationPolicies: [], status: 'HEALTHY', clusterId: 'Kubernetes',
  };
  return { service: svc, workload: w };
}

function match(m: Partial<Match>): Match {
  return {
    namespaces: [], notNamespaces: [], principals: [], notPrincipals: [], sourceIps: [], notSourceIps: [], destinationIps: [],
    notDestinationIps: [], destinationPorts: [], notDestinationPorts: [], serviceAccounts: [], notServiceAccounts: [], ...m,
  };
}

function policy(namespace: string, name: string, action: 'ALLOW' | 'DENY', m: Partial<Match>, scope: Authorization['scope'] = 'NAMESPACE'): Authorization {
  return { name, namespace, scope, action, dryRun: false, rules: [{ clauses: [{ matches: [match(m)] }] }] };
}

// ---- client helpers ---------------------------------------------------------------------------------------------

/** Sends `payload`, half-closes, and resolves with everything received until the peer closed (or the error). */
function roundTrip(socket: net.Socket, payload: Buffer): Promise<{ data: Buffer; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => (error = e));
    socket.on('close', () => resolve({ data: Buffer.concat(chunks), ...(error ? { error } : {}) }));
    socket.end(payload);
  });
}

/** Resolves when the socket closes, with whether it ended by error/reset. */
function whenClosed(socket: net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    socket.on('error', () => {});
    socket.once('close', (hadError) => resolve(hadError));
  });
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('ztunnel data path between pod netns', { timeout: 120_000 }, () => {
  let topo: Topology | undefined;
  let dir: string | undefined;
  let cp: ControlPlaneServer | undefined;
  let secrets: SecretManager | undefined;
  const proxies: PodProxy[] = [];
  const netnses: PodNetns[] = [];
  const servers: net.Server[] = [];
  const clients: net.Socket[] = [];
  const state = new ProxyState();
  const logLines: string[] = [];
  let telemetry: RecordingTelemetry;
  let nsA: PodNetns;
  let nsC: PodNetns;
  let config: ZtunnelConfig;
  let resolver: ClusterResolver | undefined;
  let onDemandDnsMetrics: OnDemandDnsMetrics;
  let svcEcho: Service;

  const dial = async (from: PodNetns, ip: string, port: number): Promise<net.Socket> => {
    const s = await from.connect(ip, port, { timeoutMs: 5000 });
    clients.push(s);
    return s;
  };
  const setPolicies = (upserts: Authorization[], removals: string[] = []) =>
    state.applyAuthorizations(new Map(upserts.map((p) => [`${p.namespace}/${p.name}`, p])), removals);

  before(async () => {
    topo = await createTopology();
    dir = mkdtempSync(join(tmpdir(), 'ambit-tz-'));
    const tokenFile = join(dir, 'tokens.json');
    writeFileSync(tokenFile, JSON.stringify({ 'tz-token': NODE }));
    const nodeToken = join(dir, 'node-token');
    writeFileSync(nodeToken, 'tz-token');
    const ca = await MeshCa.load({ trustDomain: TD, stateDir: dir });
    cp = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(tokenFile),
      xdsTypes: [],
      placement: { identitiesOnNode: (n) => new Set(n === NODE ? [ID_A, ID_B, ID_RAW] : []) },
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      log: { info: () => {}, warn: () => {}, error: () => {} },
    });
    const sink = new LogSink({ level: 'info', write: (l) => void logLines.push(l) });
    secrets = new SecretManager({
      caAddress: `127.0.0.1:${cp.port}`, serverName: 'istiod.istio-system.svc', rootPem: cp.rootPem, tokenFile: nodeToken,
      // Short-lived certificates: they rotate (at half-life) several times while the tests run.
      ttlSeconds: CERT_TTL_SECONDS, log: sink.logger('cert'),
    });
    telemetry = new RecordingTelemetry(new ZtunnelTelemetry({ log: sink }));
    config = loadConfig(
      {
        nodeName: NODE, rootCertFile: '-', tokenFile: nodeToken, zdsSocket: '-', connectionTerminationDeadlineMs: 300, connectTimeoutMs: 1500,
        dnsUpstream: `${topo.ipC}:53`,
      },
      {},
    );
    onDemandDnsMetrics = new OnDemandDnsMetrics(telemetry.inner.registry);

    svcEcho = service('echo', NS_B, topo.vip, [{ servicePort: 80, targetPort: ECHO }]);
    const wlB = workload('server', NS_B, 'server', topo.ipB, 'HBONE', { [`${NS_B}/${svcEcho.hostname}`]: { ports: [{ servicePort: 80, targetPort: ECHO }] } });
    state.applyAddresses(
      new Map<string, { workload?: Workload; service?: Service }>([
        ['a', { workload: workload('client', NS_A, 'client', topo.ipA, 'HBONE') }],
        ['b', { workload: wlB }],
        ['gone', { workload: workload('gone', NS_B, 'server', topo.blackhole, 'HBONE') }],
        ['svc', { service: svcEcho }],
        ['empty', { service: service('empty', NS_B, topo.emptyVip, [{ servicePort: 80, targetPort: ECHO }]) }],
        ['external', { service: { ...service('external', NS_B, topo.external, [{ servicePort: 8080, targetPort: 8080 }]), loadBalancing: { mode: 'PASSTHROUGH', routingPreference: [] } } }],
        ...DNS_HOSTS.flatMap((host, i) => {
          const se = dnsServiceEntry(host, NS_B, topo!.dnsVips[i]!);
          return [[`svc/${host}`, { service: se.service }], [se.workload.uid, { workload: se.workload }]] as const;
        }),
      ]),
      [],
    );
    setPolicies([]);

    // The applications: echo and "who am I talking to" in B, a plain server in the un-captured C.
    const nsB = PodNetns.open(topo.b);
    nsA = PodNetns.open(topo.a);
    nsC = PodNetns.open(topo.c);
    netnses.push(nsA, nsB, nsC);
    const serve = (ns: PodNetns, port: number, onSocket: (s: net.Socket) => void) => {
      const srv = ns.listen(port, { host: '0.0.0.0' });
      srv.on('connection', (s: net.Socket) => {
        s.on('error', () => {});
        onSocket(s);
      });
      servers.push(srv);
    };
    serve(nsB, ECHO, (s) => s.pipe(s));
    serve(nsB, WHOAMI, (s) => s.end(`${s.remoteAddress}`));
    serve(nsC, 8080, (s) => s.end(`c saw ${s.remoteAddress}`));
    resolver = new ClusterResolver(nsC.bindUdp(53, { host: topo.ipC }), nsC.listen(53, { host: topo.ipC }), topo.ipC);

    await installCapture(topo.a);
    await installCapture(topo.b);
    for (const [ns, name, sa] of [[topo.a, 'client', 'client'], [topo.b, 'server', 'server']] as const) {
      const ctx = {
        pod: { uid: randomBytes(8).toString('hex'), name, namespace: name === 'client' ? NS_A : NS_B, serviceAccount: sa, netnsPath: `/run/netns/${ns}` },
        state, secrets, config, telemetry, onDemandDnsMetrics, log: sink.logger('proxy'),
        hboneLimiter: new HboneConnectionLimiter({ maxConnections: config.hboneMaxConnections, maxConnectionsPerPeer: config.hboneMaxConnectionsPerPeer }, () => undefined),
      };
      proxies.push(await PodProxy.start(ctx));
    }
  });

  after(async () => {
    for (const c of clients) c.destroy();
    for (const p of proxies) await p.close().catch(() => undefined);
    for (const s of servers) s.close();
    resolver?.close();
    for (const n of netnses) n.close();
    secrets?.close();
    await cp?.close().catch(() => undefined);
    await topo?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('listens inside each captured pod on 15001, 15006, 15008 and 15053 (TCP and UDP)', async () => {
    for (const ns of [topo!.a, topo!.b]) {
      const tcp = await inNetns(ns, 'ss', ['-Hltn']);
      for (const port of [15001, 15006, 15008, 15053]) assert.match(tcp, new RegExp(`:${port}\\s`), `TCP ${port} in ${ns}:\n${tcp}`);
      assert.match(await inNetns(ns, 'ss', ['-Hlun']), /:15053\s/);
    }
  });

  it('A → B pod IP goes over HBONE with both identities, keeps the source IP, echoes 1 KB', async () => {
    const from = telemetry.records.length;
    const payload = randomBytes(1024);
    const { data } = await roundTrip(await dial(nsA, topo!.ipB, ECHO), payload);
    assert.equal(sha(data), sha(payload));
    const inbound = await telemetry.closed((r) => r.info.direction === 'inbound', from);
    const outbound = await telemetry.closed((r) => r.info.direction === 'outbound', from);
    assert.equal(inbound.info.srcIdentity, ID_A);
    assert.equal(inbound.info.dstIdentity, ID_B);
    assert.equal(inbound.info.mtls, true);
    assert.equal(inbound.info.hboneAddr, `${topo!.ipB}:${ECHO}`);
    assert.equal(inbound.info.srcWorkload?.name, 'client');
    assert.equal(inbound.error, undefined);
    assert.equal(inbound.sent, 1024);
    assert.equal(outbound.info.dstAddr, `${topo!.ipB}:15008`);
    assert.equal(outbound.info.hboneAddr, `${topo!.ipB}:${ECHO}`);
    assert.equal(outbound.info.srcIdentity, ID_A);
    assert.equal(outbound.received, 1024);
    // The application in B sees A's address, not B's own: the inbound leg spoofs the client IP.
    const who = await roundTrip(await dial(nsA, topo!.ipB, WHOAMI), Buffer.alloc(0));
    assert.equal(who.data.toString().replace('::ffff:', ''), topo!.ipA);
    // The access log and metrics carry ztunnel's fields and labels.
    const line = logLines.find((l) => l.includes('connection complete') && l.includes('direction="inbound"') && l.includes(`src.identity="${ID_A}"`));
    assert.ok(line, `no inbound access log line with A's identity in:\n${logLines.join('')}`);
    const metrics = await telemetry.inner.registry.metrics();
    assert.match(metrics, new RegExp(`istio_tcp_connections_opened_total\\{reporter="destination"[^}]*source_principal="${ID_A}"[^}]*connection_security_policy="mutual_tls"`));
  });

  it('moves 10 MB both ways intact and reuses the pooled HBONE connection', async () => {
    const payload = randomBytes(10 * 1024 * 1024);
    const sessionsBefore = proxies[0]!.scope.pool.connectionCount;
    const { data, error } = await roundTrip(await dial(nsA, topo!.ipB, ECHO), payload);
    assert.equal(error, undefined);
    assert.equal(data.length, payload.length);
    assert.equal(sha(data), sha(payload));
    assert.equal(proxies[0]!.scope.pool.connectionCount, Math.max(1, sessionsBefore), 'a second HBONE connection was opened for the same key');
  });

  it('a Service VIP reaches a healthy endpoint on its target port; a Service without endpoints fails', async () => {
    const from = telemetry.records.length;
    const payload = Buffer.from('via the service');
    const { data } = await roundTrip(await dial(nsA, topo!.vip, 80), payload);
    assert.equal(data.toString(), 'via the service');
    const out = await telemetry.closed((r) => r.info.direction === 'outbound', from);
    assert.equal(out.info.dstService?.hostname, svcEcho.hostname);
    assert.equal(out.info.hboneAddr, `${topo!.ipB}:${ECHO}`);

    const failuresFrom = telemetry.failures.length;
    // The proxy resets the connection, possibly before the client saw its connect complete.
    const res = await dial(nsA, topo!.emptyVip, 80).then((s) => roundTrip(s, Buffer.from('x')), (e: Error) => ({ data: Buffer.alloc(0), error: e }));
    assert.equal(res.data.length, 0);
    const f = await telemetry.failure((x) => x.info.direction === 'outbound', failuresFrom);
    assert.equal(f.error.message, `no healthy upstream: ${topo!.emptyVip}:80`);
  });

  it('an HBONE dial that gets no answer times out with the NetworkPolicy hint', async () => {
    const from = telemetry.records.length;
    const res = await roundTrip(await dial(nsA, topo!.blackhole, ECHO), Buffer.from('anyone?'));
    assert.equal(res.data.length, 0);
    const out = await telemetry.closed((r) => r.info.direction === 'outbound', from);
    assert.equal(out.error?.flag, 'NETWORK_POLICY');
    assert.match(out.error!.message, /^connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008/);
  });

  it('an address unknown to xDS is passed through as plain TCP from the pod address', async () => {
    const from = telemetry.records.length;
    const { data } = await roundTrip(await dial(nsA, topo!.ipC, 8080), Buffer.alloc(0));
    assert.equal(data.toString().replace('::ffff:', ''), `c saw ${topo!.ipA}`);
    const out = await telemetry.closed((r) => r.info.direction === 'outbound', from);
    assert.equal(out.info.mtls, false);
    assert.equal(out.info.dstAddr, `${topo!.ipC}:8080`);
  });

  it('a PASSTHROUGH Service (no endpoints) passes its VIP through as plain TCP, as ztunnel\'s OriginalDestination', async () => {
    const from = telemetry.records.length;
    const { data } = await roundTrip(await dial(nsA, topo!.external, 8080), Buffer.alloc(0));
    assert.equal(data.toString().replace('::ffff:', ''), `c saw ${topo!.ipA}`);
    const out = await telemetry.closed((r) => r.info.direction === 'outbound', from);
    assert.equal(out.info.mtls, false);
    assert.equal(out.info.dstAddr, `${topo!.external}:8080`);
    assert.equal(out.info.dstService, undefined);
  });

  it('a DNS ServiceEntry endpoint known by hostname only is resolved on demand, from the pod, through DNS_UPSTREAM', async () => {
    const [apiVip] = topo!.dnsVips;
    const asked = resolver!.seen.length;
    const from = telemetry.records.length;
    const { data } = await roundTrip(await dial(nsA, apiVip!, 80), Buffer.alloc(0));
    // The IPv4 answer, as the VIP dialed is IPv4; and the connection leaves from A's own address.
    assert.equal(data.toString().replace('::ffff:', ''), `c saw ${topo!.ipA}`);
    const out = await telemetry.closed((r) => r.info.direction === 'outbound', from);
    assert.equal(out.error, undefined);
    assert.equal(out.info.mtls, false);
    assert.equal(out.info.dstAddr, `${topo!.ipC}:8080`);
    assert.equal(out.info.dstService?.hostname, 'api.example.test');
    assert.equal(out.info.dstWorkload?.name, 'api');
    // Both families asked over UDP; the marked sockets got past the capture rules to C.
    assert.deepEqual(resolver!.seen.slice(asked).sort(), ['udp A api.example.test', 'udp AAAA api.example.test']);

    // The answer's TTL (300 s) keeps it: the next connection asks nothing, and is counted all the same.
    const again = await roundTrip(await dial(nsA, apiVip!, 80), Buffer.alloc(0));
    assert.equal(again.data.toString().replace('::ffff:', ''), `c saw ${topo!.ipA}`);
    assert.equal(resolver!.seen.length, asked + 2);
    const metrics = await telemetry.inner.registry.metrics();
    assert.match(metrics, /# HELP istio_on_demand_dns_total The total number of requests that used on-demand DNS \(unstable\)/);
    const labels = [
      'source_workload="client"', 'source_canonical_service="client"', 'source_canonical_revision="v1"', `source_workload_namespace="${NS_A}"`,
      `source_principal="${ID_A}"`, 'source_app="client"', 'source_version="v1"', 'source_cluster="Kubernetes"', 'hostname="api.example.test"',
    ].join(',');
    assert.ok(metrics.includes(`istio_on_demand_dns_total{${labels}} 2`), metrics);
  });

  it('on-demand DNS asks again over TCP when the UDP answer is truncated', async () => {
    const asked = resolver!.seen.length;
    const { data } = await roundTrip(await dial(nsA, topo!.dnsVips[3]!, 80), Buffer.alloc(0));
    assert.equal(data.toString().replace('::ffff:', ''), `c saw ${topo!.ipA}`);
    assert.ok(resolver!.seen.slice(asked).includes('tcp A big.example.test'), resolver!.seen.join('\n'));
  });

  it('on-demand DNS failures: NXDOMAIN and an answer without records fail the connection with ztunnel\'s text', async () => {
    const [, missingVip, emptyVip] = topo!.dnsVips;
    const uid = (host: string) => `Kubernetes/networking.istio.io/ServiceEntry/${NS_B}/${host.split('.')[0]}/${host}`;
    const refused = async (vip: string) => {
      const from = telemetry.failures.length;
      // The proxy resets the connection, possibly before the client saw its connect complete.
      const res = await dial(nsA, vip, 80).then((s) => roundTrip(s, Buffer.from('x')), (e: Error) => ({ data: Buffer.alloc(0), error: e }));
      assert.equal(res.data.length, 0);
      return (await telemetry.failure((f) => f.info.direction === 'outbound' && f.info.dstAddr === `${vip}:80`, from)).error.message;
    };
    assert.equal(await refused(missingVip!), `no ip addresses were resolved for workload: ${uid('missing.example.test')}`);
    assert.ok(logLines.some((l) => l.includes('\twarn\t') && l.includes('dns lookup failed') && l.includes('missing.example.test')), logLines.join(''));
    // hickory turns a valid answer without records into an error too.
    assert.equal(await refused(emptyVip!), `no ip addresses were resolved for workload: ${uid('empty.example.test')}`);
    // The access log carries the failure, as for every connection refused before it is set up.
    assert.ok(logLines.some((l) => l.includes('connection failed') && l.includes(`no ip addresses were resolved for workload: ${uid('empty.example.test')}`)), logLines.join(''));
    // A failed resolution is counted too.
    assert.match(await telemetry.inner.registry.metrics(), /istio_on_demand_dns_total\{[^}]*hostname="missing\.example\.test"\} 1/);
  });

  it('DENY by principal refuses the connection with ztunnel\'s error text; an unmatched ALLOW too', async () => {
    try {
      setPolicies([policy(NS_B, 'deny-a', 'DENY', { principals: [{ exact: ID_A.slice('spiffe://'.length) }] })]);
      let from = telemetry.records.length;
      let res = await roundTrip(await dial(nsA, topo!.ipB, ECHO), Buffer.from('hello'));
      assert.equal(res.data.length, 0);
      let inbound = await telemetry.closed((r) => r.info.direction === 'inbound', from);
      assert.deepEqual(inbound.error, { message: `connection closed due to policy rejection: explicitly denied by: ${NS_B}/deny-a`, flag: 'DENY' });
      const outbound = await telemetry.closed((r) => r.info.direction === 'outbound', from);
      assert.equal(outbound.error?.message, 'http status: 401');

      setPolicies([policy(NS_B, 'allow-other', 'ALLOW', { principals: [{ exact: `${TD}/ns/other/sa/x` }] })], [`${NS_B}/deny-a`]);
      from = telemetry.records.length;
      res = await roundTrip(await dial(nsA, topo!.ipB, ECHO), Buffer.from('hello'));
      assert.equal(res.data.length, 0);
      inbound = await telemetry.closed((r) => r.info.direction === 'inbound', from);
      assert.equal(inbound.error?.message, 'connection closed due to policy rejection: allow policies exist, but none allowed');

      // An ALLOW for A's namespace on the echo port lets it through again.
      setPolicies([policy(NS_B, 'allow-other', 'ALLOW', { namespaces: [{ exact: NS_A }], destinationPorts: [ECHO] })]);
      res = await roundTrip(await dial(nsA, topo!.ipB, ECHO), Buffer.from('hello'));
      assert.equal(res.data.toString(), 'hello');
    } finally {
      setPolicies([], [`${NS_B}/deny-a`, `${NS_B}/allow-other`]);
    }
  });

  it('plaintext from an un-captured pod: refused under STRICT, accepted under PERMISSIVE', async () => {
    const strict = policy('istio-system', 'istio_converted_static_strict', 'DENY', { notPrincipals: [{ presence: {} }] }, 'GLOBAL');
    try {
      setPolicies([strict]);
      let from = telemetry.records.length;
      let res = await roundTrip(await dial(nsC, topo!.ipB, ECHO), Buffer.from('plain'));
      assert.equal(res.data.length, 0);
      const denied = await telemetry.closed((r) => r.info.direction === 'inbound', from);
      assert.equal(denied.info.mtls, false);
      assert.deepEqual(denied.error, {
        message: 'connection closed due to policy rejection: explicitly denied by: istio-system/istio_converted_static_strict',
        flag: 'DENY',
      });
      // HBONE from A still works under STRICT.
      res = await roundTrip(await dial(nsA, topo!.ipB, ECHO), Buffer.from('mtls'));
      assert.equal(res.data.toString(), 'mtls');

      setPolicies([], ['istio-system/istio_converted_static_strict']);
      from = telemetry.records.length;
      res = await roundTrip(await dial(nsC, topo!.ipB, ECHO), Buffer.from('plain'));
      assert.equal(res.data.toString(), 'plain');
      const ok = await telemetry.closed((r) => r.info.direction === 'inbound', from);
      assert.equal(ok.error, undefined);
      assert.equal(ok.info.srcIdentity, undefined);
      const who = await roundTrip(await dial(nsC, topo!.ipB, WHOAMI), Buffer.alloc(0));
      assert.equal(who.data.toString().replace('::ffff:', ''), topo!.ipC);
    } finally {
      setPolicies([], ['istio-system/istio_converted_static_strict']);
    }
  });

  it('a policy update closes live connections it now denies and leaves allowed ones open', async () => {
    try {
      const from = telemetry.records.length;
      const hbone = await dial(nsA, topo!.ipB, ECHO);
      const plain = await dial(nsC, topo!.ipB, ECHO);
      for (const s of [hbone, plain]) {
        s.write('ping');
        await new Promise<void>((r) => s.once('data', () => r()));
      }
      assert.ok(proxies[1]!.trackedConnections >= 2, 'both inbound connections are tracked');
      // A policy that only denies plaintext closes C's connection; A's mTLS one is re-checked and stays.
      setPolicies([policy(NS_B, 'deny-plain', 'DENY', { notPrincipals: [{ presence: {} }] })]);
      await whenClosed(plain);
      const plainRec = await telemetry.closed((r) => r.info.direction === 'inbound' && !r.info.mtls, from);
      assert.deepEqual(plainRec.error, { message: 'connection closed due to policy change', flag: 'DENY' });
      hbone.write('still');
      const echoed = await new Promise<string>((r) => hbone.once('data', (d) => r(d.toString())));
      assert.equal(echoed, 'still');

      setPolicies([policy(NS_B, 'deny-a', 'DENY', { namespaces: [{ exact: NS_A }] })]);
      await whenClosed(hbone);
      const hboneRec = await telemetry.closed((r) => r.info.direction === 'inbound' && r.info.mtls, from);
      assert.equal(hboneRec.error?.message, 'connection closed due to policy change');
      assert.ok(logLines.some((l) => l.includes("closed because it's no longer allowed after a policy update")));
    } finally {
      setPolicies([], [`${NS_B}/deny-plain`, `${NS_B}/deny-a`]);
    }
  });

  it('malformed HBONE requests get 400/503 and the proxy keeps serving', async () => {
    const cert = await secrets!.fetch(ID_RAW);
    const transport = await dial(nsC, topo!.ipB, 15008);
    const sock = tls.connect({ socket: transport, ...clientTlsOptions(cert, [ID_B]) });
    await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
    const session = http2.connect(`https://${topo!.ipB}:15008`, { createConnection: () => sock });
    session.on('error', () => {});
    try {
      const status = (headers: http2.OutgoingHttpHeaders) =>
        new Promise<number>((resolve, reject) => {
          const req = session.request(headers, { endStream: false });
          req.on('error', reject);
          req.once('response', (h) => {
            resolve(Number(h[':status']));
            req.close();
          });
        });
      const b = topo!.ipB;
      assert.equal(await status({ ':method': 'GET', ':path': '/', ':authority': `${b}:${ECHO}` }), 400);
      assert.equal(await status({ ':method': 'CONNECT', ':authority': 'no-port.example' }), 400);
      assert.equal(await status({ ':method': 'CONNECT', ':authority': `${topo!.ipA}:${ECHO}` }), 400);
      assert.equal(await status({ ':method': 'CONNECT', ':authority': `${b}:15008` }), 503);
      assert.equal(await status({ ':method': 'CONNECT', ':authority': `${b}:1` }), 503);
      // The same session still tunnels a good request.
      const tunnel = session.request({ ':method': 'CONNECT', ':authority': `${b}:${ECHO}` }, { endStream: false });
      const reply = await new Promise<string>((resolve, reject) => {
        tunnel.on('error', reject);
        tunnel.once('response', (h) => {
          assert.equal(Number(h[':status']), 200);
          tunnel.end('raw ok');
        });
        let got = '';
        tunnel.on('data', (d: Buffer) => (got += d.toString()));
        tunnel.on('end', () => resolve(got));
      });
      assert.equal(reply, 'raw ok');
      assert.ok(telemetry.failures.some((f) => f.error.message === 'expected method CONNECT, got GET'));
      assert.ok(telemetry.records.some((r) => r.error?.message === `ip mismatch: ${b} != ${topo!.ipA}`));
      assert.ok(telemetry.records.some((r) => r.error?.message === 'attempted recursive call to ourselves'));
      assert.ok(telemetry.records.some((r) => r.error?.flag === 'CONNECT' && r.error.message.startsWith('connection failed:')));
    } finally {
      session.destroy();
      sock.destroy();
    }
    // And ordinary traffic still flows.
    const { data } = await roundTrip(await dial(nsA, topo!.ipB, ECHO), Buffer.from('after'));
    assert.equal(data.toString(), 'after');
  });

  it('certificate rotation: new handshakes get the new certificate, open connections outlive the old one', async () => {
    const live = await dial(nsA, topo!.ipB, ECHO);
    live.write('before');
    await new Promise<void>((r) => live.once('data', () => r()));
    const old = await secrets!.fetch(ID_B);
    const rotated = await new Promise<WorkloadCertificate>((resolve) => {
      const off = secrets!.onRotate((c) => {
        if (c.identity === ID_B && c !== old) {
          off();
          resolve(c);
        }
      });
    });
    // Let the certificate the connection was made with expire.
    await new Promise((r) => setTimeout(r, Math.max(0, old.notAfter.getTime() - Date.now()) + 500));
    assert.ok(old.isExpired());
    live.write('after');
    const echoed = await new Promise<string>((r) => live.once('data', (d) => r(d.toString())));
    assert.equal(echoed, 'after');
    live.destroy();

    const client = await secrets!.fetch(ID_RAW);
    const transport = await dial(nsC, topo!.ipB, 15008);
    const sock = tls.connect({ socket: transport, ...clientTlsOptions(client, [ID_B]) });
    try {
      await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
      const served = sock.getPeerCertificate().fingerprint256;
      const current = await secrets!.fetch(ID_B);
      assert.notEqual(served, new X509Certificate(old.certPem).fingerprint256);
      assert.ok(
        [rotated, current].some((c) => new X509Certificate(c.certPem).fingerprint256 === served),
        'the server presented neither the rotated nor the current certificate',
      );
    } finally {
      sock.destroy();
    }
  });

  it('answers CONNECT with the destination\'s baggage, and labels an unknown (or gateway-relayed) source by the request\'s', async () => {
    const cert = await secrets!.fetch(ID_RAW);
    const transport = await dial(nsC, topo!.ipB, 15008);
    const sock = tls.connect({ socket: transport, ...clientTlsOptions(cert, [ID_B]) });
    await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
    const session = http2.connect(`https://${topo!.ipB}:15008`, { createConnection: () => sock });
    session.on('error', () => {});
    const sentBaggage = 'k8s.cluster.name=Other,k8s.namespace.name=edge,k8s.deployment.name=gw-client,service.name=gw,service.version=v7';
    /** One tunnel to B's echo; resolves with the 200's baggage once the tunnel is done. */
    const connect = (extra: http2.OutgoingHttpHeaders) =>
      new Promise<string | undefined>((resolve, reject) => {
        const req = session.request({ ':method': 'CONNECT', ':authority': `${topo!.ipB}:${ECHO}`, baggage: sentBaggage, ...extra }, { endStream: false });
        req.on('error', reject);
        let baggage: string | undefined;
        req.once('response', (h) => {
          assert.equal(Number(h[':status']), 200);
          baggage = h['baggage'] as string | undefined;
          req.end('hi');
        });
        req.on('data', () => undefined);
        req.on('end', () => resolve(baggage));
      });
    const inboundFromC = (from: number) =>
      telemetry.closed((r) => r.info.direction === 'inbound' && r.info.srcAddr.startsWith(`${topo!.ipC}:`), from);
    try {
      // C is no workload xDS knows: its baggage names the source.
      let from = telemetry.records.length;
      assert.equal(await connect({}), 'k8s.cluster.name=Kubernetes,k8s.namespace.name=tz-server,k8s.pod.name=server,service.name=server,service.version=v1');
      let labels = trafficLabels((await inboundFromC(from)).info);
      assert.deepEqual(
        [labels.source_workload, labels.source_canonical_service, labels.source_canonical_revision, labels.source_workload_namespace, labels.source_app, labels.source_version, labels.source_cluster, labels.source_principal],
        ['gw-client', 'gw', 'v7', 'edge', 'gw-client', 'v7', 'Other', ID_RAW],
      );
      assert.ok(logLines.some((l) => l.includes('connection complete') && l.includes('src.namespace="edge"') && !l.includes('src.workload=')), logLines.join(''));

      // Once C is known, xDS names it, unless the request says it crossed from another network.
      state.applyAddresses(new Map([['c', { workload: workload('c-known', NS_A, 'raw', topo!.ipC, 'NONE') }]]), []);
      from = telemetry.records.length;
      await connect({});
      assert.equal(trafficLabels((await inboundFromC(from)).info).source_workload, 'c-known');
      from = telemetry.records.length;
      await connect({ 'x-forwarded-network': 'remote-net' });
      labels = trafficLabels((await inboundFromC(from)).info);
      assert.equal(labels.source_workload, 'gw-client');
      assert.equal(labels.source_workload_namespace, 'edge');

      // ENABLE_RESPONSE_BAGGAGE=false: no baggage either way, as ztunnel (which then ignores the request's too).
      state.applyAddresses(new Map(), ['c']);
      config.enableResponseBaggage = false;
      from = telemetry.records.length;
      assert.equal(await connect({}), undefined);
      assert.equal(trafficLabels((await inboundFromC(from)).info).source_workload, 'unknown');
    } finally {
      config.enableResponseBaggage = true;
      state.applyAddresses(new Map(), ['c']);
      session.destroy();
      sock.destroy();
    }
  });

  it('every proxied connection was closed and recorded once both sides finished', async () => {
    const end = Date.now() + 5000;
    while (telemetry.records.some((r) => !r.closed) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const open = telemetry.records.filter((r) => !r.closed).map((r) => `${r.info.direction} ${r.info.srcAddr} -> ${r.info.dstAddr}`);
    assert.deepEqual(open, [], 'connections never reported as closed (a leaked copy)');
    assert.equal(proxies[1]!.trackedConnections, 0);
  });
});
