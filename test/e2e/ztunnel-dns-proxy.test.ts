// The DNS proxy inside a real pod netns with Istio's capture rules installed: the test client sends ordinary DNS
// to the cluster resolver's address, the capture rules bring it to 15053, and forwarded queries must leave with the
// proxy mark (otherwise they would be captured again and time out). The "cluster resolver" is a small DNS server
// in a second netns joined by a veth pair. Everything is created under the prefix `td<random>` and removed after.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { installCapture } from '../../src/cni/capture.js';
import { PodNetns } from '../../src/inpod/netns.js';
import { ipToBytes } from '../../src/common/ip.js';
import type { Address, Service, Workload } from '../../src/xds/types.js';
import { DnsProxy } from '../../src/ztunnel/dns.js';
import { ProxyState } from '../../src/ztunnel/state.js';
import { inNetns, run } from './inpod-fixture.js';
import { serveDns } from '../support/dns-server.js';

const tag = `td${randomBytes(3).toString('hex')}`;
const podNs = `${tag}-pod`;
const dnsNs = `${tag}-dns`;
const net3 = randomInt(256);
const podIp = `10.249.${net3}.1`;
const resolverIp = `10.249.${net3}.2`;
const UPSTREAM_ANSWER = '192.0.2.10'; // TEST-NET-1: only ever data in an answer, never dialled

function workload(name: string, ip: string, serviceKey: string): Address {
  const w: Partial<Workload> = {
    uid: `Kubernetes//Pod/apps/${name}`,
    name,
    namespace: 'apps',
    addresses: [ipToBytes(ip)!],
    tunnelProtocol: 'HBONE',
    services: { [serviceKey]: { ports: [{ servicePort: 5432, targetPort: 5432 }] } },
    status: 'HEALTHY',
  };
  return { workload: w as Workload };
}

function service(name: string, vips: string[]): Address {
  const s: Service = {
    name,
    namespace: 'apps',
    hostname: `${name}.apps.svc.cluster.local`,
    addresses: vips.map((ip) => ({ network: '', address: ipToBytes(ip)! })),
    ports: [{ servicePort: 80, targetPort: 8080 }],
    subjectAltNames: [],
  };
  return { service: s };
}

/** The cluster resolver stand-in: answers every A question with UPSTREAM_ANSWER, over UDP and TCP. */
class Upstream {
  readonly seen: string[] = [];
  constructor(readonly udp: dgram.Socket, readonly tcp: net.Server) {
    serveDns(udp, tcp, (msg, transport) => this.answer(msg, transport));
  }
  private answer(msg: Buffer, transport: string): Buffer {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    this.seen.push(`${transport} ${question.name}`);
    return dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
      answers: [{ name: question.name, type: 'A', class: 'IN', ttl: 300, data: UPSTREAM_ANSWER }],
    });
  }
}

describe('ztunnel DNS proxy in a captured pod netns', { timeout: 60_000 }, () => {
  let pod: PodNetns;
  let resolverNetns: PodNetns;
  let upstream: Upstream;
  let upstreamUdpClosed = false;
  // The pod is named in xDS (ztunnel answers only clients it can identify); one test takes that away.
  let clientKnown = true;
  let proxy: DnsProxy;
  let client: dgram.Socket;
  const state = new ProxyState();
  const warnings: string[] = [];

  before(async () => {
    await run('ip', ['netns', 'add', podNs]);
    await run('ip', ['netns', 'add', dnsNs]);
    await run('ip', ['link', 'add', `${tag}p`, 'netns', podNs, 'type', 'veth', 'peer', 'name', `${tag}q`, 'netns', dnsNs]);
    for (const [ns, dev, ip] of [[podNs, `${tag}p`, podIp], [dnsNs, `${tag}q`, resolverIp]] as const) {
      await inNetns(ns, 'sh', ['-c', `set -e; ip link set lo up; ip addr add ${ip}/30 dev ${dev}; ip link set ${dev} up`]);
    }
    await installCapture(podNs);
    resolverNetns = PodNetns.open(dnsNs);
    upstream = new Upstream(resolverNetns.bindUdp(53, { host: resolverIp }), resolverNetns.listen(53, { host: resolverIp }));
    state.applyAddresses(
      new Map([
        ['apps/echo.apps.svc.cluster.local', service('echo', ['10.96.5.5', 'fd00:96::5'])],
        ['apps/db.apps.svc.cluster.local', service('db', [])],
        ['db-0', workload('db-0', '10.244.1.7', 'apps/db.apps.svc.cluster.local')],
        ['db-1', workload('db-1', '10.244.1.8', 'apps/db.apps.svc.cluster.local')],
        ['client', workload('client', podIp, 'apps/echo.apps.svc.cluster.local')],
      ]),
      [],
    );
    pod = PodNetns.open(podNs);
    proxy = await DnsProxy.start({
      netns: pod,
      pod: { namespace: 'default' },
      state,
      upstream: { host: resolverIp, port: 53 },
      log: { warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f)}`), debug: () => undefined },
      upstreamTimeoutMs: 700,
      localWorkload: () => (clientKnown ? state.workloadByName('apps', 'client') : undefined),
    });
    // An app socket: no mark, so the capture rules apply to it.
    client = pod.bindUdp(0, { host: '0.0.0.0' });
  });

  after(async () => {
    try {
      client?.close();
      await proxy?.close();
      if (!upstreamUdpClosed) upstream?.udp.close();
      upstream?.tcp.close();
      pod?.close();
      resolverNetns?.close();
    } finally {
      // Deleting the namespaces also removes the veth pair and the capture rules in them.
      for (const ns of [podNs, dnsNs]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  });

  /** Sends raw bytes as the app would (to the resolver, port 53) and waits for one datagram back, or undefined. */
  function exchange(payload: Buffer, waitMs = 3000): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        client.off('message', onMessage);
        resolve(undefined);
      }, waitMs);
      const onMessage = (msg: Buffer) => {
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(msg);
      };
      client.on('message', onMessage);
      client.send(payload, 53, resolverIp);
    });
  }

  let nextId = 1;
  async function query(name: string, type: 'A' | 'AAAA' = 'A'): Promise<dnsPacket.DecodedPacket> {
    const id = nextId++;
    const reply = await exchange(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }));
    assert.ok(reply, `no answer for ${name}`);
    const decoded = dnsPacket.decode(reply);
    assert.equal(decoded.id, id);
    return decoded;
  }
  const ips = (p: dnsPacket.DecodedPacket) => answers(p).map((a) => a.data).sort();
  // dns-packet decodes rcode and typed answers, its type definitions do not carry them.
  const answers = (p: dnsPacket.DecodedPacket) => (p.answers ?? []) as dnsPacket.StringAnswer[];
  const rcode = (p: dnsPacket.DecodedPacket) => (p as unknown as { rcode: string }).rcode;

  it('answers a Service hostname from xDS itself, authoritative with TTL 30', async () => {
    const before = upstream.seen.length;
    const r = await query('echo.apps.svc.cluster.local');
    assert.equal(rcode(r), 'NOERROR');
    assert.equal(r.flag_aa, true);
    assert.deepEqual(ips(r), ['10.96.5.5']);
    assert.equal(answers(r)[0]!.ttl, 30);
    assert.equal(r.answers![0]!.name, 'echo.apps.svc.cluster.local');
    assert.deepEqual(r.questions, [{ name: 'echo.apps.svc.cluster.local', type: 'A', class: 'IN' }]);
    assert.equal(upstream.seen.length, before, 'not forwarded');
    assert.deepEqual(ips(await query('echo.apps.svc.cluster.local', 'AAAA')), ['fd00:96::5']);
  });

  it('answers a short name expanded with the pod namespace search domain', async () => {
    // `echo.apps` asked from a pod in `default`: the resolver tries echo.apps.default.svc.cluster.local first.
    const r = await query('echo.apps.default.svc.cluster.local');
    assert.deepEqual(ips(r), ['10.96.5.5']);
    assert.equal(r.answers![0]!.name, 'echo.apps.default.svc.cluster.local');
  });

  it('resolves a headless Service to its pod IPs', async () => {
    assert.deepEqual(ips(await query('db.apps.svc.cluster.local')), ['10.244.1.7', '10.244.1.8']);
    const v6 = await query('db.apps.svc.cluster.local', 'AAAA');
    assert.equal(rcode(v6), 'NOERROR');
    assert.deepEqual(v6.answers, [], 'known name without IPv6 addresses: empty answer, not forwarded');
  });

  it('forwards other names to the cluster resolver with the proxy mark and relays the answer', async () => {
    const r = await query('example.org');
    assert.deepEqual(ips(r), [UPSTREAM_ANSWER]);
    assert.equal(answers(r)[0]!.ttl, 300, 'the upstream answer, byte for byte');
    assert.equal(upstream.seen.at(-1), 'udp example.org');
    // Unknown names in the cluster domain are the resolver's business too.
    await query('nope.apps.svc.cluster.local');
    assert.equal(upstream.seen.at(-1), 'udp nope.apps.svc.cluster.local');
  });

  it('serves DNS over TCP, locally and forwarded', async () => {
    const tcpQuery = async (name: string): Promise<dnsPacket.DecodedPacket> => {
      const socket = await pod.connect(resolverIp, 53, { timeoutMs: 3000 });
      try {
        const msg = dnsPacket.encode({ type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
        const frame = Buffer.alloc(2 + msg.length);
        frame.writeUInt16BE(msg.length);
        msg.copy(frame, 2);
        socket.write(frame);
        let got = Buffer.alloc(0);
        for await (const chunk of socket) {
          got = Buffer.concat([got, chunk as Buffer]);
          if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) break;
        }
        return dnsPacket.decode(got.subarray(2, 2 + got.readUInt16BE(0)));
      } finally {
        socket.destroy();
      }
    };
    assert.deepEqual(ips(await tcpQuery('echo.apps.svc.cluster.local')), ['10.96.5.5']);
    assert.deepEqual(ips(await tcpQuery('example.net')), [UPSTREAM_ANSWER]);
    assert.equal(upstream.seen.at(-1), 'tcp example.net');
  });

  it('ignores garbage, answers a broken query with FORMERR, and keeps serving', async () => {
    assert.equal(await exchange(Buffer.from([1, 2, 3, 4, 5]), 400), undefined);
    const broken = Buffer.concat([Buffer.from([0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]), Buffer.from([0x3f, 0x61])]);
    const formerr = await exchange(broken);
    assert.ok(formerr);
    assert.equal(formerr.readUInt16BE(0), 0xbeef);
    assert.equal(formerr.readUInt16BE(2) & 0x800f, 0x8001, 'QR set, rcode FORMERR');
    assert.deepEqual(ips(await query('echo.apps.svc.cluster.local')), ['10.96.5.5']);
  });

  it('answers SERVFAIL to a client xDS does not name, mesh names included, and forwards nothing', async () => {
    clientKnown = false;
    try {
      const before = upstream.seen.length;
      for (const name of ['echo.apps.svc.cluster.local', 'example.org']) assert.equal(rcode(await query(name)), 'SERVFAIL', name);
      assert.equal(upstream.seen.length, before);
    } finally {
      clientKnown = true;
    }
    assert.deepEqual(ips(await query('echo.apps.svc.cluster.local')), ['10.96.5.5']);
  });

  it('answers SERVFAIL when the cluster resolver is down, and still answers mesh names', async () => {
    upstreamUdpClosed = true;
    await new Promise<void>((resolve) => upstream.udp.close(() => resolve()));
    const r = await query('example.com');
    assert.equal(rcode(r), 'SERVFAIL');
    assert.deepEqual(r.questions, [{ name: 'example.com', type: 'A', class: 'IN' }]);
    assert.ok(warnings.some((w) => w.startsWith('dns upstream request failed') && w.includes('example.com')), warnings.join('\n'));
    assert.deepEqual(ips(await query('echo.apps.svc.cluster.local')), ['10.96.5.5']);
  });
});
