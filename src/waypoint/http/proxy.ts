// The waypoint's HTTP path: the HTTP/1.1 or HTTP/2 (h2c) conversation inside one CONNECT stream, each request run
// through Envoy's waypoint pipeline as istiod configures it (envoy-l7 reference §0): path normalization, RBAC (DENY,
// then ALLOW, AUDIT logged), the default route (the Service itself, `reset-before-request` retried twice except for
// gRPC), an endpoint by least request, the upstream request over HBONE, and the response streamed back with Envoy's
// headers. Local replies carry Envoy's status, body, response flags and details; gRPC requests get them as
// trailers-only responses. One request's failure never touches another's or the process.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../telemetry/log.js';
import type { Service, WaypointService, WaypointServicePort, Workload } from '../../xds/types.js';
import { RBAC_DENIED_BODY, authorize, type RequestAttributes } from '../authz/rbac.js';
import type { WaypointState } from '../state.js';
import type { DestinationServiceLabels, PeerLabels, ResponseFlag, WaypointTelemetry } from '../telemetry.js';
import { UpstreamConnectError, localReplyBody, type UpstreamTarget, type Upstreams } from '../upstream.js';
import { normalizePath } from './path.js';
import { TunnelSocket } from './tunnel-socket.js';

/** One accepted CONNECT stream: who sent it and what it was addressed to. */
export interface StreamContext {
  /** The client ztunnel's socket (in-pod, so the client pod's address). */
  peerIp: string;
  /** `ip:port` of the peer and of our HBONE listener, for the access log. */
  peerAddress: string;
  localAddress: string;
  /** Peer identity without `spiffe://` (Envoy's source.principal). */
  sourcePrincipal: string;
  /** The original destination from `:authority`: a Service VIP or a workload IP, and its port. */
  targetIp: string;
  targetPort: number;
  service?: Service;
  bound?: WaypointService;
  port?: WaypointServicePort;
  /** Workload-addressed traffic. */
  workload?: Workload;
  source: PeerLabels;
  destinationService: DestinationServiceLabels;
  /** Envoy's cluster name, for the access log: `inbound-vip|80|http|echo.ns.svc.cluster.local`. */
  cluster: string;
}

export interface HttpProxyOptions {
  state: WaypointState;
  upstreams: Upstreams;
  telemetry: WaypointTelemetry;
  log: Logger;
  /** Labels of the endpoint a request went to (the caller caches them per workload). */
  peerLabels(w: Workload | undefined): PeerLabels;
}

/** Envoy's local reply to a request it cannot parse. */
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nserver: istio-envoy\r\nconnection: close\r\n\r\nBad Request';
/** A downstream HTTP/2 session with no stream open for this long is closed (Envoy's idle timeout is an hour). */
const DOWNSTREAM_IDLE_MS = 3_600_000;
/** How long a downstream HTTP/2 session may have stopped reading with nothing to do before it counts as failed. */
const STOPPED_SESSION_MS = 100;

/**
 * Envoy's UPSTREAM_HOST and UPSTREAM_LOCAL_ADDRESS for an endpoint: an HBONE one is reached through the waypoint's
 * internal `connect_originate` listener, so that is what Istio's waypoint logs.
 */
function upstreamAddresses(t: UpstreamTarget): { upstreamHost: string; upstreamLocalAddress?: string } {
  return t.hbone ? { upstreamHost: `envoy://connect_originate/${t.address}`, upstreamLocalAddress: 'envoy://internal_client_address/' } : { upstreamHost: t.address };
}

/** Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1, plus Envoy's list). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** Envoy's default route retries a request whose upstream stream was reset before it was sent, twice. */
const DEFAULT_RETRIES = 2;
/** Envoy's retry back-off base interval (full jitter, 25 ms). */
const RETRY_BASE_MS = 25;
/** HTTP status → gRPC status of a local reply (Envoy's Grpc::Utility::httpToGrpcStatus). */
const GRPC_STATUS_OF: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };

type Headers = Record<string, string | string[] | undefined>;

/** What a local reply says, as Envoy's router and filters word it. */
interface LocalReply {
  status: number;
  body: string;
  flags: ResponseFlag[];
  details: string;
  transportFailure?: string;
}

/** How a request ended, for its metrics and access-log line. */
interface Finished {
  target: UpstreamTarget | undefined;
  flags: readonly ResponseFlag[];
  /** The status sent downstream; 0 when none was. */
  status: number;
  grpcStatus?: string;
  responseHeaders: http2.OutgoingHttpHeaders;
  responseBodyBytes: number;
  upstreamServiceTimeMs?: number;
  details: string;
  transportFailure?: string;
}

/** The request as both codecs present it, with the means to answer it. */
interface Exchange {
  ctx: StreamContext;
  protocol: 'HTTP/1.1' | 'HTTP/2';
  method: string;
  /** As received (the access log shows it); `path` is the normalized one sent upstream. */
  rawPath: string;
  path: string;
  authority: string;
  headers: Headers;
  body: Readable;
  grpc: boolean;
  startTime: number;
  start: number;
  requestHeaderBytes: number;
  bodyBytesReceived: number;
  /** Starts the response; trailers come later through `trailers` when `wantTrailers`. */
  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean, wantTrailers: boolean): void;
  write(chunk: Buffer): boolean;
  end(trailers?: http2.OutgoingHttpHeaders): void;
  /** Resets the downstream stream (HTTP/2) or connection (HTTP/1.1) after the response started. */
  reset(): void;
  /** The downstream side, for backpressure. */
  sink: NodeJS.WritableStream & { once(event: 'drain' | 'close', cb: () => void): unknown };
  responded: boolean;
  done: boolean;
  /** The upstream request in progress, cancelled when the client goes away. */
  upstream?: { destroy(): void };
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** The rightmost X-Forwarded-For entry: Envoy's trusted client address with use_remote_address false. */
function remoteIpOf(xff: string | undefined, peer: string): string {
  if (!xff) return peer;
  const comma = xff.lastIndexOf(',');
  const last = (comma < 0 ? xff : xff.slice(comma + 1)).trim();
  return last || peer;
}

function headerBytes(headers: Headers): number {
  let n = 0;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined) continue;
    n += k.length + 4 + (Array.isArray(v) ? v.join(',').length : v.length);
  }
  return n;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2, "Percent-Encoded"). */
function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => encodeURIComponent(c));
}

export class HttpProxy {
  private readonly h1: http.Server;
  private readonly agent: TunnelAgent;
  /** Upstream HTTP/2 sessions, one per endpoint. */
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
  /** Downstream HTTP/1.1 connections with their requests in progress, and HTTP/2 sessions: what a drain must close. */
  private readonly downstreams = new Map<TunnelSocket, number>();
  private readonly downstreamSessions = new Set<http2.ServerHttp2Session>();
  private draining = false;

  constructor(private readonly opts: HttpProxyOptions) {
    // A waypoint's HCM has no request or header timeout. Node's keep-alive timeout would add a `Keep-Alive` header
    // Envoy never sends; idle downstream connections end with their CONNECT stream instead.
    this.h1 = http.createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0 }, (req, res) => this.fromHttp1(req, res));
    this.h1.on('clientError', (err, socket) => {
      // A malformed request: Envoy's local reply (400 `Bad Request`, flag DPE) and the connection closes; nothing
      // else is affected.
      if (!socket.destroyed && (socket as Duplex).writable) socket.end(BAD_REQUEST);
      else socket.destroy();
      this.opts.log.debug(`downstream protocol error: ${err.message}`);
      const ctx = CONTEXTS.get(socket);
      if (ctx) this.recordProtocolError(ctx);
    });
    this.agent = new TunnelAgent(opts.upstreams, { keepAlive: true, maxSockets: Infinity, scheduling: 'lifo', timeout: 3_600_000 });
  }

  /** Serves the HTTP conversation inside one CONNECT stream; `codec` unknown means the first bytes decide. */
  serve(stream: Duplex, ctx: StreamContext): void {
    stream.once('readable', () => {
      const head = stream.read() as Buffer | null;
      if (head === null) {
        stream.destroy();
        return;
      }
      stream.unshift(head);
      const isH2 = head.length >= HTTP2_PREFACE.length ? head.subarray(0, HTTP2_PREFACE.length).equals(HTTP2_PREFACE) : HTTP2_PREFACE.subarray(0, head.length).equals(head);
      if (isH2) this.serveHttp2(stream, ctx);
      else this.serveHttp1(stream, ctx);
    });
  }

  private serveHttp1(stream: Duplex, ctx: StreamContext): void {
    const [address, port] = splitHostPort(ctx.peerAddress);
    const socket = new TunnelSocket(stream, { address, port });
    CONTEXTS.set(socket, ctx);
    this.downstreams.set(socket, 0);
    socket.once('close', () => this.downstreams.delete(socket));
    this.h1.emit('connection', socket);
  }

  private serveHttp2(stream: Duplex, ctx: StreamContext): void {
    let session: http2.ServerHttp2Session;
    try {
      session = http2.performServerHandshake(stream);
    } catch (e) {
      this.opts.log.debug(`downstream HTTP/2 setup failed: ${(e as Error).message}`);
      stream.destroy();
      return;
    }
    session.on('error', () => {});
    stream.once('close', () => session.destroy());
    session.once('close', () => stream.destroy());
    // A connection error (say, an undecodable header block) makes Node send GOAWAY and stop reading without an event;
    // Envoy closes such a connection. Node's only sign is that it stops reading: a session that stays stopped with no
    // stream open and nothing left to write is over, and its CONNECT stream with it. Idle sessions end after an hour.
    let open = 0;
    session.on('stream', (s) => {
      open++;
      s.once('close', () => open--);
    });
    stream.on('pause', () => {
      setTimeout(() => {
        if (stream.isPaused() && open === 0 && !session.destroyed && session.state.outboundQueueSize === 0) session.destroy();
      }, STOPPED_SESSION_MS).unref();
    });
    session.setTimeout(DOWNSTREAM_IDLE_MS, () => {
      if (open === 0) session.destroy();
    });
    this.downstreamSessions.add(session);
    session.once('close', () => this.downstreamSessions.delete(session));
    if (this.draining) session.close();
    session.on('stream', (s, headers) => this.fromHttp2(s, headers, ctx));
  }

  private fromHttp1(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = CONTEXTS.get(req.socket)!;
    const socket = req.socket as unknown as TunnelSocket;
    this.downstreams.set(socket, (this.downstreams.get(socket) ?? 0) + 1);
    res.once('finish', () => {
      const left = (this.downstreams.get(socket) ?? 1) - 1;
      this.downstreams.set(socket, left);
      if (left === 0 && this.draining) socket.end();
    });
    // Envoy's drain: answers still go out, and tell the client to take its next request elsewhere.
    if (this.draining) res.setHeader('connection', 'close');
    const x: Exchange = {
      ctx,
      protocol: 'HTTP/1.1',
      method: req.method ?? 'GET',
      rawPath: req.url ?? '/',
      path: req.url ?? '/',
      authority: req.headers.host ?? '',
      headers: req.headers,
      body: req,
      grpc: false,
      startTime: Date.now(),
      start: performance.now(),
      requestHeaderBytes: headerBytes(req.headers) + (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12,
      bodyBytesReceived: 0,
      respond: (status, headers, endStream) => {
        const out: Record<string, string | string[] | number> = {};
        for (const k in headers) if (k[0] !== ':') out[k] = headers[k] as string | string[] | number;
        res.writeHead(status, out);
        if (endStream) res.end();
      },
      write: (chunk) => res.write(chunk),
      end: (trailers) => {
        if (trailers) res.addTrailers(trailers as Record<string, string>);
        res.end();
      },
      reset: () => res.socket?.destroy(),
      sink: res,
      responded: false,
      done: false,
    };
    res.once('close', () => {
      if (!x.done) this.onDownstreamClosed(x);
    });
    void this.handle(x);
  }

  private fromHttp2(s: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ctx: StreamContext): void {
    s.on('error', () => {});
    const plain: Headers = {};
    for (const k in headers) if (k[0] !== ':') plain[k] = headers[k];
    const contentType = first(headers['content-type']) ?? '';
    const x: Exchange = {
      ctx,
      protocol: 'HTTP/2',
      method: first(headers[':method']) ?? 'GET',
      rawPath: first(headers[':path']) ?? '/',
      path: first(headers[':path']) ?? '/',
      authority: first(headers[':authority']) ?? first(headers.host) ?? '',
      headers: plain,
      body: s,
      grpc: contentType.startsWith('application/grpc'),
      startTime: Date.now(),
      start: performance.now(),
      requestHeaderBytes: headerBytes(headers as Headers),
      bodyBytesReceived: 0,
      respond: (status, h, endStream, wantTrailers) => {
        if (s.destroyed || s.closed) return;
        s.respond({ ...h, ':status': status }, { endStream, waitForTrailers: wantTrailers });
      },
      write: (chunk) => s.write(chunk),
      end: (trailers) => {
        if (s.destroyed) return;
        if (trailers) s.once('wantTrailers', () => s.sendTrailers(trailers));
        s.end();
      },
      reset: () => s.close(http2.constants.NGHTTP2_INTERNAL_ERROR),
      sink: s,
      responded: false,
      done: false,
    };
    s.once('close', () => {
      if (!x.done) this.onDownstreamClosed(x);
    });
    void this.handle(x);
  }

  /** Runs one request through the pipeline; never throws. */
  private async handle(x: Exchange): Promise<void> {
    try {
      await this.pipeline(x);
    } catch (e) {
      this.opts.log.error(`request ${x.method} ${x.rawPath} failed unexpectedly: ${(e as Error).stack ?? e}`);
      if (!x.responded) this.localReply(x, { status: 500, body: '', flags: [], details: 'internal_error' }, undefined);
      else x.reset();
    }
  }

  private async pipeline(x: Exchange): Promise<void> {
    const { ctx } = x;
    const normalized = normalizePath(x.rawPath);
    if (normalized === undefined) return this.localReply(x, { status: 400, body: 'Bad Request', flags: [], details: 'path_normalization_failed' }, undefined);
    x.path = normalized;

    const xff = first(x.headers['x-forwarded-for']);
    const attrs: RequestAttributes = {
      sourceIp: ctx.peerIp,
      remoteIp: remoteIpOf(xff, ctx.peerIp),
      sourcePrincipal: ctx.sourcePrincipal,
      destinationIp: ctx.targetIp,
      destinationPort: ctx.targetPort,
      http: { method: x.method, path: x.path, host: x.authority, header: (name) => first(x.headers[name]) },
    };
    const decision = authorize(this.opts.state.authorization(ctx.bound, 'http'), attrs);
    if (decision.audited) this.opts.log.info(`audit: ${x.method} ${x.path} to ${ctx.destinationService.service} matched ${decision.audited.join(', ')}`);
    if (decision.shadow) {
      for (const [engine, r] of Object.entries(decision.shadow)) {
        if (r) this.opts.log.info(`shadow ${engine === 'deny' ? 'deny' : 'allow'} engine: dry-run result ${r.result}, effective policy ${r.policy || 'none'}`);
      }
    }
    if (!decision.allowed) {
      this.opts.log.info(`enforced denied, matched policy ${decision.matchedPolicy}`, { method: x.method, path: x.path, principal: ctx.sourcePrincipal });
      return this.localReply(x, { status: 403, body: RBAC_DENIED_BODY, flags: [], details: `rbac_access_denied_matched_policy[${decision.matchedPolicy}]` }, undefined);
    }

    const headers = this.upstreamHeaders(x);
    const flags: ResponseFlag[] = [];
    const attempts = x.grpc ? 1 : 1 + DEFAULT_RETRIES;
    for (let attempt = 1; ; attempt++) {
      const target = ctx.workload ? this.opts.upstreams.workload(ctx.workload, ctx.targetPort) : this.opts.upstreams.pick(ctx.service!, ctx.targetPort);
      if (target === undefined) return this.localReply(x, { status: 503, body: 'no healthy upstream', flags: ['UH'], details: 'no_healthy_upstream' }, undefined);
      try {
        await this.forward(x, target, headers, flags);
        return;
      } catch (e) {
        if (!(e instanceof UpstreamConnectError) || x.done) throw e;
        if (attempt >= attempts) {
          flags.push('UF');
          if (attempts > 1) flags.push('URX');
          return this.localReply(
            x,
            {
              status: 503,
              body: localReplyBody(e.resetReason, e.transportFailure, attempts > 1),
              flags,
              details: `upstream_reset_before_response_started{${e.resetReason},${e.transportFailure}}`,
              transportFailure: e.transportFailure,
            },
            target,
          );
        }
        // Full jitter: attempt n waits a random time below (2^n - 1) × 25 ms.
        await sleep(Math.random() * ((1 << attempt) - 1) * RETRY_BASE_MS);
        if (x.done) return;
      }
    }
  }

  /** The request headers sent upstream: hop-by-hop and XFCC removed, x-forwarded-proto and x-request-id set. */
  private upstreamHeaders(x: Exchange): Headers {
    const out: Headers = {};
    for (const k in x.headers) {
      if (HOP_BY_HOP.has(k) || k === 'x-forwarded-client-cert' || k === 'host') continue;
      out[k] = x.headers[k];
    }
    // gRPC needs `te: trailers` end to end.
    if (x.headers.te === 'trailers') out.te = 'trailers';
    out['x-forwarded-proto'] = 'http';
    // Generated before the filters run in Envoy, so the access log shows it too.
    if (x.headers['x-request-id'] === undefined) x.headers['x-request-id'] = randomUUID();
    out['x-request-id'] = x.headers['x-request-id'];
    return out;
  }

  /** One attempt: rejects with UpstreamConnectError before anything was sent upstream, so the caller may retry. */
  private async forward(x: Exchange, target: UpstreamTarget, headers: Headers, flags: ResponseFlag[]): Promise<void> {
    target.active++;
    try {
      await (this.upstreamIsHttp2(x) ? this.forwardHttp2(x, target, headers, flags) : this.forwardHttp1(x, target, headers, flags));
    } finally {
      target.active--;
    }
  }

  /** HTTP2 and gRPC ports talk h2 upstream; HTTP ports HTTP/1.1; sniffed ports what the client spoke. */
  private upstreamIsHttp2(x: Exchange): boolean {
    const p = x.ctx.port?.protocol;
    if (p === 'HTTP2' || p === 'GRPC') return true;
    if (p === 'HTTP' || p === 'GRPC_WEB') return false;
    return x.protocol === 'HTTP/2';
  }

  private forwardHttp1(x: Exchange, target: UpstreamTarget, headers: Headers, flags: ResponseFlag[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const upstreamStart = performance.now();
      const req = http.request({
        agent: this.agent,
        host: target.ip,
        port: target.port,
        method: x.method,
        path: x.path,
        headers: { ...headers, host: x.authority } as http.OutgoingHttpHeaders,
        setHost: false,
        upstream: target,
      } as http.RequestOptions);
      x.upstream = req;
      req.on('error', (e) => {
        if (x.responded) return resolve();
        // No connection, or a kept-alive one the endpoint had closed meanwhile: nothing reached the application.
        if (e instanceof UpstreamConnectError) return reject(e);
        if (req.reusedSocket) return reject(new UpstreamConnectError('connection termination', (e as Error).message, { cause: e }));
        this.upstreamFailed(x, target, flags, 'UC', 'connection termination');
        resolve();
      });
      req.on('response', (res) => {
        const out = responseHeaders(res.headers, performance.now() - upstreamStart);
        this.relayResponse(x, target, flags, res.statusCode ?? 502, out, res, () => res.trailers as Headers, upstreamStart);
        res.once('end', () => resolve());
        res.once('aborted', () => resolve());
        res.once('error', () => resolve());
      });
      this.pumpRequestBody(x, req, () => req.destroy());
    });
  }

  private forwardHttp2(x: Exchange, target: UpstreamTarget, headers: Headers, flags: ResponseFlag[]): Promise<void> {
    return this.sessionFor(target).then(
      (session) =>
        new Promise<void>((resolve, reject) => {
          const upstreamStart = performance.now();
          let s: http2.ClientHttp2Stream;
          try {
            s = session.request({ ...headers, ':method': x.method, ':path': x.path, ':authority': x.authority, ':scheme': 'http' } as http2.OutgoingHttpHeaders);
          } catch (e) {
            this.sessions.delete(target.address);
            reject(new UpstreamConnectError('remote connection failure', (e as Error).message, { cause: e }));
            return;
          }
          s.on('error', () => {});
          x.upstream = { destroy: () => s.close(http2.constants.NGHTTP2_CANCEL) };
          let trailers: Headers | undefined;
          s.on('trailers', (t) => {
            trailers = t as Headers;
          });
          s.once('response', (h) => {
            const status = Number(h[':status']);
            const out = responseHeaders(h as Headers, performance.now() - upstreamStart);
            this.relayResponse(x, target, flags, status, out, s, () => trailers, upstreamStart, s.endAfterHeaders);
          });
          s.once('close', () => {
            if (!x.responded) {
              // Reset before response headers: REFUSED_STREAM was never processed (safe to retry), others are not.
              if (s.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) {
                reject(new UpstreamConnectError('remote connection failure', 'remote refused stream reset'));
                return;
              }
              this.upstreamFailed(x, target, flags, 'UR', 'remote reset');
            } else if (!x.done && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
              this.upstreamFailed(x, target, flags, 'UR', 'remote reset');
            }
            resolve();
          });
          this.pumpRequestBody(x, s, () => s.close(http2.constants.NGHTTP2_CANCEL));
        }),
    );
  }

  private sessionFor(target: UpstreamTarget): Promise<http2.ClientHttp2Session> {
    let p = this.sessions.get(target.address);
    if (p === undefined) {
      p = this.opts.upstreams.connect(target).then((tunnel) => {
        const session = http2.connect(`http://${target.address}`, { createConnection: () => tunnel });
        session.on('error', () => {});
        const forget = () => {
          if (this.sessions.get(target.address) === p) this.sessions.delete(target.address);
        };
        session.once('close', forget);
        session.once('goaway', forget);
        tunnel.once('close', () => session.destroy());
        return session;
      });
      p.catch(() => {
        if (this.sessions.get(target.address) === p) this.sessions.delete(target.address);
      });
      this.sessions.set(target.address, p);
    }
    return p;
  }

  /** Streams the request body upstream with backpressure; a client that goes away aborts the upstream request. */
  private pumpRequestBody(x: Exchange, upstream: NodeJS.WritableStream & { destroyed?: boolean }, abort: () => void): void {
    x.body.on('data', (chunk: Buffer) => {
      x.bodyBytesReceived += chunk.length;
      if (!upstream.write(chunk)) {
        x.body.pause();
        upstream.once('drain', () => x.body.resume());
      }
    });
    x.body.once('end', () => upstream.end());
    x.body.once('error', abort);
    x.body.once('aborted', abort);
  }

  /** Sends the upstream response downstream: status and headers, body with backpressure, then trailers. */
  private relayResponse(
    x: Exchange,
    target: UpstreamTarget,
    flags: ResponseFlag[],
    status: number,
    headers: http2.OutgoingHttpHeaders,
    body: Readable,
    trailers: () => Headers | undefined,
    upstreamStart: number,
    endAfterHeaders = false,
  ): void {
    if (x.done) {
      body.destroy();
      return;
    }
    x.responded = true;
    const grpcResponse = String(headers['content-type'] ?? '').startsWith('application/grpc');
    let responseBytes = 0;
    let grpcStatus = grpcResponse ? first(headers['grpc-status'] as string | undefined) : undefined;
    const upstreamServiceTimeMs = Math.round(performance.now() - upstreamStart);
    const done = () => this.finish(x, { target, flags, status, grpcStatus, responseHeaders: headers, responseBodyBytes: responseBytes, upstreamServiceTimeMs, details: 'via_upstream' });
    if (endAfterHeaders) {
      x.respond(status, headers, true, false);
      return done();
    }
    x.respond(status, headers, false, grpcResponse && x.protocol === 'HTTP/2');
    body.on('data', (chunk: Buffer) => {
      responseBytes += chunk.length;
      if (!x.write(chunk)) {
        body.pause();
        x.sink.once('drain', () => body.resume());
      }
    });
    body.once('end', () => {
      const t = trailers();
      const forward: http2.OutgoingHttpHeaders | undefined = t && Object.keys(t).length ? { ...t } : grpcResponse && x.protocol === 'HTTP/2' ? {} : undefined;
      if (t?.['grpc-status'] !== undefined) grpcStatus = first(t['grpc-status']);
      x.end(forward);
      done();
    });
  }

  /** The upstream went away: before the response a local 503, after it a reset downstream. */
  private upstreamFailed(x: Exchange, target: UpstreamTarget, flags: ResponseFlag[], flag: ResponseFlag, reason: string): void {
    if (x.done) return;
    flags.push(flag);
    if (!x.responded) {
      return this.localReply(
        x,
        { status: 503, body: `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`, flags, details: `upstream_reset_before_response_started{${reason}}` },
        target,
      );
    }
    x.reset();
    this.finish(x, { target, flags, status: 0, responseHeaders: {}, responseBodyBytes: 0, details: `upstream_reset_after_response_started{${reason}}` });
  }

  private onDownstreamClosed(x: Exchange): void {
    x.upstream?.destroy();
    this.finish(x, { target: undefined, flags: ['DC'], status: 0, responseHeaders: {}, responseBodyBytes: 0, details: 'downstream_remote_disconnect' });
  }

  /** Envoy's local reply: text/plain body, or a trailers-only gRPC status for gRPC requests. */
  private localReply(x: Exchange, r: LocalReply, target: UpstreamTarget | undefined): void {
    if (x.done) return;
    x.responded = true;
    const base = { target, flags: r.flags, details: r.details, ...(r.transportFailure !== undefined ? { transportFailure: r.transportFailure } : {}) };
    if (x.grpc) {
      const code = String(GRPC_STATUS_OF[r.status] ?? 2);
      const h: http2.OutgoingHttpHeaders = { 'content-type': 'application/grpc', 'grpc-status': code, server: 'istio-envoy' };
      if (r.body) h['grpc-message'] = grpcMessage(r.body);
      x.respond(200, h, true, false);
      return this.finish(x, { ...base, status: 200, grpcStatus: code, responseHeaders: h, responseBodyBytes: 0 });
    }
    const h: http2.OutgoingHttpHeaders = { server: 'istio-envoy', date: new Date().toUTCString(), 'content-length': String(Buffer.byteLength(r.body)) };
    if (r.body) h['content-type'] = 'text/plain';
    x.respond(r.status, h, !r.body, false);
    if (r.body) {
      x.write(Buffer.from(r.body));
      x.end();
    }
    this.finish(x, { ...base, status: r.status, responseHeaders: h, responseBodyBytes: Buffer.byteLength(r.body) });
  }

  /** Records one finished request: metrics and the access-log line. */
  private finish(x: Exchange, f: Finished): void {
    if (x.done) return;
    x.done = true;
    const { ctx } = x;
    const forwardedFor = first(x.headers['x-forwarded-for']);
    const userAgent = first(x.headers['user-agent']);
    const requestId = first(x.headers['x-request-id']);
    this.opts.telemetry.recordRequest({
      source: ctx.source,
      destination: this.opts.peerLabels(f.target?.workload),
      destinationService: ctx.destinationService,
      requestProtocol: x.grpc ? 'grpc' : 'http',
      responseCode: f.status,
      responseFlags: f.flags,
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: performance.now() - x.start,
      requestBytes: x.requestHeaderBytes + x.bodyBytesReceived,
      // The status line and headers as they go on the wire, plus the body.
      responseBytes: f.status === 0 ? 0 : 17 + headerBytes(f.responseHeaders as Headers) + f.responseBodyBytes,
      startTime: x.startTime,
      method: x.method,
      path: x.rawPath,
      protocol: x.protocol,
      responseCodeDetails: f.details,
      bodyBytesReceived: x.bodyBytesReceived,
      bodyBytesSent: f.responseBodyBytes,
      downstreamLocalAddress: `${ctx.targetIp}:${ctx.targetPort}`,
      downstreamRemoteAddress: ctx.peerAddress,
      authority: x.authority,
      upstreamCluster: ctx.cluster,
      routeName: 'default',
      ...(f.grpcStatus !== undefined ? { grpcStatus: f.grpcStatus } : {}),
      ...(f.transportFailure !== undefined ? { upstreamTransportFailureReason: f.transportFailure } : {}),
      ...(f.upstreamServiceTimeMs !== undefined ? { upstreamServiceTimeMs: f.upstreamServiceTimeMs } : {}),
      ...(f.target ? upstreamAddresses(f.target) : {}),
      ...(forwardedFor ? { forwardedFor } : {}),
      ...(userAgent ? { userAgent } : {}),
      ...(requestId ? { requestId } : {}),
    });
  }

  /** A request the codec could not parse: counted and logged as Envoy does (400, DPE, `http1.codec_error`). */
  private recordProtocolError(ctx: StreamContext): void {
    this.opts.telemetry.recordRequest({
      source: ctx.source,
      destination: this.opts.peerLabels(undefined),
      destinationService: ctx.destinationService,
      requestProtocol: 'http',
      responseCode: 400,
      responseFlags: ['DPE'],
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: 0,
      requestBytes: 0,
      responseBytes: BAD_REQUEST.length,
      startTime: Date.now(),
      method: '',
      path: '',
      protocol: 'HTTP/1.1',
      responseCodeDetails: 'http1.codec_error',
      bodyBytesReceived: 0,
      bodyBytesSent: 11,
      downstreamLocalAddress: `${ctx.targetIp}:${ctx.targetPort}`,
      downstreamRemoteAddress: ctx.peerAddress,
      upstreamCluster: ctx.cluster,
    });
  }

  /**
   * Starts a graceful drain: idle HTTP/1.1 connections are closed, busy ones answer with `connection: close`, HTTP/2
   * clients get GOAWAY. Requests in flight finish.
   */
  drain(): void {
    this.draining = true;
    for (const [socket, busy] of this.downstreams) if (busy === 0) socket.end();
    for (const session of this.downstreamSessions) session.close();
  }

  async close(): Promise<void> {
    this.agent.destroy();
    for (const p of this.sessions.values()) p.then((s) => s.close(), () => undefined);
    this.sessions.clear();
    this.h1.close();
  }
}

/** Response headers sent downstream: hop-by-hop removed, Envoy's `server` and upstream service time added. */
function responseHeaders(h: Headers, upstreamMs: number): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const k in h) {
    if (k[0] === ':' || HOP_BY_HOP.has(k)) continue;
    out[k] = h[k];
  }
  out.server = 'istio-envoy';
  out['x-envoy-upstream-service-time'] = String(Math.round(upstreamMs));
  return out;
}

function splitHostPort(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, colon).replace(/^\[|\]$/g, ''), Number(hostPort.slice(colon + 1))];
}

/** The stream context of each downstream HTTP/1.1 connection, by its socket. */
const CONTEXTS = new WeakMap<object, StreamContext>();

/**
 * Keep-alive HTTP/1.1 connections to endpoints, each one a CONNECT stream (pooled onto HBONE connections by the
 * HBONE pool) or a TCP connection. Node's Agent keys its pools by host and port, i.e. by endpoint.
 */
class TunnelAgent extends http.Agent {
  constructor(
    private readonly upstreams: Upstreams,
    options: http.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: http.ClientRequestArgs, oncreate?: (err: Error | null, socket: Duplex) => void): undefined {
    // The request names its endpoint (forwardHttp1 passes it along with the request options).
    const target = (options as { upstream: UpstreamTarget }).upstream;
    this.upstreams.connect(target).then(
      (stream) => oncreate!(null, new TunnelSocket(stream)),
      (e: Error) => oncreate!(e, undefined as unknown as Duplex),
    );
    return undefined;
  }
}
