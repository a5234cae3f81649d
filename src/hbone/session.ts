// HTTP/2 settings and session upkeep shared by the HBONE client and server.
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';

export interface Http2Tuning {
  /** Per-stream flow-control window (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindowSize: number;
  /** Connection-level window; Node only lets us change it with `setLocalWindowSize` after the session starts. */
  connectionWindowSize: number;
  maxFrameSize: number;
  /** nghttp2's per-session memory cap in MB; beyond it new streams are refused with ENHANCE_YOUR_CALM. */
  maxSessionMemoryMb: number;
}

const MiB = 1024 * 1024;

/**
 * ztunnel's defaults: 4 MiB stream / 16 MiB connection windows (4x so one stalled stream cannot starve the others
 * of connection window) and 1 MiB frames. Node's own defaults (64 KiB windows) halve single-stream throughput.
 */
export const HBONE_TUNING: Readonly<Http2Tuning> = {
  streamWindowSize: 4 * MiB,
  connectionWindowSize: 16 * MiB,
  maxFrameSize: 1 * MiB,
  // Must exceed the connection window plus header state for 100-200 streams, or busy sessions hit ENHANCE_YOUR_CALM.
  maxSessionMemoryMb: 64,
};

/** Node's HTTP/2 defaults, kept for benchmarks that compare against them. */
export const NODE_DEFAULT_TUNING: Readonly<Http2Tuning> = {
  streamWindowSize: 65535,
  connectionWindowSize: 65535,
  maxFrameSize: 16384,
  maxSessionMemoryMb: 10,
};

export const SERVER_MAX_CONCURRENT_STREAMS = 200;
const CLIENT_MAX_HEADER_LIST = 16 * 1024;
const SERVER_MAX_HEADER_LIST = 64 * 1024;

export function http2Settings(t: Http2Tuning, side: 'client' | 'server'): http2.Settings {
  const s: http2.Settings = {
    enablePush: false,
    initialWindowSize: t.streamWindowSize,
    maxFrameSize: t.maxFrameSize,
    maxHeaderListSize: side === 'server' ? SERVER_MAX_HEADER_LIST : CLIENT_MAX_HEADER_LIST,
  };
  if (side === 'server') s.maxConcurrentStreams = SERVER_MAX_CONCURRENT_STREAMS;
  return s;
}

/** Raises the connection window once the session can take it (the default is 65,535 bytes). */
export function applyConnectionWindow(session: http2.Http2Session, t: Http2Tuning): void {
  if (t.connectionWindowSize <= 65535) return;
  const set = () => {
    if (!session.destroyed) session.setLocalWindowSize(t.connectionWindowSize);
  };
  if (session.connecting) session.once('connect', set);
  else set();
}

/** TCP options for both HBONE legs: no Nagle delay, and keepalive like ztunnel (180 s idle). */
export function tuneTcp(socket: net.Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 180_000);
}

export interface KeepaliveOptions {
  intervalMs: number;
  timeoutMs: number;
}

export const HBONE_KEEPALIVE: Readonly<KeepaliveOptions> = { intervalMs: 10_000, timeoutMs: 20_000 };

const transports = new WeakMap<http2.Http2Session, net.Socket>();

/**
 * Ties a session to its TLS socket: the socket is remembered for `destroySession` (the session only exposes a
 * proxy), and the session is destroyed when the socket fails or closes. Node's http2 server installs such
 * handlers in its connection listener, but `performServerHandshake` does not, and without them a session whose
 * peer vanished (RST) stays open with all its streams.
 */
export function bindTransport(session: http2.Http2Session, socket: net.Socket): void {
  transports.set(session, socket);
  socket.on('error', (error) => {
    if (!session.destroyed) session.destroy(error);
  });
  socket.once('close', () => {
    if (!session.destroyed) session.destroy();
  });
}

/**
 * Destroys a session *and* its socket. Node's `session.destroy()` alone ends the socket gracefully and waits for
 * queued writes to flush; against a peer that stopped reading that never completes, and a server session whose
 * writes are blocked also stops reading, so both ends would hold the connection forever.
 */
export function destroySession(session: http2.Http2Session, error?: Error): void {
  session.destroy(error);
  transports.get(session)?.destroy();
}

/**
 * Sends an HTTP/2 PING every `intervalMs`; when one is not acknowledged within `timeoutMs` the session is
 * destroyed with "HBONE ping timeout", so pooled streams fail fast instead of hanging on a dead peer.
 * Timers are unref'd: keepalive alone never keeps the process running.
 */
export function startKeepalive(session: http2.Http2Session, opts: KeepaliveOptions): void {
  let outstanding: NodeJS.Timeout | undefined;
  const interval = setInterval(() => {
    if (outstanding || session.destroyed || session.closed) return;
    const sent = session.ping((err) => {
      clearTimeout(outstanding);
      outstanding = undefined;
      // A ping cancelled because the session is going away is not a liveness failure.
      if (err && !session.destroyed) destroySession(session, new Error(`HBONE ping error: ${err.message}`));
    });
    if (!sent) return;
    outstanding = setTimeout(() => {
      outstanding = undefined;
      destroySession(session, new Error('HBONE ping timeout'));
    }, opts.timeoutMs);
    outstanding.unref();
  }, opts.intervalMs);
  interval.unref();
  session.once('close', () => {
    clearInterval(interval);
    clearTimeout(outstanding);
  });
}

/**
 * Bytes the eager transports of one process may hold queued together before a write waits for 'drain' again, so
 * peers that grant large windows and stop reading cannot pin more than this between them.
 */
const EAGER_QUEUE_BUDGET = 256 * MiB;
/** A transport queueing less than this is not weighed against the others (the common case sums nothing). */
const EAGER_QUEUE_UNCHECKED = 1 * MiB;
const eagerTransports = new Set<EagerWriteTransport>();

function eagerQueuedTotal(): number {
  let total = 0;
  for (const t of eagerTransports) total += t.queued();
  return total;
}

/**
 * A transport for a server session whose writes complete as soon as they are queued on the socket.
 *
 * Node's HTTP/2 session stops reading its socket while one of its own writes is in progress (node_http2.cc,
 * MaybeStopReading). When both ends of a connection are Node sessions streaming bulk data both ways (an echo, a
 * replication stream), each can be blocked writing to a peer that is itself blocked writing: once the bytes in
 * flight exceed the two TCP buffers, which do not grow while nobody reads, the connection hangs until the PING
 * timeout kills it. A session over this transport never waits on the network to keep reading, so every pair with
 * an Ambit server on one end keeps moving. What it queues is bounded by the peer's flow-control window; past
 * `queueLimit` (a peer that granted a huge window and stopped reading), or past the process-wide budget, writes wait
 * for 'drain' again.
 */
class EagerWriteTransport extends Duplex {
  private pendingWrite: ((error?: Error | null) => void) | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly queueLimit: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 1024 * 1024 });
    eagerTransports.add(this);
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.on('drain', () => {
      const done = this.pendingWrite;
      this.pendingWrite = undefined;
      done?.();
    });
    socket.on('error', (error) => this.destroy(error));
    socket.once('close', () => this.destroy());
  }

  /** Bytes written by the session and not yet taken by the kernel: the socket's queue and ours. */
  queued(): number {
    return this.socket.writableLength + this.writableLength;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.socket.write(chunk);
    this.settle(done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (error?: Error | null) => void): void {
    this.socket.cork();
    for (const { chunk } of chunks) this.socket.write(chunk);
    this.socket.uncork();
    this.settle(done);
  }

  private settle(done: (error?: Error | null) => void): void {
    // Waiting is only possible when the socket has promised a 'drain'; a socket that has not is nearly empty.
    if (!this.socket.writableNeedDrain) return done();
    const queued = this.queued();
    if (queued < this.queueLimit && (queued < EAGER_QUEUE_UNCHECKED || eagerQueuedTotal() < EAGER_QUEUE_BUDGET)) done();
    else this.pendingWrite = done;
  }

  override _final(done: (error?: Error | null) => void): void {
    // Finished only once the socket has flushed: the session may destroy its transport right after.
    this.socket.end();
    this.socket.once('finish', () => done());
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    eagerTransports.delete(this);
    this.socket.destroy(error ?? undefined);
    done(error);
  }
}

/**
 * Wraps a server's TLS socket so its HTTP/2 session keeps reading while it writes (see EagerWriteTransport). The
 * per-connection bound is what an HBONE client can have granted and not yet read — its connection window, at least
 * ztunnel's default whatever this side's tuning — plus one frame: below it an Ambit pair never waits on each other;
 * above it only a peer that granted more than it reads, whose pings then go unanswered until the keepalive closes
 * the connection.
 */
export function eagerWriteTransport(socket: net.Socket, t: Http2Tuning): Duplex {
  const window = Math.max(t.connectionWindowSize, t.streamWindowSize, HBONE_TUNING.connectionWindowSize);
  return new EagerWriteTransport(socket, window + t.maxFrameSize);
}
