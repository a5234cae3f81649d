// HBONE server: mTLS (TLS 1.3, ALPN h2) + HTTP/2, one CONNECT stream per tunnelled TCP connection.
//
// The server owns the TLS layer instead of using tls.Server, because the certificate depends on which pod the
// connection was addressed to and the client sends no SNI (see tls.ts). It can listen itself (`listen`) or take
// sockets accepted elsewhere (`handleConnection`), e.g. listeners created inside a pod's network namespace.
//
// Per stream: validate method and `:authority`, ask the `onConnect` hook (authorization + upstream dial), and only
// after the hook returns a connected upstream respond 200 and copy bytes both ways — or, when the hook takes the
// stream itself (a waypoint parses the HTTP inside it), respond 200 and hand the stream over. Every failure stays
// local to its stream or connection; nothing a peer sends can throw out of this module.
//
// Bounds (limits.ts): connections over the limiter's caps are closed at accept; a session without streams for
// `idleTimeoutMs` gets GOAWAY; and once a session that is going away (our GOAWAY or the peer's) has ended its socket
// after its last stream, the socket is cut if the peer has not closed its end soon after (Node waits for it forever).
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { normalizeIp } from '../common/ip.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import { copyBidirectional, type CopyObserver } from './copy.js';
import {
  type Forwarded,
  type HostPort,
  type TraceParent,
  parseAuthority,
  parseBaggage,
  parseForwarded,
  parseTraceparent,
} from './headers.js';
import {
  HBONE_KEEPALIVE,
  HBONE_TUNING,
  type Http2Tuning,
  type KeepaliveOptions,
  applyConnectionWindow,
  bindTransport,
  destroySession,
  eagerWriteTransport,
  http2Settings,
  startKeepalive,
  tuneTcp,
} from './session.js';
import { HBONE_SERVER_LIMITS, type HboneConnectionLimiter } from './limits.js';
import { HBONE_ALPN, HboneIdentityError, serverTlsOptions, verifyClientTrustDomain } from './tls.js';

export interface Address {
  address: string;
  port: number;
}

/** A validated CONNECT request, handed to the `onConnect` hook. */
export interface HboneRequest {
  /** `:authority` as sent, e.g. `10.0.0.2:8080`, `[fd00::2]:8080` or `svc.ns.svc.cluster.local:80`. */
  authority: string;
  target: HostPort;
  /** The client's verified SPIFFE identity (same trust domain as ours). */
  srcIdentity: string;
  /** Our identity on this connection: the identity of the pod the connection was addressed to. */
  dstIdentity: string;
  peer: Address;
  local: Address;
  headers: http2.IncomingHttpHeaders;
  forwarded?: Forwarded;
  baggage: Map<string, string>;
  traceparent?: TraceParent;
}

export type HboneDecision =
  /** `observer` is told of every chunk copied, so byte counters can move while the stream is open. */
  | { status: 200; upstream: Duplex; observer?: CopyObserver; responseHeaders?: http2.OutgoingHttpHeaders }
  /**
   * The caller terminates the tunnelled bytes itself: after the 200, `accept` receives the CONNECT stream and owns it
   * (reading, writing, ending, destroying). Byte counts are then the caller's to keep; the stream's stats report 0.
   */
  | { status: 200; accept: (stream: Duplex) => void; responseHeaders?: http2.OutgoingHttpHeaders }
  | { status: 400 | 401 | 403 | 503; error: string };

export interface HboneStreamStats {
  /** Undefined when the request was rejected before it could be parsed (bad method or authority). */
  request?: HboneRequest;
  authority?: string;
  srcIdentity: string;
  peer: Address;
  local: Address;
  status: number;
  /** Bytes from the HBONE client, forwarded upstream. */
  bytesReceived: number;
  /** Bytes from upstream, forwarded to the HBONE client. */
  bytesSent: number;
  durationMs: number;
  error?: string;
}

export interface HboneConnectionError {
  peer: Address;
  local: Address;
  error: Error;
  /**
   * Where the connection failed: finding our certificate, the TLS handshake or the client's certificate checks, the
   * client's identity (trust domain), or the HTTP/2 session; `listener` for the listening socket itself.
   */
  phase: 'certificate' | 'tls' | 'identity' | 'http2' | 'listener';
}

export interface HboneServerOptions {
  /** The certificate to present for a connection addressed to `local` (the destination pod's address). */
  certificateFor(local: Address): WorkloadCertificate | Promise<WorkloadCertificate>;
  onConnect(req: HboneRequest): HboneDecision | Promise<HboneDecision>;
  /** Called once per CONNECT stream when it is finished, for metrics and access logs. */
  onStreamClose?(stats: HboneStreamStats): void;
  /** TLS, identity and HTTP/2 session failures ("connection failed" in ztunnel's logs). */
  onConnectionError?(e: HboneConnectionError): void;
  tuning?: Http2Tuning;
  keepalive?: KeepaliveOptions;
  /** TCP accept to TLS established; a peer that stalls the handshake is dropped after this. */
  handshakeTimeoutMs?: number;
  /** A session with no open CONNECT stream for this long gets GOAWAY (default HBONE_SERVER_LIMITS; 0: never). */
  idleTimeoutMs?: number;
  /** Connection caps, usually shared by every HBONE server of the process; none when absent. */
  limiter?: HboneConnectionLimiter;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Node ends a closed session's socket once its last stream is done (GOAWAY and close_notify flushed), then waits for
 * the peer's end; a peer that has not closed its side this much later is cut (as Envoy's delayed_close_timeout, 1 s).
 */
const GOAWAY_LINGER_MS = 1_000;

function addressOf(address: string | undefined, port: number | undefined): Address {
  return { address: address ?? '', port: port ?? 0 };
}

export class HboneServer {
  private readonly opts: HboneServerOptions;
  private readonly tuning: Http2Tuning;
  private readonly sessions = new Map<http2.ServerHttp2Session, ConnInfo>();
  /** Accepted sockets still waiting for `certificateFor`. */
  private readonly pending = new Set<net.Socket>();
  private readonly tlsServers = new WeakMap<WorkloadCertificate, tls.Server>();
  private listener?: net.Server;
  private closing = false;

  constructor(opts: HboneServerOptions) {
    this.opts = opts;
    this.tuning = opts.tuning ?? HBONE_TUNING;
  }

  /** Number of live HTTP/2 sessions (one per mTLS connection). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Listens on `port` (15008 in the mesh) and serves every accepted connection. */
  listen(port: number, host?: string): Promise<net.AddressInfo> {
    if (this.listener) return Promise.reject(new Error('HBONE server is already listening'));
    const listener = net.createServer({ allowHalfOpen: false, noDelay: true }, (s) => this.handleConnection(s));
    this.listener = listener;
    return new Promise((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        listener.on('error', (error) => this.report(addressOf(host, port), addressOf(host, port), error, 'listener'));
        resolve(listener.address() as net.AddressInfo);
      });
    });
  }

  /** Serves an already-accepted TCP connection (from `listen` or from a listener owned by someone else). */
  handleConnection(socket: net.Socket): void {
    const peer = addressOf(socket.remoteAddress, socket.remotePort);
    const local = addressOf(socket.localAddress, socket.localPort);
    if (this.closing) {
      socket.destroy();
      return;
    }
    const limiter = this.opts.limiter;
    // One peer whichever way it arrived (a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d).
    const peerIp = limiter ? (normalizeIp(peer.address) ?? peer.address) : '';
    if (limiter && !limiter.admit(peerIp)) {
      socket.destroy();
      return;
    }
    this.pending.add(socket);
    // Errors before TLS starts (e.g. ECONNRESET while the certificate is looked up) just end the attempt;
    // once TLS owns the socket its errors are reported through tlsClientError or the HTTP/2 session.
    socket.on('error', () => {});
    // The TCP socket closes whoever owns it by then (us, TLS or the HTTP/2 session): the one place to uncount it.
    socket.once('close', () => {
      this.pending.delete(socket);
      limiter?.release(peerIp);
    });
    tuneTcp(socket);
    Promise.resolve()
      .then(() => this.opts.certificateFor(local))
      .then(
        (cert) => {
          this.pending.delete(socket);
          if (socket.destroyed || this.closing) return socket.destroy();
          // From here tls.Server owns the socket (its handshakeTimeout bounds a stalled handshake), and once the
          // handshake is done the HTTP/2 session does; close() reaches it through `sessions`.
          this.tlsServerFor(cert).emit('connection', socket);
        },
        (error: Error) => {
          this.pending.delete(socket);
          this.report(peer, local, new Error(`no certificate for ${local.address}:${local.port}: ${error?.message}`), 'certificate');
          socket.destroy();
        },
      );
  }

  // One non-listening tls.Server per certificate (i.e. per local pod and certificate generation).
  private tlsServerFor(cert: WorkloadCertificate): tls.Server {
    let server = this.tlsServers.get(cert);
    if (server) return server;
    server = tls.createServer(serverTlsOptions(cert, this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS));
    server.on('tlsClientError', (error: Error, tlsSocket: tls.TLSSocket) => {
      this.report(
        addressOf(tlsSocket.remoteAddress, tlsSocket.remotePort),
        addressOf(tlsSocket.localAddress, tlsSocket.localPort),
        new Error(`tls handshake error: ${error.message}`),
        'tls',
      );
      tlsSocket.destroy();
    });
    server.on('secureConnection', (tlsSocket: tls.TLSSocket) => this.onSecure(tlsSocket, cert));
    this.tlsServers.set(cert, server);
    return server;
  }

  private onSecure(tlsSocket: tls.TLSSocket, cert: WorkloadCertificate): void {
    const peer = addressOf(tlsSocket.remoteAddress, tlsSocket.remotePort);
    const local = addressOf(tlsSocket.localAddress, tlsSocket.localPort);
    tlsSocket.on('error', () => {}); // after the checks, bindTransport turns socket errors into session errors
    let srcIdentity: string;
    try {
      if (!tlsSocket.getPeerCertificate()?.raw) throw new Error('client presented no certificate');
      if (!tlsSocket.authorized) throw new Error(`client certificate rejected: ${tlsSocket.authorizationError}`);
      if (tlsSocket.alpnProtocol !== HBONE_ALPN) {
        throw new Error(`client did not negotiate ALPN ${HBONE_ALPN} (got ${tlsSocket.alpnProtocol || 'none'})`);
      }
      srcIdentity = verifyClientTrustDomain(tlsSocket, cert.trustDomain);
    } catch (error) {
      this.report(peer, local, error as Error, error instanceof HboneIdentityError ? 'identity' : 'tls');
      tlsSocket.destroy();
      return;
    }
    this.startSession(tlsSocket, srcIdentity, cert.identity, peer, local);
  }

  private startSession(tlsSocket: tls.TLSSocket, srcIdentity: string, dstIdentity: string, peer: Address, local: Address): void {
    if (this.closing) {
      tlsSocket.destroy();
      return;
    }
    let session: http2.ServerHttp2Session;
    try {
      session = http2.performServerHandshake(eagerWriteTransport(tlsSocket, this.tuning), {
        settings: http2Settings(this.tuning, 'server'),
        maxSessionMemory: this.tuning.maxSessionMemoryMb,
      });
    } catch (error) {
      this.report(peer, local, error as Error, 'http2');
      tlsSocket.destroy();
      return;
    }
    const conn: ConnInfo = { srcIdentity, dstIdentity, peer, local, session, streams: 0, idleSince: performance.now() };
    this.sessions.set(session, conn);
    bindTransport(session, tlsSocket);
    applyConnectionWindow(session, this.tuning);
    startKeepalive(session, this.opts.keepalive ?? HBONE_KEEPALIVE);
    session.on('error', (error) => this.report(peer, local, error, 'http2'));
    session.once('close', () => this.sessions.delete(session));
    session.on('stream', (stream, headers) => this.handleStream(stream, headers, conn));
    tlsSocket.once('finish', () => setTimeout(() => tlsSocket.destroy(), GOAWAY_LINGER_MS).unref());
    const idleTimeoutMs = this.opts.idleTimeoutMs ?? HBONE_SERVER_LIMITS.idleTimeoutMs;
    if (idleTimeoutMs > 0) {
      this.watchIdle(conn, idleTimeoutMs, idleTimeoutMs);
      session.once('close', () => clearTimeout(conn.idleTimer));
    }
  }

  /**
   * GOAWAY once the session has had no stream for `idleTimeoutMs` (PINGs do not count: they keep no stream open).
   * One timer per session, checked when due rather than reset on every stream.
   */
  private watchIdle(conn: ConnInfo, idleTimeoutMs: number, delayMs: number): void {
    conn.idleTimer = setTimeout(() => {
      const { session } = conn;
      if (session.closed || session.destroyed) return;
      const idleFor = conn.streams > 0 ? 0 : performance.now() - conn.idleSince;
      if (idleFor >= idleTimeoutMs) this.goAway(conn);
      else this.watchIdle(conn, idleTimeoutMs, idleTimeoutMs - idleFor);
    }, delayMs);
    conn.idleTimer.unref();
  }

  /** Sends GOAWAY: the peer opens no new stream here; the open ones finish, then the connection closes. */
  private goAway(conn: ConnInfo): void {
    if (!conn.session.closed && !conn.session.destroyed) conn.session.close();
  }

  private handleStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, conn: ConnInfo): void {
    const start = performance.now();
    const stats: HboneStreamStats = {
      srcIdentity: conn.srcIdentity,
      peer: conn.peer,
      local: conn.local,
      status: 0,
      bytesReceived: 0,
      bytesSent: 0,
      durationMs: 0,
    };
    conn.streams++;
    const finish = (error?: string) => {
      const now = performance.now();
      stats.durationMs = now - start;
      if (error !== undefined) stats.error = error;
      try {
        this.opts.onStreamClose?.(stats);
      } catch {
        // A telemetry callback bug must not take the tunnel down.
      }
      if (--conn.streams === 0) conn.idleSince = now;
    };
    stream.on('error', () => {}); // outcome is read from the copy result or the stream state below
    const reject = (status: number, error: string) => {
      stats.status = status;
      if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': status }, { endStream: true });
      finish(error);
    };

    const method = headers[':method'];
    if (method !== 'CONNECT') return reject(400, `expected method CONNECT, got ${method}`);
    const authority = headers[':authority'];
    stats.authority = authority;
    const target = parseAuthority(authority);
    if (!target) return reject(400, `no valid authority pseudo header: ${authority ?? '<missing>'}`);
    const request: HboneRequest = {
      authority: authority!,
      target,
      srcIdentity: conn.srcIdentity,
      dstIdentity: conn.dstIdentity,
      peer: conn.peer,
      local: conn.local,
      headers,
      baggage: parseBaggage(header(headers, 'baggage')),
    };
    const forwarded = parseForwarded(header(headers, 'forwarded'));
    if (forwarded) request.forwarded = forwarded;
    const traceparent = parseTraceparent(header(headers, 'traceparent'));
    if (traceparent) request.traceparent = traceparent;
    stats.request = request;

    Promise.resolve()
      .then(() => this.opts.onConnect(request))
      .then(
        (decision) => {
          if (decision.status !== 200) return reject(decision.status, decision.error);
          if ('accept' in decision) {
            if (stream.destroyed || stream.closed) return finish('client closed the stream before it was accepted');
            stats.status = 200;
            stream.respond({ ':status': 200, ...decision.responseHeaders });
            stream.once('close', () => finish(stream.rstCode ? `stream reset with HTTP/2 error code ${stream.rstCode}` : undefined));
            try {
              decision.accept(stream);
            } catch (error) {
              stream.destroy(error as Error);
            }
            return;
          }
          const upstream = decision.upstream;
          if (stream.destroyed || stream.closed) {
            // The client gave up (reset) while we were dialing: drop the upstream we no longer need.
            upstream.destroy();
            stats.status = 200;
            return finish('client closed the stream before the upstream connection was ready');
          }
          stats.status = 200;
          stream.respond({ ':status': 200, ...decision.responseHeaders });
          copyBidirectional(stream, upstream, decision.observer).then((r) => {
            stats.bytesReceived = r.aToB;
            stats.bytesSent = r.bToA;
            finish(r.error?.message);
          });
        },
        (error: Error) => reject(503, error?.message ?? String(error)),
      );
  }

  private report(peer: Address, local: Address, error: Error, phase: HboneConnectionError['phase']): void {
    try {
      this.opts.onConnectionError?.({ peer, local, error, phase });
    } catch {
      // Logging must not take the server down.
    }
  }

  /**
   * Sends GOAWAY on every open session so clients open their next streams on new connections, while the listener
   * keeps accepting: a proxy that is shutting down still serves whoever has not yet learned that it is going away.
   */
  drain(): void {
    for (const conn of this.sessions.values()) this.goAway(conn);
  }

  /**
   * Stops accepting, sends GOAWAY on every session so clients move new streams elsewhere, and waits up to
   * `graceMs` for open streams to finish before destroying what is left.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    const listenerClosed = this.listener
      ? new Promise<void>((r) => this.listener!.close(() => r()))
      : Promise.resolve();
    for (const s of this.pending) s.destroy();
    const sessionsClosed = [...this.sessions.values()].map(
      (conn) => new Promise<void>((resolve) => (conn.session.destroyed ? resolve() : (conn.session.once('close', resolve), this.goAway(conn)))),
    );
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.all(sessionsClosed), grace]);
    clearTimeout(timer);
    // Whatever is left had its chance to finish: cut it, socket included.
    for (const s of this.sessions.keys()) destroySession(s);
    this.sessions.clear();
    await listenerClosed;
  }
}

interface ConnInfo {
  srcIdentity: string;
  dstIdentity: string;
  peer: Address;
  local: Address;
  session: http2.ServerHttp2Session;
  /** CONNECT streams not finished yet. */
  streams: number;
  /** performance.now() when the last stream finished (or the session started). */
  idleSince: number;
  idleTimer?: NodeJS.Timeout;
}

function header(headers: http2.IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}
