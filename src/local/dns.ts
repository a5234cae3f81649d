// The cluster DNS: answers A queries for `<service>.<namespace>.svc.cluster.local` with the Service's cluster IP
// (headless Services: the ready pods' IPs). Short names work through the search path in every pod's resolv.conf.
// There is no upstream to forward to, so every other name is NXDOMAIN.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import { CLUSTER_DOMAIN } from './layout.js';

/** Fully qualified name (lowercase, no trailing dot) → IPv4 addresses. */
export type DnsRecords = Record<string, string[]>;

const TTL_SECONDS = 5;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;

export function serviceFqdn(service: string, namespace: string): string {
  return `${service}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** The search path Kubernetes gives pods of `namespace`. */
export function resolvConf(namespace: string, nameserver: string): string {
  return [
    `search ${namespace}.svc.${CLUSTER_DOMAIN} svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}`,
    `nameserver ${nameserver}`,
    'options ndots:5',
    '',
  ].join('\n');
}

export class DnsResponder {
  private records = new Map<string, string[]>();
  private parents = new Set<string>();

  setRecords(records: DnsRecords): void {
    this.records = new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase(), v]));
    // Names that exist only because something lives below them (e.g. `svc.cluster.local`) answer NODATA, not
    // NXDOMAIN, which would tell resolvers the whole subtree is empty.
    this.parents = new Set();
    for (const name of this.records.keys()) {
      const labels = name.split('.');
      for (let i = 1; i < labels.length; i++) this.parents.add(labels.slice(i).join('.'));
    }
  }

  /** Builds the response to one DNS message; undefined when the message cannot even be parsed. */
  answer(message: Buffer): Buffer | undefined {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return undefined;
    }
    const base = { id: query.id, type: 'response' as const, questions: query.questions };
    const rd = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    const q = query.questions?.[0];
    if (!q || query.type !== 'query') return dnsPacket.encode({ ...base, flags: rd | RCODE_FORMERR });
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const ips = this.records.get(name);
    if (!ips && !this.parents.has(name)) {
      return dnsPacket.encode({ ...base, flags: dnsPacket.AUTHORITATIVE_ANSWER | rd | RCODE_NXDOMAIN });
    }
    const answers =
      q.type === 'A' && ips ? ips.map((ip) => ({ type: 'A' as const, class: 'IN' as const, name: q.name, ttl: TTL_SECONDS, data: ip })) : [];
    return dnsPacket.encode({ ...base, flags: dnsPacket.AUTHORITATIVE_ANSWER | rd, answers });
  }
}

/** Serves a DnsResponder on UDP and TCP port 53 (TCP for clients that retry there). */
export class DnsServer {
  private udp: Socket | undefined;
  private tcp: Server | undefined;
  constructor(readonly responder: DnsResponder) {}

  async listen(address: string, port = 53): Promise<void> {
    const udp = createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      const reply = this.responder.answer(msg);
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    });
    udp.on('error', (err) => process.stderr.write(`dns: udp ${address}:${port}: ${err.message}\n`));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
    const tcp = createServer((conn) => {
      let buffered = Buffer.alloc(0);
      conn.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const len = buffered.readUInt16BE(0);
          const reply = this.responder.answer(buffered.subarray(2, 2 + len));
          buffered = buffered.subarray(2 + len);
          if (!reply) {
            conn.destroy();
            return;
          }
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          conn.write(framed);
        }
      });
      conn.on('error', () => undefined); // A client resetting its connection is not our problem.
      conn.setTimeout(10_000, () => conn.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, address, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.tcp = tcp;
  }

  close(): void {
    this.udp?.close();
    this.tcp?.close();
  }
}
