// Shared fixture for the in-pod socket and capture e2e tests: two network namespaces joined by a veth
// pair, standing in for a pod and a peer. All addresses live only inside these namespaces.
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';

export function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    // A command that exits without reading stdin makes the write fail with EPIPE; its exit status
    // already tells the story.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** Runs a command inside the named netns. */
export function inNetns(netns: string, cmd: string, args: string[], input?: string): Promise<string> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], input);
}

export interface PodPair {
  /** Unique prefix of everything created ("tf" + random hex). */
  tag: string;
  pod: string;
  peer: string;
  podIp4: string;
  peerIp4: string;
  podIp6: string;
  peerIp6: string;
  /** Deletes both namespaces (and with them the veth pair); safe to call twice. */
  cleanup(): Promise<void>;
}

export async function createPodPair(): Promise<PodPair> {
  const tag = `tf${randomBytes(3).toString('hex')}`;
  const pod = `${tag}-pod`;
  const peer = `${tag}-peer`;
  const net3 = randomInt(256);
  const base = randomInt(64) * 4;
  const podIp4 = `10.250.${net3}.${base + 1}`;
  const peerIp4 = `10.250.${net3}.${base + 2}`;
  // No leading zero in the group: the kernel reports addresses in canonical form (`0a96` prints as `a96`).
  const prefix6 = `fd00:250:${(0x1000 + randomInt(0xf000)).toString(16)}`;
  const podIp6 = `${prefix6}::1`;
  const peerIp6 = `${prefix6}::2`;
  const created: string[] = [];
  const cleanup = async (): Promise<void> => {
    for (const ns of created.splice(0)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    for (const ns of [pod, peer]) {
      await run('ip', ['netns', 'add', ns]);
      created.push(ns);
    }
    await run('ip', ['link', 'add', `${tag}p`, 'netns', pod, 'type', 'veth', 'peer', 'name', `${tag}q`, 'netns', peer]);
    for (const [ns, dev, ip4, ip6] of [[pod, `${tag}p`, podIp4, podIp6], [peer, `${tag}q`, peerIp4, peerIp6]] as const) {
      const script = [
        'set -e',
        'ip link set lo up',
        // No duplicate address detection: a tentative link-local address delays the first IPv6 SYN by 1 s.
        `echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad`,
        `echo 0 > /proc/sys/net/ipv6/conf/${dev}/accept_dad`,
        `ip addr add ${ip4}/30 dev ${dev}`,
        `ip -6 addr add ${ip6}/64 dev ${dev} nodad`,
        `ip link set ${dev} up`,
      ].join('\n');
      await inNetns(ns, 'sh', ['-c', script]);
    }
    // The kernel activates a veth's queue asynchronously (linkwatch, up to 1 s after carrier); packets
    // sent before that are dropped, which would cost the first SYN a 1 s retransmit.
    for (const [ns, dev] of [[pod, `${tag}p`], [peer, `${tag}q`]] as const) {
      const wait = `for i in $(seq 100); do ip -o link show dev ${dev} | grep -q 'state UP' && exit 0; sleep 0.02; done; exit 1`;
      await inNetns(ns, 'sh', ['-c', wait]).catch(() => {
        throw new Error(`veth ${dev} in netns ${ns} did not come up within 2 s`);
      });
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { tag, pod, peer, podIp4, peerIp4, podIp6, peerIp6, cleanup };
}

/** Collects a server's connections so a test can await the next one (or see that none came). */
export class Accepted {
  /** Every connection ever accepted. */
  readonly sockets: net.Socket[] = [];
  private unclaimed: net.Socket[] = [];
  private waiters: ((s: net.Socket) => void)[] = [];

  constructor(readonly server: net.Server, reply?: string) {
    server.on('connection', (socket) => {
      socket.on('error', () => undefined);
      if (reply !== undefined) socket.end(reply);
      this.sockets.push(socket);
      const waiter = this.waiters.shift();
      if (waiter) waiter(socket);
      else this.unclaimed.push(socket);
    });
  }

  /** The oldest connection not yet returned by next(). */
  next(timeoutMs = 5000): Promise<net.Socket> {
    const ready = this.unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (s: net.Socket): void => {
        clearTimeout(timer);
        resolve(s);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The next datagram a socket receives, as text with its sender's address. */
export function nextMessage(socket: dgram.Socket, timeoutMs = 3000): Promise<{ text: string; from: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`no datagram within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
      clearTimeout(timer);
      resolve({ text: msg.toString(), from: rinfo.address });
    };
    socket.once('message', onMessage);
  });
}

/** Reads a socket to its end. */
export function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.once('end', () => resolve(data));
    socket.once('error', reject);
  });
}

/** Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d. */
export function plainAddress(address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}
