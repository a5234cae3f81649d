// Sockets inside a pod's network namespace, handed to Node's event loop.
//
// ztunnel runs in the node's netns but owns listeners and upstream sockets inside every captured pod's
// netns. PodNetns keeps the pod's netns fd open (so the pod can be addressed even after its name is
// gone) and creates sockets there through the native addon; the returned net.Server / net.Socket are
// ordinary Node objects.
import dgram from 'node:dgram';
import net from 'node:net';
import { isAbsolute, join } from 'node:path';
import { native, type NativeError, type OriginalDst } from './native.js';

/** Where `ip netns add NAME` mounts named namespaces. */
export const NETNS_RUN_DIR = '/run/netns';

/** A netns name (`ip netns` style) or an absolute path such as /proc/PID/ns/net. */
export function netnsPath(nameOrPath: string): string {
  if (isAbsolute(nameOrPath)) return nameOrPath;
  if (nameOrPath === '' || nameOrPath.includes('/') || nameOrPath === '.' || nameOrPath === '..') {
    throw new Error(`invalid network namespace name '${nameOrPath}': use a name under ${NETNS_RUN_DIR} or an absolute path`);
  }
  return join(NETNS_RUN_DIR, nameOrPath);
}

export interface PodListenOptions {
  /** Address inside the pod netns; default '::' (dual-stack: IPv4 arrives as ::ffff:a.b.c.d). */
  host?: string;
  /** SO_MARK for the listener; accepted sockets inherit it. ztunnel marks everything 0x539. */
  mark?: number;
  backlog?: number;
  reuseport?: boolean;
  transparent?: boolean;
}

export type PodBindUdpOptions = Omit<PodListenOptions, 'backlog'>;

export interface PodConnectOptions {
  mark?: number;
  /** Local address to bind; with `transparent` (+`freebind`) it may be a foreign address (source spoofing). */
  bindHost?: string;
  bindPort?: number;
  transparent?: boolean;
  freebind?: boolean;
  /** Abort the connect after this many milliseconds with an ETIMEDOUT error. */
  timeoutMs?: number;
}

/**
 * Sockets made ahead per netns and family. A socket in another netns costs a helper thread and a setns(), about
 * 0.5 ms under load, which capped new connections per second; made in batches the cost per connection is a few µs.
 */
const SPARE_SOCKET_BATCH = 16;

export class PodNetns {
  private netnsFd: number;
  private readonly spares: Record<4 | 6, number[]> = { 4: [], 6: [] };

  private constructor(readonly path: string, fd: number) {
    this.netnsFd = fd;
  }

  /** Opens a netns by name (/run/netns/NAME) or absolute path; throws ENOENT/EINVAL naming the path. */
  static open(nameOrPath: string): PodNetns {
    const path = netnsPath(nameOrPath);
    return new PodNetns(path, native().openNetns(path));
  }

  /** The open netns fd (for handing on, e.g. to ZDS); -1 after close(). */
  get fd(): number {
    return this.netnsFd;
  }

  /**
   * A net.Server already listening on host:port inside the netns. Bind errors (EADDRINUSE, ...) are
   * thrown synchronously, before any server exists.
   */
  listen(port: number, opts: PodListenOptions = {}): net.Server {
    const host = opts.host ?? '::';
    // SO_REUSEADDR as Node sets it on its own listeners: a restarted proxy can rebind while old
    // connections linger in TIME_WAIT.
    const fd = this.call((netnsFd) =>
      native().listenTcp(netnsFd, host, port, {
        mark: opts.mark, backlog: opts.backlog, reuseport: opts.reuseport, reuseaddr: true, transparent: opts.transparent,
      }));
    const server = net.createServer();
    // Node adopts the fd (uv_tcp_open) and calls listen() again with the same backlog; the server owns
    // and closes the fd from here on.
    server.listen({ fd, backlog: opts.backlog });
    return server;
  }

  /**
   * A dgram socket bound to host:port inside the netns (e.g. the DNS proxy on 15053), ready to use on
   * return: adopting a bound fd emits 'listening' synchronously, before a caller could listen for it.
   * Bind errors are thrown synchronously.
   */
  bindUdp(port: number, opts: PodBindUdpOptions = {}): dgram.Socket {
    const host = opts.host ?? '::';
    const fd = this.call((netnsFd) =>
      native().bindUdp(netnsFd, host, port, { mark: opts.mark, reuseport: opts.reuseport, transparent: opts.transparent }));
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket.bind({ fd });
    return socket;
  }

  /**
   * Connects to host:port (an IP literal) from inside the netns. The addon makes an unconnected socket
   * (mark, transparent, bind applied); net.Socket adopts it and performs the connect itself, so the
   * 'connect' event, ECONNREFUSED with address and timeouts behave as for any Node socket.
   */
  connect(host: string, port: number, opts: PodConnectOptions = {}): Promise<net.Socket> {
    const family = net.isIP(host);
    if (family === 0) {
      return Promise.reject(new Error(`connect in netns ${this.path}: '${host}' is not an IP address`));
    }
    let fd: number;
    try {
      const spare = this.spareSocket(family as 4 | 6);
      fd = this.call(() =>
        native().prepareConnect(spare, family as 4 | 6, {
          mark: opts.mark, bindHost: opts.bindHost, bindPort: opts.bindPort,
          transparent: opts.transparent, freebind: opts.freebind,
        }));
    } catch (err) {
      return Promise.reject(err);
    }
    const socket = new net.Socket({ fd, readable: true, writable: true });
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        err.message = `${err.message} in netns ${this.path}`;
        reject(err);
      };
      socket.once('error', fail);
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const err: NodeJS.ErrnoException = new Error(`connect ETIMEDOUT ${host}:${port} after ${opts.timeoutMs} ms`);
          err.code = 'ETIMEDOUT';
          fail(err);
        }, opts.timeoutMs);
      }
      socket.connect({ host, port }, () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(socket);
      });
    });
  }

  /** Closes the netns fd and the spare sockets. Sockets in use stay valid (a socket keeps its netns alive). */
  close(): void {
    if (this.netnsFd < 0) return;
    const fd = this.netnsFd;
    this.netnsFd = -1;
    for (const spare of [...this.spares[4].splice(0), ...this.spares[6].splice(0)]) native().closeFd(spare);
    native().closeFd(fd);
  }

  // A fresh TCP socket in this netns from the spares, refilled a batch at a time.
  private spareSocket(family: 4 | 6): number {
    const spares = this.spares[family];
    if (spares.length === 0) spares.push(...this.call((netnsFd) => native().tcpSockets(netnsFd, family, SPARE_SOCKET_BATCH)));
    return spares.pop()!;
  }

  // Runs an addon call with the live netns fd. Addon errors name the netns by fd; say which it was.
  private call<T>(fn: (netnsFd: number) => T): T {
    const netnsFd = this.netnsFd;
    if (netnsFd < 0) throw new Error(`network namespace ${this.path} is closed`);
    try {
      return fn(netnsFd);
    } catch (err) {
      const e = err as NativeError;
      const byFd = `netns fd ${netnsFd}`;
      e.message = e.message.includes(byFd) ? e.message.replace(byFd, this.path) : `${e.message} in netns ${this.path}`;
      throw e;
    }
  }
}

/**
 * The fd of a connected or accepted net.Socket (Node keeps it on the libuv handle as `_handle.fd`;
 * there is no public accessor). Throws if the socket has no open fd (destroyed, or not a TCP socket).
 */
export function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new Error('socket has no file descriptor (already closed, or not a TCP socket)');
  }
  return fd;
}

/** The destination the client dialled before the capture rules redirected it to 15001/15006. */
export function originalDst(socket: net.Socket): OriginalDst {
  return native().originalDst(socketFd(socket));
}

export function getSocketMark(socket: net.Socket): number {
  return native().getMark(socketFd(socket));
}

export function setSocketMark(socket: net.Socket, mark: number): void {
  native().setMark(socketFd(socket), mark);
}
