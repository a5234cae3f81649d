// The DNS proxy ztunnel runs in every captured pod on port 15053 (UDP and TCP). The capture rules redirect the pod's
// DNS traffic here; A/AAAA questions for Service hostnames known over xDS are answered locally (so names resolve to
// the mesh's view, including headless services' pod IPs), everything else is relayed byte for byte to the cluster
// resolver. Every socket this proxy owns in the pod carries the proxy mark 0x539, so the relayed query is not
// captured again and does not loop back to 15053.
import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import dnsPacket from 'dns-packet';
import { DNS_CAPTURE_PORT, INPOD_MARK } from '../cni/capture.js';
import type { PodNetns } from '../inpod/netns.js';
import { bytesToIp } from '../common/ip.js';
import type { Service, Workload } from '../xds/types.js';
import type { DnsMetrics } from './metrics.js';
import type { ProxyState } from './state.js';

/** TTL of locally answered records, as ztunnel's DNS server uses. */
export const DNS_TTL = 30;
/** How long a question relayed to the cluster resolver may wait for its answer. */
export const DNS_UPSTREAM_TIMEOUT_MS = 5000;
const HEADER_LEN = 12;
const QR = 0x8000;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
/** RFC 1035 limit for UDP answers without EDNS. */
const PLAIN_UDP_LIMIT = 512;
/** A TCP client that sends nothing for this long is dropped (RFC 7766 suggests tens of seconds). */
const TCP_IDLE_MS = 30_000;

export interface DnsLog {
  warn(message: string, fields?: Record<string, string | number>): void;
  debug(message: string, fields?: Record<string, string | number>): void;
}

export interface DnsProxyOptions {
  /** The captured pod's network namespace; all sockets are made in it. */
  netns: PodNetns;
  pod: { namespace: string };
  state: Pick<ProxyState, 'serviceByHostname' | 'endpointsOf'>;
  /** The cluster resolver, e.g. 10.96.0.10:53. */
  upstream: { host: string; port: number };
  log: DnsLog;
  /** Listen address inside the pod; the capture REDIRECT of locally sent packets lands on loopback. */
  host?: string;
  port?: number;
  /** Cluster DNS domain; default cluster.local. */
  domain?: string;
  mark?: number;
  upstreamTimeoutMs?: number;
  /** istio_dns_* series; absent, nothing is counted. */
  metrics?: DnsMetrics;
  /**
   * The pod's own workload (for the source labels of the DNS metrics), waiting a while for xDS to name it. Undefined
   * then: the query is answered SERVFAIL, as ztunnel answers a client it cannot identify.
   */
  localWorkload: () => Workload | undefined | Promise<Workload | undefined>;
}

type Transport = 'udp' | 'tcp';

/**
 * The Service a query name stands for, as ztunnel's find_server: for the name itself and what it expands to as a
 * Kubernetes short name, then the same for the name without each of the pod's search domains (`<pod ns>.svc.<domain>`,
 * `svc.<domain>`, `<domain>`), the Service with that hostname, else one whose wildcard host covers it, the most specific first (`a.b.example.com`:
 * `*.b.example.com`, then `*.example.com`, then `*.com`). A wildcard Service counts only with a VIP to answer.
 */
export function serviceForName(
  state: Pick<ProxyState, 'serviceByHostname'>,
  podNamespace: string,
  domain: string,
  queryName: string,
): Service | undefined {
  const host = queryName.toLowerCase().replace(/\.$/, '');
  const aliases = new Set([host, ...kubeFqdns(host, podNamespace, domain)]);
  // The name with one of the pod's search domains taken off, and what that expands to.
  for (const searchDomain of [`${podNamespace}.svc.${domain}`, `svc.${domain}`, domain]) {
    if (!host.endsWith(`.${searchDomain}`)) continue;
    const stripped = host.slice(0, -searchDomain.length - 1);
    aliases.add(stripped);
    for (const fqdn of kubeFqdns(stripped, podNamespace, domain)) aliases.add(fqdn);
  }
  for (const alias of aliases) {
    const exact = state.serviceByHostname(alias, podNamespace);
    if (exact) return exact;
    for (let dot = alias.indexOf('.'); dot >= 0 && dot < alias.length - 1; dot = alias.indexOf('.', dot + 1)) {
      const wildcard = state.serviceByHostname(`*${alias.slice(dot)}`, podNamespace);
      if (wildcard && wildcard.addresses.length > 0) return wildcard;
    }
  }
  return undefined;
}

/**
 * ztunnel's to_kube_fqdns: the Kubernetes names a short name may stand for (`svc` in the pod's namespace, `svc.ns`,
 * `svc.ns.svc`, and a pod's `host.subdomain[.ns[.svc]]`).
 */
function kubeFqdns(name: string, podNamespace: string, domain: string): string[] {
  const labels = name.split('.');
  switch (labels.length) {
    case 1:
      return [`${name}.${podNamespace}.svc.${domain}`];
    case 2:
      return [`${name}.svc.${domain}`, `${name}.${podNamespace}.svc.${domain}`];
    case 3:
      return labels[2] === 'svc' ? [`${name}.${domain}`, `${name}.svc.${domain}`] : [`${name}.svc.${domain}`];
    case 4:
      return labels[3] === 'svc' ? [`${name}.${domain}`] : [];
    default:
      return [];
  }
}

/** A reply with only a header (and no question): for queries too broken to echo. */
function headerOnlyReply(query: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER_LEN);
  query.copy(out, 0, 0, 2); // id
  out.writeUInt16BE(QR | (query.readUInt16BE(2) & 0x0100) | rcode, 2); // keep RD
  return out;
}

export class DnsProxy {
  private readonly tcpSockets = new Set<net.Socket>();
  private readonly upstream: DnsUpstream;
  private closed = false;

  private constructor(
    private readonly opts: Required<Omit<DnsProxyOptions, 'log' | 'metrics'>> & Pick<DnsProxyOptions, 'log' | 'metrics'>,
    readonly udp: dgram.Socket,
    readonly tcp: net.Server,
  ) {
    const { host, port } = opts.upstream;
    this.upstream = { netns: opts.netns, host, port, mark: opts.mark, timeoutMs: opts.upstreamTimeoutMs };
  }

  /**
   * Binds 15053 UDP and TCP inside the pod netns; bind errors (EADDRINUSE, …) reject naming the netns. SO_REUSEPORT
   * as on ztunnel's other in-pod listeners, so a replacement ztunnel binds while the old one still answers.
   */
  static async start(options: DnsProxyOptions): Promise<DnsProxy> {
    const opts = {
      host: '127.0.0.1',
      port: DNS_CAPTURE_PORT,
      domain: 'cluster.local',
      mark: INPOD_MARK,
      upstreamTimeoutMs: DNS_UPSTREAM_TIMEOUT_MS,
      ...options,
    };
    const udp = opts.netns.bindUdp(opts.port, { host: opts.host, mark: opts.mark, reuseport: true });
    let tcp: net.Server;
    try {
      tcp = opts.netns.listen(opts.port, { host: opts.host, mark: opts.mark, reuseport: true });
    } catch (err) {
      udp.close();
      throw err;
    }
    const proxy = new DnsProxy(opts, udp, tcp);
    udp.on('message', (msg, rinfo) => proxy.onUdp(msg, rinfo));
    // A send to a vanished client reports here; it concerns one query, never the proxy.
    udp.on('error', (err) => opts.log.debug('dns udp socket error', { error: err.message }));
    tcp.on('connection', (socket) => proxy.onTcp(socket));
    tcp.on('error', (err) => opts.log.warn('dns tcp listener error', { error: err.message }));
    return proxy;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const s of this.tcpSockets) s.destroy();
    return new Promise((resolve) => {
      this.udp.close();
      this.tcp.close(() => resolve());
    });
  }

  /** Answers one DNS message; undefined means "send nothing" (not a query, or too short to answer). */
  async handle(message: Buffer, transport: Transport): Promise<Buffer | undefined> {
    if (message.length < HEADER_LEN || (message.readUInt16BE(2) & QR) !== 0) return undefined;
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return headerOnlyReply(message, RCODE_FORMERR);
    }
    const question = query.questions?.length === 1 ? query.questions[0]! : undefined;
    if (!question) return headerOnlyReply(message, RCODE_FORMERR);
    const client = await this.opts.localWorkload();
    // As ztunnel, every question counts as a request; forwarded ones also count upstream (with their duration).
    const series = this.opts.metrics?.series(client, transport, question.type);
    series?.requests.inc();
    if (!client) {
      this.opts.log.debug('unknown source', { name: question.name });
      return this.reply(query, RCODE_SERVFAIL, []);
    }
    if ((question.type === 'A' || question.type === 'AAAA') && (question.class ?? 'IN') === 'IN') {
      const service = serviceForName(this.opts.state, this.opts.pod.namespace, this.opts.domain, question.name);
      if (service) return this.answer(query, question, service, transport);
    }
    series?.upstreamRequests.inc();
    const started = series ? performance.now() : 0;
    try {
      return await (transport === 'udp' ? exchangeUdp(this.upstream, message) : exchangeTcp(this.upstream, message));
    } catch (err) {
      series?.upstreamFailures.inc();
      this.opts.log.warn('dns upstream request failed', {
        name: question.name,
        upstream: `${this.opts.upstream.host}:${this.opts.upstream.port}`,
        error: (err as Error).message,
      });
      return this.reply(query, RCODE_SERVFAIL, []);
    } finally {
      series?.upstreamDuration.observe((performance.now() - started) / 1000);
    }
  }

  private answer(query: dnsPacket.DecodedPacket, question: dnsPacket.Question, service: Service, transport: Transport): Buffer {
    const family = question.type === 'A' ? 4 : 16;
    // A headless service has no VIP: its name resolves to the pods behind it.
    const raw = service.addresses.length > 0
      ? service.addresses.map((a) => a.address)
      : this.opts.state.endpointsOf(service).flatMap((e) => e.workload.addresses);
    const ips = [...new Set(raw.filter((b) => b.length === family).map(bytesToIp))];
    const answers: dnsPacket.Answer[] = ips.map((data) => ({ name: question.name, type: question.type as 'A' | 'AAAA', class: 'IN', ttl: DNS_TTL, data }));
    const full = this.reply(query, 0, answers, dnsPacket.AUTHORITATIVE_ANSWER);
    if (transport === 'tcp') return full;
    const opt = query.additionals?.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
    const limit = Math.max(PLAIN_UDP_LIMIT, opt?.udpPayloadSize ?? 0);
    // Too big for this UDP client: tell it to retry over TCP.
    return full.length <= limit ? full : this.reply(query, 0, [], dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.TRUNCATED_RESPONSE);
  }

  private reply(query: dnsPacket.DecodedPacket, rcode: number, answers: dnsPacket.Answer[], extraFlags = 0): Buffer {
    return dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | extraFlags | rcode,
      questions: query.questions,
      answers,
    });
  }

  private onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.handle(msg, 'udp').then(
      (reply) => {
        if (reply && !this.closed) this.udp.send(reply, rinfo.port, rinfo.address);
      },
      (err: Error) => this.opts.log.warn('dns query failed', { client: `${rinfo.address}:${rinfo.port}`, error: err.message }),
    );
  }

  private onTcp(socket: net.Socket): void {
    this.tcpSockets.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.tcpSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // RFC 1035 §4.2.2: each message is preceded by its two-byte length; a client may pipeline several.
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const len = pending.readUInt16BE(0);
        const message = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        this.handle(Buffer.from(message), 'tcp').then(
          (reply) => {
            if (!reply || socket.destroyed) return;
            const frame = Buffer.allocUnsafe(2 + reply.length);
            frame.writeUInt16BE(reply.length, 0);
            reply.copy(frame, 2);
            socket.write(frame);
          },
          (err: Error) => {
            this.opts.log.warn('dns query failed', { client: `${socket.remoteAddress}:${socket.remotePort}`, error: err.message });
            socket.destroy();
          },
        );
      }
    });
  }
}

/** The cluster resolver as seen from one pod: dialed from inside the pod's netns with the proxy mark. */
export interface DnsUpstream {
  netns: PodNetns;
  host: string;
  port: number;
  mark: number;
  timeoutMs: number;
}

/** Sends one DNS message to the upstream over UDP and resolves with the reply that carries its id. */
export function exchangeUdp(upstream: DnsUpstream, message: Buffer): Promise<Buffer> {
  const { host, port, timeoutMs } = upstream;
  // A socket per exchange: a fresh source port, and no reply to an earlier query can be taken for this one's.
  const socket = upstream.netns.bindUdp(0, { host: net.isIPv6(host) ? '::' : '0.0.0.0', mark: upstream.mark });
  return new Promise<Buffer>((resolve, reject) => {
    let finished = false;
    const done = (err: Error | undefined, reply?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (err) => done(err));
    socket.on('message', (reply) => {
      // Only the answer to this query counts; stray datagrams are ignored until the timeout.
      if (reply.length >= 2 && reply.readUInt16BE(0) === message.readUInt16BE(0)) done(undefined, reply);
    });
    socket.send(message, port, host, (err) => {
      if (err) done(err);
    });
  });
}

/** Sends one DNS message to the upstream over TCP (RFC 1035 §4.2.2 framing) and resolves with the reply. */
export async function exchangeTcp(upstream: DnsUpstream, message: Buffer): Promise<Buffer> {
  const { host, port, timeoutMs } = upstream;
  const socket = await upstream.netns.connect(host, port, { mark: upstream.mark, timeoutMs });
  return new Promise<Buffer>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, reply?: Buffer) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('error', (err) => done(err));
    socket.on('end', () => done(new Error('upstream closed the connection before answering')));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
        done(undefined, received.subarray(2, 2 + received.readUInt16BE(0)));
      }
    });
    const frame = Buffer.allocUnsafe(2 + message.length);
    frame.writeUInt16BE(message.length, 0);
    message.copy(frame, 2);
    socket.write(frame);
  });
}
