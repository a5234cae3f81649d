// Typed loader for the C addon in native/ (built by `npm install` into build/Release/).
// The addon only creates and configures sockets; Node's event loop does all I/O on the fds it returns.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type IpFamily = 4 | 6;

export interface SocketOptions {
  /** SO_MARK; needs CAP_NET_ADMIN. */
  mark?: number;
  reuseport?: boolean;
  reuseaddr?: boolean;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: bind non-local addresses and receive TPROXY/connmark-routed replies. */
  transparent?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND. */
  freebind?: boolean;
  nonblocking?: boolean;
}

export interface ListenOptions {
  mark?: number;
  /** Default 511, as in Node. */
  backlog?: number;
  reuseport?: boolean;
  reuseaddr?: boolean;
  transparent?: boolean;
}

export type BindUdpOptions = Omit<ListenOptions, 'backlog'>;

export interface ConnectOptions {
  mark?: number;
  bindHost?: string;
  bindPort?: number;
  transparent?: boolean;
  freebind?: boolean;
}

export interface OriginalDst {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** Errors thrown by the addon: `.code` is the errno name, `.syscall` the failing call. */
export interface NativeError extends Error {
  code: string;
  syscall?: string;
}

export interface NativeAddon {
  /** Opens a network namespace file (O_RDONLY|O_CLOEXEC); rejects files that are not a netns. */
  openNetns(path: string): number;
  closeFd(fd: number): void;
  /** Creates a socket inside the netns (-1: the current one) from a short-lived helper thread. */
  socketInNetns(netnsFd: number, family: IpFamily, type: 'tcp' | 'udp', opts?: SocketOptions): number;
  /** A bound, listening, non-blocking TCP socket. */
  listenTcp(netnsFd: number, host: string, port: number, opts?: ListenOptions): number;
  /** A bound, non-blocking UDP socket (dgram can adopt an fd but not bind it). */
  bindUdp(netnsFd: number, host: string, port: number, opts?: BindUdpOptions): number;
  /** `count` (1..256) new TCP sockets in the netns, made in one helper-thread trip, for prepareConnect. */
  tcpSockets(netnsFd: number, family: IpFamily, count: number): number[];
  /**
   * Readies a socket from tcpSockets for net.Socket#connect: options applied, bound if bindHost/bindPort given.
   * The fd is consumed: closed when this throws.
   */
  prepareConnect(fd: number, family: IpFamily, opts?: ConnectOptions): number;
  /** The pre-REDIRECT destination of an accepted connection (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). */
  originalDst(fd: number): OriginalDst;
  setMark(fd: number, mark: number): void;
  getMark(fd: number): number;
}

// From dist/src/inpod/native.js (and src/inpod/native.ts) the package root is three levels up.
const addonPath = fileURLToPath(new URL('../../../build/Release/ambit_native.node', import.meta.url));
let addon: NativeAddon | undefined;

/** Loads the addon once; throws a clear error when it has not been built. */
export function native(): NativeAddon {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'MODULE_NOT_FOUND' || code === 'ENOENT') {
        throw new Error(`native addon not built: run npm install (needs python3, make, g++) [missing ${addonPath}]`);
      }
      throw new Error(`native addon ${addonPath} failed to load: ${(err as Error).message}`);
    }
  }
  return addon;
}
