// HBONE client: dial an mTLS + HTTP/2 session to `<peer>:15008` and open CONNECT tunnels on it.
// Pooling lives in pool.ts; these functions are also used directly for tunnels that must not be pooled
// (double-HBONE inner tunnels, whose "socket" is itself an HBONE stream).
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import { buildForwarded, formatAuthority, newTraceparent } from './headers.js';
import {
  HBONE_KEEPALIVE,
  HBONE_TUNING,
  type Http2Tuning,
  type KeepaliveOptions,
  applyConnectionWindow,
  bindTransport,
  http2Settings,
  startKeepalive,
  tuneTcp,
} from './session.js';
import { HBONE_ALPN, HboneIdentityError, clientTlsOptions } from './tls.js';

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * Supplies the transport for an HBONE session. The default is `net.connect`; the proxy passes sockets created
 * inside a pod's network namespace (with SO_MARK, source IP), and double-HBONE passes an outer CONNECT stream.
 * The returned stream may still be connecting.
 */
export type CreateConnection = (target: { destination: Endpoint; sourceAddress?: string }) => Duplex | Promise<Duplex>;

export interface DialOptions {
  /** The HBONE endpoint, e.g. `podIP:15008` or `waypointIP:15008`. */
  destination: Endpoint;
  /** The source workload's certificate, presented as the TLS client certificate. */
  certificate: WorkloadCertificate;
  /** The server must present one of these SPIFFE identities. */
  expectedIdentities: readonly string[];
  sourceAddress?: string;
  createConnection?: CreateConnection;
  tuning?: Http2Tuning;
  keepalive?: KeepaliveOptions;
  connectTimeoutMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Which step of a dial failed: the TCP connect, the TLS handshake or the HTTP/2 setup. */
export type HboneDialPhase = 'connect' | 'tls' | 'http2';

/** A dial failed at `phase`; the message is ztunnel's text for that step. */
export class HboneDialError extends Error {
  override name = 'HboneDialError';
  constructor(
    readonly phase: HboneDialPhase,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The dial did not finish within the connect timeout; the message is ztunnel's text. */
export class HboneConnectTimeoutError extends Error {
  override name = 'HboneConnectTimeoutError';
}

/** The non-200 answer to a CONNECT; the message is ztunnel's client error text. */
export class HboneStatusError extends Error {
  override name = 'HboneStatusError';
  constructor(readonly status: number) {
    super(`http status: ${status}`);
  }
}

function defaultConnection(target: { destination: Endpoint; sourceAddress?: string }): Duplex {
  return net.connect({
    host: target.destination.address,
    port: target.destination.port,
    ...(target.sourceAddress ? { localAddress: target.sourceAddress } : {}),
    noDelay: true,
  });
}

/** Opens the mTLS connection and HTTP/2 session; rejects with a clear error on timeout, TLS or identity failure. */
export async function dialHbone(opts: DialOptions): Promise<http2.ClientHttp2Session> {
  const tuning = opts.tuning ?? HBONE_TUNING;
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const where = formatAuthority(opts.destination.address, opts.destination.port);
  let transport: Duplex | undefined;
  let tlsSocket: tls.TLSSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let phase = 'connect' as HboneDialPhase; // which step failed, for the error
  const timeoutError = new HboneConnectTimeoutError(`connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008 (${where})`);
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError), timeoutMs);
  });
  timedOut.catch(() => {}); // only observed through the race below
  try {
    const handshake = (async () => {
      const target = opts.sourceAddress
        ? { destination: opts.destination, sourceAddress: opts.sourceAddress }
        : { destination: opts.destination };
      transport = await (opts.createConnection ?? defaultConnection)(target);
      if (transport instanceof net.Socket) {
        const tcp = transport;
        tuneTcp(tcp);
        if (tcp.connecting) {
          await new Promise<void>((resolve, reject) => {
            tcp.once('connect', resolve);
            tcp.once('error', reject);
          });
        }
      }
      phase = 'tls';
      const sock = tls.connect({ socket: transport, ...clientTlsOptions(opts.certificate, opts.expectedIdentities) });
      tlsSocket = sock;
      // Destroying a TLSSocket does not close the transport it wraps; left open, a transport whose peer hung up
      // keeps signalling the event loop with nobody reading it (a busy loop). Tie their lifetimes together.
      const t = transport;
      sock.once('close', () => t.destroy());
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', resolve);
        sock.once('error', reject);
        sock.once('close', () => reject(new Error('connection closed during TLS handshake')));
      });
      if (sock.alpnProtocol !== HBONE_ALPN) throw new Error(`server did not negotiate ALPN ${HBONE_ALPN}`);
      phase = 'http2';
      const session = http2.connect(`https://${where}`, {
        createConnection: () => sock,
        settings: http2Settings(tuning, 'client'),
        maxSessionMemory: tuning.maxSessionMemoryMb,
      });
      session.on('error', () => {}); // session failures surface on its streams and through 'close'
      bindTransport(session, sock);
      // Wait for the server's SETTINGS: it proves the peer speaks HTTP/2 (a server that refused our certificate
      // after a TLS 1.3 handshake fails here, not on the first stream) and gives the pool the peer's
      // SETTINGS_MAX_CONCURRENT_STREAMS before it places streams on this connection.
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('close', () => reject(new Error('HTTP/2 session closed during setup')));
      });
      applyConnectionWindow(session, tuning);
      startKeepalive(session, opts.keepalive ?? HBONE_KEEPALIVE);
      return session;
    })();
    return await Promise.race([handshake, timedOut]);
  } catch (error) {
    tlsSocket?.destroy();
    transport?.destroy();
    const e = error as Error;
    if (e instanceof HboneIdentityError || e === timeoutError) throw e;
    const prefix = phase === 'tls' ? 'tls handshake error' : phase === 'http2' ? 'HTTP/2 setup failed' : 'connection failed';
    throw new HboneDialError(phase, `${prefix}: ${e.message} (${where})`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

export interface TunnelRequest {
  /** HBONE target as `ip:port` (IPv6 is bracketed) or a ready `:authority` string (`svc-hostname:port`). */
  target: Endpoint | string;
  /** The original client, sent as `forwarded: for="ip:port"`. */
  forwardedFor?: Endpoint;
  /** Destination service hostname, appended to `forwarded` as `;host=`. */
  forwardedHost?: string;
  baggage?: string;
  /** Defaults to a fresh random traceparent per tunnel. */
  traceparent?: string;
  headers?: http2.OutgoingHttpHeaders;
}

export function connectHeaders(req: TunnelRequest): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = {
    ...req.headers,
    ':method': 'CONNECT',
    ':authority': typeof req.target === 'string' ? req.target : formatAuthority(req.target.address, req.target.port),
    traceparent: req.traceparent ?? newTraceparent(),
  };
  if (req.forwardedFor) h['forwarded'] = buildForwarded(req.forwardedFor.address, req.forwardedFor.port, req.forwardedHost);
  if (req.baggage) h['baggage'] = req.baggage;
  return h;
}

/**
 * Sends CONNECT on `session` and resolves with the stream (a Duplex carrying the tunnelled bytes) once the
 * server answers 200. Non-200 rejects with HboneStatusError (`http status: <code>`).
 */
export function openTunnel(session: http2.ClientHttp2Session, req: TunnelRequest): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(connectHeaders(req), { endStream: false });
    } catch (error) {
      reject(error);
      return;
    }
    // Later errors are the caller's to observe (copyBidirectional reads them); an unobserved one must not crash.
    stream.on('error', () => {});
    const onError = (error: Error) => reject(error);
    const onClose = () =>
      reject(new Error(`HBONE stream closed before a response (HTTP/2 error code ${stream.rstCode})`));
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.once('response', (headers) => {
      stream.off('error', onError);
      stream.off('close', onClose);
      const status = Number(headers[':status']);
      if (status === 200) {
        resolve(stream);
        return;
      }
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new HboneStatusError(status));
    });
  });
}
