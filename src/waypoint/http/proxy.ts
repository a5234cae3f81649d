// The waypoint's HTTP path: the HTTP/1.1 or HTTP/2 (h2c) conversation inside one CONNECT stream, each request run
// through Envoy's waypoint pipeline as istiod configures it (envoy-l7 reference §0): path normalization, RBAC (DENY,
// then ALLOW, AUDIT logged), the default route (the Service itself, `reset-before-request` retried twice except for
// gRPC), an endpoint by least request, the upstream request over HBONE, and the response streamed back with Envoy's
// headers. WebSocket upgrades are spliced through once the endpoint answers 101; an h2c upgrade is ignored, other
// upgrades and CONNECT are refused, as Envoy does with Istio's upgrade configuration. Local replies carry Envoy's
// status, body, response flags and details; gRPC requests get them as trailers-only responses. Whatever a client or
// an endpoint sends, one request's failure never touches another's or the process.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyBidirectional } from '../../hbone/copy.js';
import type { Logger } from '../../telemetry/log.js';
import type { Service, WaypointCorsPolicy, WaypointFault, WaypointHeaderModifier, WaypointRedirect, WaypointRetry, WaypointRouteBackend, WaypointService, WaypointServicePort, Workload } from '../../xds/types.js';
import { RBAC_DENIED_BODY, authorize } from '../authz/rbac.js';
import type { HttpRequestAttributes, RequestAttributes } from '../authz/request.js';
import type { WaypointState } from '../state.js';
import type { DestinationServiceLabels, HttpRequestRecord, PeerLabels, ResponseFlag, WaypointTelemetry } from '../telemetry.js';
import { modifyHeaders, queryParams, rewritePath, type CompiledRoute } from './router.js';
import { UpstreamConnectError, isWildcardTarget, localReplyBody, resetDetails, timerMs, type UpstreamCluster, type UpstreamTarget, type Upstreams } from '../upstream.js';
import { GrpcMessageCounter, grpcMessage, grpcStatusOf, isGrpcContentType } from './grpc.js';
import { wwwAuthenticate } from './jwt.js';
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
  /** The destination_service labels of a Service a route sent a request to (the caller caches them per Service). */
  serviceLabels(s: Service): DestinationServiceLabels;
}

/** Envoy's HTTP/1 codec limit on headers (60 KiB): a request's beyond it get 431, a response's are a protocol error. */
const MAX_HEADER_BYTES = 60 * 1024;
/** Envoy's local replies to a request its HTTP/1 codec refuses; the connection closes. */
const BAD_REQUEST = codecErrorReply(400, 'Bad Request');
const HEADERS_TOO_LARGE = codecErrorReply(431, 'Request Header Fields Too Large');
/** A downstream HTTP/2 session with no stream open for this long is closed (Envoy's idle timeout is an hour). */
const DOWNSTREAM_IDLE_MS = 3_600_000;
/** Upstream HTTP/2 sessions idle this long are closed (Envoy's upstream connection pool idle timeout, an hour). */
const UPSTREAM_IDLE_MS = 3_600_000;
/** How long a downstream HTTP/2 session may have stopped reading with nothing to do before it counts as failed. */
const STOPPED_SESSION_MS = 100;
/**
 * How much of a request body is kept to send again on a retry (Envoy's per-connection buffer limit, 1 MiB); a longer
 * body is sent once, and a failure after it started is final.
 */
const RETRY_BUFFER_BYTES = 1 << 20;

/** Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1, plus Envoy's list). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** An HTTP/1.1 absolute-form request target (`GET http://host/path`), which Envoy's codec turns into host and path. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;
/** Envoy's default route retries a request whose upstream stream was reset before it was sent, twice. */
const DEFAULT_RETRIES = 2;
/** Envoy caps the retry back-off at 10 times its base interval. */
const MAX_BACKOFF_FACTOR = 10;

/** How much of a request body may wait for a slow mirror before the mirror is dropped. */
const MIRROR_BUFFER_BYTES = 1024 * 1024;
/** Envoy's retry back-off base interval (full jitter, 25 ms). */
const RETRY_BASE_MS = 25;
/** Node's HTTP/2 errors that mean the session, not the request, is unusable: the request may go on another one. */
const SESSION_GONE = new Set(['ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_OUT_OF_STREAMS']);

type Headers = Record<string, string | string[] | undefined>;

/** What a local reply says, as Envoy's router and filters word it. */
interface LocalReply {
  status: number;
  body: string;
  flags: ResponseFlag[];
  details: string;
  transportFailure?: string;
  /** Headers the filter that answers adds (jwt_authn's `www-authenticate`). */
  headers?: http2.OutgoingHttpHeaders;
}

/** The body of the fault filter's abort. */
const FAULT_ABORT_BODY = 'fault filter abort';

/** The CORS headers Envoy's filter adds to the answer of a request from an allowed origin. */
function addCorsHeaders(x: Exchange, h: http2.OutgoingHttpHeaders): void {
  const c = x.cors;
  if (c === undefined) return;
  h['access-control-allow-origin'] = c.origin;
  if (c.policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
  if (c.policy.exposeHeaders) h['access-control-expose-headers'] = c.policy.exposeHeaders;
}

/** Envoy's circuit breaker: the request is not sent (`x-envoy-overloaded: true` is added to the reply). */
const OVERFLOW: LocalReply = { status: 503, body: localReplyBody('overflow', '', false), flags: ['UO'], details: resetDetails('overflow') };

/** Envoy refuses an upgrade (or CONNECT) its route does not allow before any filter runs: 403, empty body. */
const UPGRADE_FAILED: LocalReply = { status: 403, body: '', flags: [], details: 'upgrade_failed' };

/** How a request ended, for its metrics and access-log line. */
interface Finished {
  target: UpstreamTarget | undefined;
  flags: readonly ResponseFlag[];
  grpcStatus?: string;
  responseMessages?: number;
  upstreamServiceTimeMs?: number;
  details: string;
  transportFailure?: string;
}

/** Several values of a header as one, joined with ',' (how Envoy's matchers and access log see them). */
function joined(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** The rightmost X-Forwarded-For entry: Envoy's trusted client address with use_remote_address false. */
function remoteIpOf(xff: string | undefined, peer: string): string {
  if (!xff) return peer;
  const comma = xff.lastIndexOf(',');
  const last = (comma < 0 ? xff : xff.slice(comma + 1)).trim();
  return last || peer;
}

/** Header bytes as on an HTTP/1.1 wire (`name: value\r\n`); pseudo-headers of a response are not counted. */
function headerBytes(headers: Headers | http2.OutgoingHttpHeaders): number {
  let n = 0;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || k === ':status') continue;
    n += k.length + 4 + (Array.isArray(v) ? v.join(',').length : String(v).length);
  }
  return n;
}

function codecErrorReply(status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text}\r\ncontent-length: ${text.length}\r\ncontent-type: text/plain\r\nserver: istio-envoy\r\nconnection: close\r\n\r\n${text}`;
}

/** `Upgrade: h2c` (RFC 7540 §3.2), which Envoy's HTTP/1 codec ignores. */
function isH2cUpgrade(req: http.IncomingMessage): boolean {
  const upgrade = joined(req.headers.upgrade);
  return upgrade !== undefined && upgrade.trim().toLowerCase() === 'h2c';
}

/** An upstream HTTP/1 response Node's parser could not read: Envoy's upstream protocol error. */
function isParseError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return typeof code === 'string' && code.startsWith('HPE_');
}

/**
 * The downstream request body, read once. What was read is kept (up to RETRY_BUFFER_BYTES) so a retry can send it
 * again; between attempts the source is paused, so nothing is read that no attempt would take.
 */
class RequestBody {
  /** Body bytes read from the client. */
  bytes = 0;
  ended: boolean;
  /** Reading has begun (an HTTP/1.1 body never read is discarded by Node itself after the response). */
  started = false;
  readonly messages: GrpcMessageCounter | undefined;
  /** Undefined once the body outgrew the retry buffer, the response started, or retries are off. */
  private chunks: Buffer[] | undefined;
  private buffered = 0;
  private sink: Writable | undefined;
  /** Mirrored copies of the request: fed as the body arrives, never slowing it down. */
  private shadows: Writable[] | undefined;
  private endCallbacks: (() => void)[] | undefined;
  private readonly resume = () => this.source.resume();

  constructor(
    private readonly source: Readable,
    /** The request has no body (HTTP/2 END_STREAM on its headers, or HTTP/1.1 without content-length or chunking). */
    readonly empty: boolean,
    retriable: boolean,
    grpc: boolean,
  ) {
    this.ended = empty;
    this.chunks = retriable ? [] : undefined;
    this.messages = grpc ? new GrpcMessageCounter() : undefined;
    // Errors surface as the exchange's close; an unobserved one must not crash the process.
    source.on('error', () => {});
  }

  /** The whole body can be sent (again) to a new attempt. */
  get replayable(): boolean {
    return this.chunks !== undefined || (this.bytes === 0 && !this.ended);
  }

  /** Sends the body to `sink`: what a previous attempt took, then the rest as it arrives, with backpressure. */
  attach(sink: Writable): void {
    if (this.chunks !== undefined) for (const chunk of this.chunks) sink.write(chunk);
    if (this.ended) {
      sink.end();
      return;
    }
    this.sink = sink;
    if (!this.started) {
      this.started = true;
      this.source.on('data', (chunk: Buffer) => this.onData(chunk));
      this.source.once('end', () => {
        this.ended = true;
        this.sink?.end();
        if (this.shadows !== undefined) for (const w of this.shadows) if (!w.destroyed) w.end();
        if (this.endCallbacks !== undefined) for (const cb of this.endCallbacks.splice(0)) cb();
      });
    }
    this.source.resume();
  }

  /** The current attempt is over: stop feeding it, and hold the rest of the body until another one attaches. */
  detach(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    this.sink = undefined;
    sink.removeListener('drain', this.resume);
    if (!this.ended) this.source.pause();
  }

  /** The response started: no retry can happen any more, so nothing is kept. */
  release(): void {
    this.chunks = undefined;
  }

  /** A route's retry policy applies (gRPC included): keep what is read for another attempt, if reading has not begun. */
  keepForRetries(): void {
    if (!this.started && this.chunks === undefined) this.chunks = [];
  }

  /** Calls `cb` once the whole body has been read (at once if it has, or there is none). */
  onEnd(cb: () => void): void {
    if (this.ended) cb();
    else (this.endCallbacks ??= []).push(cb);
  }

  /**
   * Feeds a mirrored request the body as it arrives (it is read once the main request has a connection). A mirror
   * that cannot keep up (over MIRROR_BUFFER_BYTES queued) is dropped rather than hold the request back.
   */
  addShadow(w: Writable): void {
    if (this.ended && this.bytes === 0) {
      w.end();
      return;
    }
    (this.shadows ??= []).push(w);
  }

  /** The exchange is over: a mirror still waiting for body bytes that will never come is abandoned. */
  dropShadows(): void {
    if (this.shadows === undefined) return;
    if (!this.ended) for (const w of this.shadows) w.destroy();
    this.shadows = undefined;
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.messages?.feed(chunk);
    if (this.chunks !== undefined) {
      if (this.buffered + chunk.length > RETRY_BUFFER_BYTES) this.chunks = undefined;
      else {
        this.chunks.push(chunk);
        this.buffered += chunk.length;
      }
    }
    if (this.shadows !== undefined) {
      for (const w of this.shadows) {
        if (w.destroyed) continue;
        if (w.writableLength + chunk.length > MIRROR_BUFFER_BYTES) w.destroy();
        else w.write(chunk);
      }
    }
    const sink = this.sink;
    if (sink !== undefined && !sink.write(chunk)) {
      this.source.pause();
      sink.once('drain', this.resume);
    }
  }
}

/**
 * An attempt the waypoint ended itself: its per-try timeout passed, or its response has a status the route's retry
 * policy retries. The retry loop decides what follows.
 */
class AttemptAborted extends Error {
  constructor(
    readonly reason: 'per_try_timeout' | 'retriable_status',
    readonly status = 0,
  ) {
    super(reason);
  }
}

/** Istio's default retry_on conditions of a route (route/retry: besides the listed status codes). */
const DEFAULT_RETRY_ON: ReadonlySet<string> = new Set(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']);
/** Envoy's gRPC retry conditions, by the grpc-status of response headers they retry. */
const GRPC_RETRY_ON: Readonly<Record<string, string>> = { '1': 'cancelled', '4': 'deadline-exceeded', '8': 'resource-exhausted', '13': 'internal', '14': 'unavailable' };
/** Conditions that retry any reset and a per-try timeout too (Envoy's wouldRetryFromReset). */
const RESET_RETRY_ON = ['5xx', 'gateway-error', 'reset'] as const;
const retryOnSets = new WeakMap<WaypointRetry, ReadonlySet<string>>();

/** A policy's retry_on conditions as a set, built once per configuration. */
function retryOn(policy: WaypointRetry): ReadonlySet<string> {
  if (!policy.conditions?.length) return DEFAULT_RETRY_ON;
  let on = retryOnSets.get(policy);
  if (on === undefined) retryOnSets.set(policy, (on = new Set(policy.conditions)));
  return on;
}

/**
 * Whether a response (its status, and grpc-status when in its headers) is retried. Listed codes always are (istiod adds
 * `retriable-status-codes` with them).
 */
function retriesStatus(policy: WaypointRetry, status: number, grpcStatus: string | undefined): boolean {
  const on = retryOn(policy);
  if (policy.codes.includes(status)) return true;
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  const grpc = grpcStatus === undefined ? undefined : GRPC_RETRY_ON[grpcStatus];
  return grpc !== undefined && on.has(grpc);
}

/**
 * Whether a failure before the request reached the application is retried: always without a route policy (Istio's
 * inbound default, reset-before-request) or with Istio's default conditions; otherwise on a condition naming it or
 * any reset.
 */
function retriesReset(policy: WaypointRetry | undefined, e: UpstreamConnectError): boolean {
  if (policy === undefined || !policy.conditions?.length) return true;
  const on = retryOn(policy);
  if (on.has('reset-before-request') || RESET_RETRY_ON.some((c) => on.has(c))) return true;
  return e.flag === 'UF' ? on.has('connect-failure') : e.flag === 'UR' ? on.has('refused-stream') : false;
}

function retriesTimeout(policy: WaypointRetry | undefined): boolean {
  return policy !== undefined && RESET_RETRY_ON.some((c) => retryOn(policy).has(c));
}

/** Envoy's local reply when a timeout passes before the response. */
const UPSTREAM_TIMEOUT_BODY = 'upstream request timeout';

/** Where an HTTPRoute sent a request: for the upstream, the metrics and the access log. */
interface RoutedTo {
  routeName: string;
  /** The backend Service and its port (undefined for a direct response). */
  service?: Service;
  port?: number;
  destinationService?: DestinationServiceLabels;
  cluster?: string;
  responseHeaders?: WaypointHeaderModifier;
}

/** One request as the codecs present it, with the means to answer it; the matchers read it as its HTTP attributes. */
abstract class Exchange implements HttpRequestAttributes {
  abstract readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  readonly startTime = Date.now();
  readonly start = performance.now();
  /** The request target: as received until the pipeline normalizes it; what goes upstream and into the log. */
  path: string;
  readonly grpc: boolean;
  responded = false;
  done = false;
  /** What went downstream, for the metrics and the log: the status (0 until a response started), headers, body bytes. */
  status = 0;
  responseHeaders: http2.OutgoingHttpHeaders | undefined = undefined;
  bytesSent = 0;
  /** The upstream request in progress, cancelled when the client goes away. */
  upstream: { destroy(): void } | undefined = undefined;
  /** Set when an HTTPRoute sent the request elsewhere than the Service it was addressed to. */
  routed: RoutedTo | undefined = undefined;
  /** The path sent upstream when a URLRewrite changed it (the log keeps the original, as Envoy's does). */
  upstreamPath: string | undefined = undefined;
  /** The route's retry policy, and whether this attempt may still be followed by another. */
  retryPolicy: WaypointRetry | undefined = undefined;
  retryLeft = false;
  /** Why the waypoint cut the attempt in progress short, once it did. */
  abortedAttempt: AttemptAborted | undefined = undefined;
  /** The cluster's max_retries breaker kept this attempt from being retried. */
  retryOverflow = false;
  /** The circuit breaker refused the request: the reply says `x-envoy-overloaded`. */
  overloaded = false;
  /** The status the endpoint answered the current attempt with (0: none yet), for outlier detection. */
  upstreamStatus = 0;
  /** A consistent-hash cookie the waypoint generated, set on the response (`set-cookie`). */
  setCookie: string | undefined = undefined;
  /** The client went away before the exchange was over. */
  downstreamClosed = false;
  /** Aborted when the client goes away: waits on its behalf (a fault delay) end with it. */
  readonly gone = new AbortController();
  /** The fault filter delayed the request (Envoy's DI flag on whatever answer follows). */
  delayed = false;
  /** The CORS policy that allowed the request's origin: its answer carries the CORS response headers. */
  cors: { origin: string; policy: WaypointCorsPolicy } | undefined = undefined;
  readonly body: RequestBody;

  constructor(
    readonly ctx: StreamContext,
    readonly method: string,
    path: string,
    readonly authority: string,
    readonly headers: Headers,
    body: Readable,
    bodyless: boolean,
    readonly requestHeaderBytes: number,
  ) {
    this.path = path;
    this.grpc = isGrpcContentType(headers['content-type']);
    this.body = new RequestBody(body, bodyless, !this.grpc, this.grpc);
  }

  get host(): string {
    return this.authority;
  }

  header(name: string): string | undefined {
    return joined(this.headers[name]);
  }

  /** Starts the response (trailers, if any, come with `end`); may throw if Node refuses the status or a header. */
  abstract respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean): void;
  abstract write(chunk: Buffer): boolean;
  abstract onceDrain(cb: () => void): void;
  abstract end(trailers?: http2.OutgoingHttpHeaders): void;
  /** Resets the downstream stream (HTTP/2) or connection (HTTP/1.1) after the response started. */
  abstract reset(): void;
  /**
   * The response is complete but the request body is not: Envoy does not wait for the rest. It closes the connection
   * (HTTP/1.1) or resets the stream with NO_ERROR (HTTP/2) once the response is out.
   */
  abstract abandonRequest(): void;
}

class Http1Exchange extends Exchange {
  readonly protocol = 'HTTP/1.1';

  constructor(
    ctx: StreamContext,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    const url = req.url ?? '/';
    const absolute = url[0] === '/' ? null : ABSOLUTE_FORM.exec(url);
    const bodyless = req.headers['content-length'] === undefined ? req.headers['transfer-encoding'] === undefined : req.headers['content-length'] === '0';
    super(
      ctx,
      req.method ?? 'GET',
      absolute ? absolute[2] || '/' : url,
      absolute ? absolute[1]! : (req.headers.host ?? ''),
      req.headers,
      req,
      bodyless,
      headerBytes(req.headers) + (req.method?.length ?? 0) + url.length + 12,
    );
  }

  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean): void {
    // A complete response to a request still being sent: the connection closes after it.
    if (endStream && !this.body.ended && this.body.started) this.res.setHeader('connection', 'close');
    this.res.writeHead(status, headers as http.OutgoingHttpHeaders);
    if (endStream) this.res.end();
  }

  write(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onceDrain(cb: () => void): void {
    this.res.once('drain', cb);
  }

  end(trailers?: http2.OutgoingHttpHeaders): void {
    if (trailers) this.res.addTrailers(trailers as Record<string, string>);
    this.res.end();
  }

  reset(): void {
    this.req.socket.destroy();
  }

  abandonRequest(): void {
    // A body never read is Node's to discard (it keeps the connection); one read in part leaves the parser mid-body.
    const socket = this.req.socket as unknown as TunnelSocket;
    if (this.body.started && !socket.destroyed) socket.endAndClose();
  }
}

class Http2Exchange extends Exchange {
  readonly protocol = 'HTTP/2';

  constructor(
    ctx: StreamContext,
    private readonly s: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) {
    const plain: Headers = {};
    for (const k in headers) if (k[0] !== ':') plain[k] = headers[k];
    super(
      ctx,
      joined(headers[':method']) ?? 'GET',
      joined(headers[':path']) ?? '',
      joined(headers[':authority']) ?? joined(headers.host) ?? '',
      plain,
      s,
      s.endAfterHeaders,
      headerBytes(headers as Headers),
    );
  }

  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean): void {
    if (this.s.destroyed || this.s.closed) return;
    headers[':status'] = status;
    // Trailers are known only at the end of a streamed response, so every one may carry them.
    this.s.respond(headers, { endStream, waitForTrailers: !endStream });
  }

  write(chunk: Buffer): boolean {
    return this.s.write(chunk);
  }

  onceDrain(cb: () => void): void {
    this.s.once('drain', cb);
  }

  end(trailers?: http2.OutgoingHttpHeaders): void {
    if (this.s.destroyed) return;
    // No trailers: Node ends the stream with an empty DATA frame.
    this.s.once('wantTrailers', () => this.s.sendTrailers(trailers ?? {}));
    this.s.end();
  }

  reset(): void {
    this.s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }

  abandonRequest(): void {
    // Sent once the response's frames are out (Node waits for the stream's end to flush).
    this.s.close(http2.constants.NGHTTP2_NO_ERROR);
  }
}

/**
 * An HTTP/1.1 request asking to switch protocols (or CONNECT), which Node hands over with the raw connection: the
 * answer is written as bytes, and after a 101 the connection carries the new protocol both ways.
 */
class UpgradeExchange extends Exchange {
  readonly protocol = 'HTTP/1.1';
  /** Switched: the bytes now flow between client and endpoint until either closes. */
  spliced = false;

  constructor(
    ctx: StreamContext,
    req: http.IncomingMessage,
    readonly socket: Duplex,
    /** Bytes the client sent after the request head. */
    readonly head: Buffer,
  ) {
    super(ctx, req.method ?? 'GET', req.url ?? '/', req.headers.host ?? '', req.headers, req, true, headerBytes(req.headers) + (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12);
  }

  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean): void {
    let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const one of v) head += `${k}: ${one}\r\n`;
      else head += `${k}: ${v}\r\n`;
    }
    // Anything but a switch ends the connection (its body, if any, is delimited by the close).
    if (status !== 101) head += 'connection: close\r\n';
    this.socket.write(head + '\r\n');
    if (endStream) this.socket.end();
  }

  write(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onceDrain(cb: () => void): void {
    this.socket.once('drain', cb);
  }

  end(): void {
    this.socket.end();
  }

  reset(): void {
    this.socket.destroy();
  }

  abandonRequest(): void {
    if (!this.socket.destroyed) this.socket.end();
  }
}

export class HttpProxy {
  private readonly h1: http.Server;
  private readonly agent: TunnelAgent;
  /** Upstream HTTP/2 sessions, one per endpoint. */
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
  /**
   * HTTP/1.1 connection pools of clusters with a DestinationRule connectionPool or TLS, by cluster key, replaced
   * when the settings change; other clusters share `agent`.
   */
  private readonly clusterAgents = new Map<string, { settings: string; agent: TunnelAgent }>();
  /** Streams opened on each upstream HTTP/2 session, for maxRequestsPerConnection. */
  private readonly sessionStreams = new WeakMap<http2.ClientHttp2Session, number>();
  /** Downstream HTTP/1.1 connections with their requests in progress, and HTTP/2 sessions: what a drain must close. */
  private readonly downstreams = new Map<TunnelSocket, number>();
  private readonly downstreamSessions = new Set<http2.ServerHttp2Session>();
  private draining = false;

  constructor(private readonly opts: HttpProxyOptions) {
    // A waypoint's HCM has no request or header timeout. Node's keep-alive timeout would add a `Keep-Alive` header
    // Envoy never sends; idle downstream connections end with their CONNECT stream instead.
    this.h1 = http.createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0, maxHeaderSize: MAX_HEADER_BYTES }, (req, res) =>
      this.fromHttp1(req, res),
    );
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // A request the codec refuses: Envoy's local reply (431 for headers over the limit, else 400, flag DPE) and the
      // connection closes; nothing else is affected.
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      if (!socket.destroyed && socket.writable) socket.end(tooLarge ? HEADERS_TOO_LARGE : BAD_REQUEST);
      else socket.destroy();
      this.opts.log.debug(`downstream protocol error: ${err.message}`);
      const ctx = CONTEXTS.get(socket);
      if (ctx) this.recordProtocolError(ctx, tooLarge);
    });
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.fromUpgrade(req, socket, head));
    this.h1.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.fromUpgrade(req, socket, head));
    this.agent = new TunnelAgent(opts.upstreams, { keepAlive: true, maxSockets: Infinity, scheduling: 'lifo', timeout: UPSTREAM_IDLE_MS });
  }

  /** Serves the HTTP conversation inside one CONNECT stream; the first bytes say which HTTP version it speaks. */
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
    let stopped: NodeJS.Timeout | undefined;
    const checkStopped = () => {
      if (stream.isPaused() && open === 0 && !session.destroyed && session.state.outboundQueueSize === 0) session.destroy();
    };
    stream.on('pause', () => {
      if (stopped === undefined) stopped = setTimeout(checkStopped, STOPPED_SESSION_MS).unref();
      else stopped.refresh();
    });
    session.once('close', () => clearTimeout(stopped));
    session.setTimeout(DOWNSTREAM_IDLE_MS, () => {
      if (open === 0) session.destroy();
    });
    this.downstreamSessions.add(session);
    session.once('close', () => this.downstreamSessions.delete(session));
    if (this.draining) session.close();
    session.on('stream', (s: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      open++;
      s.once('close', () => open--);
      this.fromHttp2(s, headers, ctx);
    });
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
    const x = new Http1Exchange(ctx, req, res);
    res.once('close', () => {
      if (!x.done) this.onDownstreamClosed(x);
    });
    void this.handle(x);
  }

  private fromHttp2(s: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ctx: StreamContext): void {
    s.on('error', () => {});
    const x = new Http2Exchange(ctx, s, headers);
    s.once('close', () => {
      if (!x.done) this.onDownstreamClosed(x);
    });
    if (x.method === 'CONNECT') return this.localReply(x, UPGRADE_FAILED, undefined);
    void this.handle(x);
  }

  private fromUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const ctx = CONTEXTS.get(socket)!;
    if (req.method !== 'CONNECT' && isH2cUpgrade(req)) return this.withoutH2cUpgrade(req, socket, head);
    socket.on('error', () => {});
    const x = new UpgradeExchange(ctx, req, socket, head);
    socket.once('close', () => {
      if (!x.done && !x.spliced) this.onDownstreamClosed(x);
    });
    // Istio's HCM allows the websocket upgrade only.
    if (req.method === 'CONNECT' || joined(req.headers.upgrade)?.toLowerCase() !== 'websocket') return this.localReply(x, UPGRADE_FAILED, undefined);
    void this.handle(x);
  }

  /**
   * Envoy's HTTP/1 codec drops an h2c upgrade and serves the request as HTTP/1.1. Node has already handed the
   * connection over, so the request head goes back in front of its bytes without the upgrade headers, and the
   * server takes the connection up again.
   */
  private withoutH2cUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name === 'upgrade' || name === 'http2-settings') continue;
      let value = raw[i + 1]!;
      if (name === 'connection') {
        value = value
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '' && !/^(upgrade|http2-settings)$/i.test(t))
          .join(', ');
        if (value === '') continue;
      }
      text += `${raw[i]}: ${value}\r\n`;
    }
    socket.unshift(Buffer.concat([Buffer.from(text + '\r\n', 'latin1'), head]));
    this.h1.emit('connection', socket);
  }

  /** Runs one request through the pipeline; never throws. */
  private async handle(x: Exchange): Promise<void> {
    try {
      await this.pipeline(x);
    } catch (e) {
      this.opts.log.error(`request ${x.method} ${x.path} failed unexpectedly: ${(e as Error).stack ?? e}`);
      x.upstream?.destroy();
      if (!x.responded) this.localReply(x, { status: 500, body: '', flags: [], details: 'internal_error' }, undefined);
      else {
        x.reset();
        this.finish(x, { target: undefined, flags: [], details: 'internal_error' });
      }
    }
  }

  private async pipeline(x: Exchange): Promise<void> {
    const { ctx } = x;
    // Only origin-form targets reach the application layer.
    if (x.path[0] !== '/') return this.localReply(x, { status: 404, body: '', flags: [], details: 'absolute_path_rejected' }, undefined);
    const normalized = normalizePath(x.path);
    if (normalized === undefined) return this.localReply(x, { status: 400, body: 'Bad Request', flags: [], details: 'path_normalization_failed' }, undefined);
    x.path = normalized;

    // Envoy's jwt_authn before RBAC (a CORS preflight bypasses it): a token that fails is refused here; a verified one
    // gives authorization its payload.
    let jwt: RequestAttributes['jwt'];
    const authn = this.opts.state.authenticator(ctx.bound);
    if (!authn.empty && !(x.method === 'OPTIONS' && !!x.header('origin') && x.header('access-control-request-method') !== undefined)) {
      const outcome = await authn.authenticate(x);
      if (x.done) return;
      if (!outcome.ok) {
        const reply = { status: outcome.status, body: outcome.body, flags: [], details: `jwt_authn_access_denied{${outcome.body.replaceAll(' ', '_')}}` };
        return this.localReply(x, { ...reply, headers: { 'www-authenticate': wwwAuthenticate(x.authority, x.path, outcome.body) } }, undefined);
      }
      for (const name of outcome.remove) delete x.headers[name];
      for (const [name, value] of outcome.set) x.headers[name] = value;
      if (outcome.removeParams.length > 0) x.path = withoutParams(x.path, outcome.removeParams);
      if (outcome.payload !== undefined) jwt = { payload: outcome.payload };
    }
    const attrs: RequestAttributes = {
      sourceIp: ctx.peerIp,
      remoteIp: remoteIpOf(x.header('x-forwarded-for'), ctx.peerIp),
      sourcePrincipal: ctx.sourcePrincipal,
      destinationIp: ctx.targetIp,
      destinationPort: ctx.targetPort,
      http: x,
    };
    if (jwt !== undefined) attrs.jwt = jwt;
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

    let service = ctx.service;
    let servicePort = ctx.targetPort;
    const route = ctx.bound === undefined ? undefined : this.opts.state.routeTable(ctx.bound).select(ctx.targetPort, x);
    let backend: WaypointRouteBackend | undefined;
    if (route === 'none') return this.localReply(x, { status: 404, body: '', flags: ['NR'], details: 'route_not_found' }, undefined);
    if (route !== undefined) {
      backend = route.pickBackend();
      const r = route.route;
      x.routed = { routeName: r.name, responseHeaders: r.responseHeaders };
      // Envoy's fault filter, then its CORS filter, run before the router acts on the route.
      if (r.fault && (await this.injectFault(x, r.fault))) return;
      if (r.cors && this.corsFilter(x, route, r.cors)) return;
      if (r.redirect) return this.redirect(x, r.redirect, route);
      if (backend === undefined) return this.localReply(x, { status: r.directStatus || 500, body: r.directBody ?? '', flags: [], details: 'direct_response' }, undefined);
      // An unresolved backendRef: the Gateway API's 500. A Service the mesh does not know (yet), or a subset no
      // DestinationRule defines: Envoy has no such cluster, 503.
      if (backend.invalid) return this.localReply(x, { status: 500, body: '', flags: ['NC'], details: 'cluster_not_found' }, undefined);
      service = this.opts.state.serviceByKey(`${backend.namespace}/${backend.hostname}`);
      if (service === undefined) return this.localReply(x, { status: 503, body: '', flags: ['NC'], details: 'cluster_not_found' }, undefined);
      servicePort = backend.port;
      Object.assign(x.routed, { service, port: servicePort, destinationService: this.opts.serviceLabels(service), cluster: this.clusterOf(service, servicePort) });
    }

    const cluster = service === undefined || ctx.workload ? undefined : this.opts.upstreams.cluster(service, servicePort, backend?.subset);
    if (service !== undefined && !ctx.workload && cluster === undefined) return this.localReply(x, { status: 503, body: '', flags: ['NC'], details: 'cluster_not_found' }, undefined);
    const r = route?.route;
    const rewrite = r?.rewrite;
    if (rewrite?.path) x.upstreamPath = rewritePath(x.path, rewrite.path, r!.match?.path);
    const http2Upstream = !(x instanceof UpgradeExchange) && this.upstreamIsHttp2(x, cluster);
    const headers = this.upstreamHeaders(x, http2Upstream);
    if (r !== undefined) {
      // Envoy's order: the backend's filter, then the route's (a later level wins); rewrites last.
      modifyHeaders(headers, backend!.requestHeaders);
      modifyHeaders(headers, r.requestHeaders);
      if (x.upstreamPath !== undefined) {
        headers['x-envoy-original-path'] = x.path;
        if (http2Upstream) headers[':path'] = x.upstreamPath;
      }
      if (rewrite?.hostname) headers[http2Upstream ? ':authority' : 'host'] = rewrite.hostname;
      // A `host` a header filter set is the authority on HTTP/2.
      if (http2Upstream && headers.host !== undefined) {
        headers[':authority'] = headers.host;
        delete headers.host;
      }
      const expected = r.retry?.perTryTimeoutMs || r.timeoutMs;
      if (expected) headers['x-envoy-expected-rq-timeout-ms'] = String(expected);
      if (r.retry) x.body.keepForRetries();
      for (const m of r.mirrors ?? []) if (m.percent >= 100 || Math.random() * 100 < m.percent) this.mirror(x, m.backend, headers, r.timeoutMs);
    }
    // Envoy's route timeout runs from the end of the request (never for an upgraded connection, which has none).
    let routeTimer: NodeJS.Timeout | undefined;
    const timeoutMs = r?.timeoutMs;
    if (timeoutMs && !(x instanceof UpgradeExchange)) {
      x.body.onEnd(() => {
        if (!x.done) routeTimer = setTimeout(() => this.timedOut(x, 'response_timeout'), timerMs(timeoutMs));
      });
    }
    try {
      await this.attempts(x, cluster, headers, http2Upstream, r?.retry);
    } finally {
      clearTimeout(routeTimer);
    }
  }

  /**
   * Tries the upstream until a response, the retries run out, or the exchange ended otherwise (a timeout, the client
   * gone). Without a route's retry policy: Istio's default route, connection failures retried twice (never for
   * gRPC). With one: its attempts, on connection failures, refused streams, gRPC cancelled/unavailable, the listed
   * statuses and per-try timeouts.
   */
  private async attempts(x: Exchange, cluster: UpstreamCluster | undefined, headers: Headers, http2Upstream: boolean, policy: WaypointRetry | undefined): Promise<void> {
    const { ctx } = x;
    // DestinationRule circuit breakers: a request over the limits is not sent.
    if (cluster?.overflows(!http2Upstream)) return this.overflowed(x, []);
    cluster?.requestStarted();
    const flags: ResponseFlag[] = [];
    const attempts = policy ? 1 + policy.attempts : x.grpc ? 1 : 1 + DEFAULT_RETRIES;
    const backoffMs = policy?.backoffMs || RETRY_BASE_MS;
    const hashKey = cluster === undefined ? undefined : this.hashKey(x, cluster);
    let tried: UpstreamTarget[] | undefined;
    let retrying = false;
    try {
      for (let attempt = 1; ; attempt++) {
        const target = ctx.workload ? this.opts.upstreams.workload(ctx.workload, ctx.targetPort) : cluster!.pick(tried, hashKey);
        if (target === undefined) return this.localReply(x, { status: 503, body: 'no healthy upstream', flags: ['UH'], details: 'no_healthy_upstream' }, undefined);
        // Retries beyond the cluster's max_retries breaker are not made: the attempt is the last (Envoy's UO).
        x.retryOverflow = attempt < attempts && cluster !== undefined && !cluster.retryAvailable(retrying);
        const last = attempt >= attempts || x.retryOverflow;
        x.retryPolicy = policy;
        x.retryLeft = !last;
        x.upstream = undefined;
        x.upstreamStatus = 0;
        // Each try's timeout runs from the end of the request (the first try's: once it is read; later ones: at once).
        let perTry: NodeJS.Timeout | undefined;
        let tryOver = false;
        const perTryMs = policy?.perTryTimeoutMs;
        if (perTryMs && !(x instanceof UpgradeExchange)) {
          x.body.onEnd(() => {
            if (tryOver) return;
            perTry = setTimeout(() => {
              if (x.responded || x.done) return;
              x.abortedAttempt = new AttemptAborted('per_try_timeout');
              x.upstream?.destroy();
            }, timerMs(perTryMs));
          });
        }
        target.active++;
        try {
          if (x instanceof UpgradeExchange) await this.forwardUpgrade(x, target, headers, flags);
          else if (http2Upstream) await this.forwardHttp2(x, target, headers, flags);
          else await this.forwardHttp1(x, target, headers, flags);
          // A response of the endpoint's, or a failure of the waypoint's own after the attempt started; a client that
          // went away says nothing about the endpoint.
          if (!x.downstreamClosed) target.cluster?.outcome(target, x.upstreamStatus);
          return;
        } catch (e) {
          if (!x.downstreamClosed) target.cluster?.outcome(target, e instanceof AttemptAborted && e.reason === 'retriable_status' ? (e.status ?? 0) : 0);
          if (x.done) return;
          if (e instanceof AttemptAborted) {
            // Istio's default route retry policy does not retry a per-try timeout (no `5xx`, `reset` or `gateway-error`).
            if (e.reason === 'per_try_timeout' && (last || !x.body.replayable || !retriesTimeout(policy))) {
              flags.push('UT');
              if (x.retryOverflow && x.body.replayable && retriesTimeout(policy)) flags.push('UO');
              return this.localReply(x, { status: 504, body: UPSTREAM_TIMEOUT_BODY, flags, details: 'upstream_per_try_timeout' }, target);
            }
          } else {
            if (!(e instanceof UpstreamConnectError)) throw e;
            // A retry sends the body again from its start, which only a body still held (or never read) allows.
            if (last || !x.body.replayable || !retriesReset(policy, e)) {
              const retried = attempt > 1;
              flags.push(e.flag);
              if (x.retryOverflow && x.body.replayable && retriesReset(policy, e)) flags.push('UO');
              else if (retried) flags.push('URX');
              return this.localReply(
                x,
                { status: 503, body: localReplyBody(e.resetReason, e.transportFailure, retried), flags, details: e.details, transportFailure: e.transportFailure || undefined },
                target,
              );
            }
          }
        } finally {
          tryOver = true;
          clearTimeout(perTry);
          x.abortedAttempt = undefined;
          target.active--;
        }
        (tried ??= []).push(target);
        // A retry follows: it holds one of the cluster's retry slots until the request is over.
        if (cluster !== undefined && !retrying) retrying = cluster.retryStarted();
        // Full jitter: attempt n waits a random time below (2^n - 1) × the base, at most 10 × the base (Envoy's cap).
        await sleep(timerMs(Math.random() * Math.min(2 ** attempt - 1, MAX_BACKOFF_FACTOR) * backoffMs));
        if (x.done) return;
      }
    } finally {
      if (retrying) cluster!.retryEnded();
      cluster?.requestEnded();
    }
  }

  /**
   * Envoy's fault filter: the delay first (the request waits, DI), then the abort (FI: the configured status with
   * `fault filter abort`, or a trailers-only gRPC status). True when the exchange is over.
   */
  private async injectFault(x: Exchange, f: WaypointFault): Promise<boolean> {
    const hit = (percent: number) => percent >= 100 || (percent > 0 && Math.random() * 100 < percent);
    if (f.delayMs > 0 && hit(f.delayPercent)) {
      x.delayed = true;
      try {
        await sleep(timerMs(f.delayMs), undefined, { signal: x.gone.signal });
      } catch {
        return true;
      }
      if (x.done) return true;
    }
    if (f.abortStatus === 0 || !hit(f.abortPercent)) return false;
    if (f.abortGrpc) {
      x.responded = true;
      x.body.release();
      const code = String(f.abortGrpcStatus);
      const h: http2.OutgoingHttpHeaders = { 'content-type': 'application/grpc', 'grpc-status': code, 'grpc-message': grpcMessage(FAULT_ABORT_BODY), server: 'istio-envoy' };
      x.respond(200, h, true);
      x.status = 200;
      x.responseHeaders = h;
      this.finish(x, { target: undefined, flags: ['FI'], details: 'fault_filter_abort', grpcStatus: code });
      return true;
    }
    this.localReply(x, { status: f.abortStatus, body: FAULT_ABORT_BODY, flags: ['FI'], details: 'fault_filter_abort' }, undefined);
    return true;
  }

  /**
   * Envoy's CORS filter for a request with an `Origin`: a preflight from an allowed origin is answered here (200 with
   * the policy's allow headers); a preflight from another origin goes on, or is answered without CORS headers when
   * the policy does not forward unmatched preflights; other requests from an allowed origin go on, and their answer
   * gets the allow-origin, credentials and expose headers. True when the exchange is over.
   */
  private corsFilter(x: Exchange, route: CompiledRoute, policy: WaypointCorsPolicy): boolean {
    const origin = x.header('origin');
    if (origin === undefined || origin === '') return false;
    const allowed = route.originAllowed(origin);
    const preflight = x.method === 'OPTIONS' && !!x.header('access-control-request-method');
    if (!allowed && (!preflight || policy.forwardUnmatchedPreflights)) return false;
    if (!preflight) {
      x.cors = { origin, policy };
      return false;
    }
    const h: http2.OutgoingHttpHeaders = { server: 'istio-envoy', date: new Date().toUTCString(), 'content-length': '0' };
    if (allowed) {
      h['access-control-allow-origin'] = origin;
      if (policy.allowCredentials) h['access-control-allow-credentials'] = 'true';
      // A `*` answers with what the preflight asks for, as Envoy's filter does.
      if (policy.allowMethods) h['access-control-allow-methods'] = policy.allowMethods === '*' ? (x.header('access-control-request-method') ?? '*') : policy.allowMethods;
      if (policy.allowHeaders) h['access-control-allow-headers'] = policy.allowHeaders === '*' ? (x.header('access-control-request-headers') ?? '*') : policy.allowHeaders;
      if (policy.maxAge) h['access-control-max-age'] = policy.maxAge;
    }
    x.responded = true;
    x.body.release();
    x.respond(200, h, true);
    x.status = 200;
    x.responseHeaders = h;
    this.finish(x, { target: undefined, flags: [], details: 'cors_response' });
    return true;
  }

  /** The circuit breaker's local reply. */
  private overflowed(x: Exchange, flags: ResponseFlag[]): void {
    x.overloaded = true;
    this.localReply(x, { ...OVERFLOW, flags: [...flags, 'UO'] }, undefined);
  }

  /**
   * The request's consistent-hash key for the cluster's DestinationRule: a header, a cookie (generated when missing
   * and given a TTL, as Envoy does), the source IP or a query parameter; undefined without one (any endpoint).
   */
  private hashKey(x: Exchange, cluster: UpstreamCluster): string | undefined {
    const hash = cluster.policy.loadBalancer?.consistentHash;
    if (hash === undefined) return undefined;
    if (hash.httpHeaderName !== undefined) return x.header(hash.httpHeaderName);
    if (hash.useSourceIp) return x.ctx.peerIp;
    if (hash.httpQueryParameterName !== undefined) return queryParams(x.path).get(hash.httpQueryParameterName);
    const cookie = hash.httpCookie!;
    const value = cookieValue(x.header('cookie'), cookie.name);
    if (value !== undefined || cookie.ttlMs === 0) return value;
    const generated = randomBytes(8).toString('hex');
    x.setCookie = `${cookie.name}="${generated}"; Max-Age=${Math.floor(cookie.ttlMs / 1000)}${cookie.path ? `; Path=${cookie.path}` : ''}; HttpOnly`;
    return `"${generated}"`;
  }

  /** The route's timeout passed: 504 before the response started, a reset after (Envoy's UT either way). */
  private timedOut(x: Exchange, details: string): void {
    if (x.done) return;
    if (!x.responded) {
      x.abortedAttempt ??= new AttemptAborted('per_try_timeout');
      this.localReply(x, { status: 504, body: UPSTREAM_TIMEOUT_BODY, flags: ['UT'], details }, undefined);
      x.upstream?.destroy();
      return;
    }
    x.upstream?.destroy();
    x.reset();
    this.finish(x, { target: undefined, flags: ['UT'], details });
  }

  /**
   * Whether the route's retry policy retries this response: true sends it back to the retry loop; on the last
   * attempt (or with the body no longer held) it is relayed, flagged URX as Envoy flags exhausted retries.
   */
  private retriesResponse(x: Exchange, status: number, headers: Headers, flags: ResponseFlag[]): boolean {
    const policy = x.retryPolicy;
    if (policy === undefined) return false;
    if (!retriesStatus(policy, status, joined(headers['grpc-status']))) return false;
    if (!x.body.replayable) return false;
    if (x.retryLeft) return true;
    if (x.retryOverflow) flags.push('UO');
    else if (policy.attempts > 0) flags.push('URX');
    return false;
  }

  /**
   * RequestMirror: the same request, fire and forget, to one endpoint of another Service (Istio ≥ 1.28 keeps the
   * Host as it is: no `-shadow` suffix). Its response is discarded; it never delays or fails the request itself.
   */
  private mirror(x: Exchange, backend: WaypointRouteBackend, headers: Headers, timeoutMs: number | undefined): void {
    if (x instanceof UpgradeExchange) return;
    const service = this.opts.state.serviceByKey(`${backend.namespace}/${backend.hostname}`);
    const target = service && this.opts.upstreams.cluster(service, backend.port, backend.subset)?.pick(undefined, undefined);
    if (target === undefined) return;
    const copy: Headers = { ...headers };
    modifyHeaders(copy, backend.requestHeaders);
    const h2 = this.opts.state.boundService(service!)?.ports.find((p) => p.port === backend.port)?.protocol;
    let shadow: Writable;
    if (h2 === 'HTTP2' || h2 === 'GRPC') {
      const toH2: Headers = { ':method': x.method, ':path': x.upstreamPath ?? x.path, ':authority': x.authority, ':scheme': 'http' };
      for (const k in copy) if (k[0] !== ':' && k !== 'host') toH2[k] = copy[k];
      const stream = this.sessionFor(target, hostOf(x.authority)).then((s) => s.request(toH2 as http2.OutgoingHttpHeaders, { endStream: x.body.empty }));
      const pending = new PassThrough();
      void stream
        .then((s) => {
          s.on('error', () => {});
          s.resume();
          if (timeoutMs) s.setTimeout(timeoutMs, () => s.close(http2.constants.NGHTTP2_CANCEL));
          if (!x.body.empty) pending.pipe(s);
        })
        .catch(() => pending.destroy());
      shadow = pending;
    } else {
      const req = http.request({ agent: this.agentFor(target), host: target.ip, port: target.port, method: x.method, path: x.upstreamPath ?? x.path, headers: copy as http.OutgoingHttpHeaders, setHost: false, upstream: target, upstreamHost: hostOf(x.authority) } as http.RequestOptions);
      req.on('error', () => {});
      req.on('response', (res) => res.resume());
      if (timeoutMs) req.setTimeout(timeoutMs, () => req.destroy());
      shadow = req;
    }
    shadow.on('error', () => {});
    if (x.body.empty) shadow.end();
    else x.body.addShadow(shadow);
  }

  /** RequestRedirect: Envoy's redirect, an empty body and `location`. */
  private redirect(x: Exchange, r: WaypointRedirect, route: CompiledRoute): void {
    const host = hostOf(x.authority);
    const scheme = r.scheme || 'http';
    // No port: the request's (the Service port it was sent to), or the default of a scheme the redirect changes.
    const newPort = r.port || (r.scheme ? 0 : x.ctx.targetPort);
    const defaultPort = scheme === 'https' ? 443 : 80;
    const hostname = r.hostname || host;
    const bracketed = hostname.includes(':') ? `[${hostname}]` : hostname;
    const authority = newPort && newPort !== defaultPort ? `${bracketed}:${newPort}` : bracketed;
    const path = r.path ? rewritePath(x.path, r.path, route.route.match?.path) : x.path;
    x.responded = true;
    x.body.release();
    const headers: http2.OutgoingHttpHeaders = { location: `${scheme}://${authority}${path}`, server: 'istio-envoy', date: new Date().toUTCString(), 'content-length': '0' };
    modifyHeaders(headers, route.route.responseHeaders);
    x.respond(r.statusCode, headers, true);
    x.status = r.statusCode;
    x.responseHeaders = headers;
    this.finish(x, { target: undefined, flags: [], details: 'direct_response' });
  }

  /**
   * The request headers sent upstream, with the pseudo-headers or `host` of the upstream's protocol: hop-by-hop and
   * XFCC removed, x-forwarded-proto and x-request-id set, the upgrade of a websocket request kept.
   */
  private upstreamHeaders(x: Exchange, http2Upstream: boolean): Headers {
    const out: Headers = {};
    if (http2Upstream) {
      out[':method'] = x.method;
      out[':path'] = x.path;
      out[':authority'] = x.authority;
      out[':scheme'] = 'http';
    } else out.host = x.authority;
    for (const k in x.headers) {
      if (HOP_BY_HOP.has(k) || k === 'x-forwarded-client-cert' || k === 'host') continue;
      out[k] = x.headers[k];
    }
    // gRPC needs `te: trailers` end to end.
    if (x.headers.te === 'trailers') out.te = 'trailers';
    if (x instanceof UpgradeExchange) {
      out.connection = 'upgrade';
      out.upgrade = x.headers.upgrade;
    }
    out['x-forwarded-proto'] = 'http';
    // Generated before the filters run in Envoy, so the access log shows it too.
    if (x.headers['x-request-id'] === undefined) x.headers['x-request-id'] = randomUUID();
    out['x-request-id'] = x.headers['x-request-id'];
    return out;
  }

  /** HTTP2 and gRPC ports talk h2 upstream; HTTP ports HTTP/1.1; sniffed ports what the client spoke. */
  /**
   * Envoy's cluster for a route's backend: the waypoint's own `inbound-vip` cluster when the backend is bound to this
   * waypoint, else an outbound one.
   */
  private clusterOf(service: Service, port: number): string {
    return this.opts.state.boundService(service) ? `inbound-vip|${port}|http|${service.hostname}` : `outbound|${port}||${service.hostname}`;
  }

  private upstreamIsHttp2(x: Exchange, cluster: UpstreamCluster | undefined): boolean {
    // A DestinationRule's connectionPool may choose the upstream protocol for HTTP/1.1 ports.
    const pool = cluster?.policy.connectionPool;
    if (pool?.useClientProtocol) return x.protocol === 'HTTP/2';
    if (pool?.h2Upgrade && x.protocol === 'HTTP/1.1' && !x.grpc) return true;
    const routed = x.routed?.service;
    if (routed !== undefined && this.opts.state.boundService(routed) === undefined) {
      // A backend this waypoint does not serve: the port's protocol as the mesh's Address describes it.
      const app = routed.ports.find((q) => q.servicePort === x.routed!.port)?.appProtocol;
      if (app === 'HTTP2' || app === 'GRPC') return true;
      if (app === 'HTTP11') return false;
      return x.protocol === 'HTTP/2';
    }
    const p = routed === undefined ? x.ctx.port?.protocol : this.opts.state.boundService(routed)?.ports.find((q) => q.port === x.routed!.port)?.protocol;
    if (p === 'HTTP2' || p === 'GRPC') return true;
    if (p === 'HTTP' || p === 'GRPC_WEB') return false;
    return x.protocol === 'HTTP/2';
  }

  /** One attempt over HTTP/1.1; rejects with UpstreamConnectError when the request may go to another attempt. */
  private forwardHttp1(x: Exchange, target: UpstreamTarget, headers: Headers, flags: ResponseFlag[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const upstreamStart = performance.now();
      const req = http.request({
        agent: this.agentFor(target),
        host: target.ip,
        port: target.port,
        method: x.method,
        path: x.upstreamPath ?? x.path,
        headers: headers as http.OutgoingHttpHeaders,
        setHost: false,
        maxHeaderSize: MAX_HEADER_BYTES,
        upstream: target,
        upstreamHost: hostOf(x.authority),
      } as http.RequestOptions);
      x.upstream = req;
      // The body is read only once a connection exists, so a failed connect leaves it whole for the next attempt.
      if (x.body.empty) req.end();
      else req.once('socket', () => x.body.attach(req));
      req.on('error', (e) => {
        x.body.detach();
        if (x.abortedAttempt) return reject(x.abortedAttempt);
        // Once the response started, its own close reports what happened.
        if (x.responded) return resolve();
        // No connection, or a kept-alive one the endpoint had closed meanwhile: nothing reached the application.
        if (e instanceof UpstreamConnectError) return reject(e);
        if (isParseError(e)) this.upstreamFailed(x, target, flags, 'UPE', 'protocol error');
        else if (req.reusedSocket) return reject(new UpstreamConnectError('connection termination', '', { cause: e }));
        else this.upstreamFailed(x, target, flags, 'UC', 'connection termination');
        resolve();
      });
      req.on('response', (res) => {
        if (this.retriesResponse(x, res.statusCode ?? 0, res.headers, flags)) {
          x.body.detach();
          x.abortedAttempt = new AttemptAborted('retriable_status', res.statusCode);
          req.destroy();
          return reject(x.abortedAttempt);
        }
        this.relayResponse(x, target, flags, res.statusCode ?? 0, res.headers, res, () => res.trailers as Headers, upstreamStart, false);
        res.once('close', () => {
          x.body.detach();
          // Closed before its end: the endpoint went away mid-response.
          if (!res.complete) this.upstreamFailed(x, target, flags, 'UC', 'connection termination');
          // Answered before the whole body was sent: the connection is mid-request and cannot be reused.
          else if (!x.body.ended) req.destroy();
          resolve();
        });
      });
    });
  }

  /** One attempt over HTTP/2; rejects with UpstreamConnectError when the request may go to another attempt. */
  private async forwardHttp2(x: Exchange, target: UpstreamTarget, headers: Headers, flags: ResponseFlag[]): Promise<void> {
    const session = await this.sessionFor(target, hostOf(x.authority));
    if (x.done) return;
    // The try's timeout passed while the connection was being made.
    if (x.abortedAttempt) throw x.abortedAttempt;
    return new Promise<void>((resolve, reject) => {
      const upstreamStart = performance.now();
      let s: http2.ClientHttp2Stream;
      try {
        s = session.request(headers as http2.OutgoingHttpHeaders, { endStream: x.body.empty });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (SESSION_GONE.has(code)) {
          this.dropSession(this.sessionKey(target, hostOf(x.authority)), session);
          return reject(new UpstreamConnectError('connection termination', '', { cause: e }));
        }
        // A request HTTP/2 cannot carry (Node refuses its headers): it cannot reach the endpoint in any attempt.
        this.opts.log.debug(`upstream request refused by the HTTP/2 codec: ${(e as Error).message}`);
        this.upstreamFailed(x, target, flags, 'UPE', 'protocol error');
        return resolve();
      }
      s.on('error', () => {});
      x.upstream = { destroy: () => s.close(http2.constants.NGHTTP2_CANCEL) };
      let trailers: Headers | undefined;
      s.on('trailers', (t) => {
        trailers = t as Headers;
      });
      s.once('response', (h) => {
        if (this.retriesResponse(x, Number(h[':status']), h as Headers, flags)) {
          x.abortedAttempt = new AttemptAborted('retriable_status', Number(h[':status']));
          s.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        this.relayResponse(x, target, flags, Number(h[':status']), h as Headers, s, () => trailers, upstreamStart, s.endAfterHeaders);
      });
      s.once('close', () => {
        x.body.detach();
        if (x.abortedAttempt) return reject(x.abortedAttempt);
        if (!x.responded) {
          // Reset before response headers: REFUSED_STREAM was never processed (safe to retry), others are not.
          if (s.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) return reject(new UpstreamConnectError('remote refused stream reset'));
          this.upstreamFailed(x, target, flags, 'UR', 'remote reset');
        } else if (!x.done) {
          // Closed mid-response: reset by the endpoint, or its connection went away.
          this.upstreamFailed(x, target, flags, s.rstCode === http2.constants.NGHTTP2_NO_ERROR ? 'UC' : 'UR', s.rstCode === http2.constants.NGHTTP2_NO_ERROR ? 'connection termination' : 'remote reset');
        }
        resolve();
      });
      if (!x.body.empty) x.body.attach(s);
    });
  }

  /** One websocket attempt: the upgrade request on a connection of its own, spliced through after a 101. */
  private async forwardUpgrade(x: UpgradeExchange, target: UpstreamTarget, headers: Headers, flags: ResponseFlag[]): Promise<void> {
    const stream = await this.opts.upstreams.connect(target, undefined, hostOf(x.authority));
    if (x.done) {
      stream.destroy();
      return;
    }
    const connection = new TunnelSocket(stream);
    return new Promise<void>((resolve) => {
      const upstreamStart = performance.now();
      const req = http.request({
        createConnection: () => connection,
        method: x.method,
        path: x.path,
        headers: headers as http.OutgoingHttpHeaders,
        setHost: false,
        maxHeaderSize: MAX_HEADER_BYTES,
      });
      x.upstream = req;
      req.on('error', (e) => {
        connection.destroy();
        if (!x.responded) this.upstreamFailed(x, target, flags, isParseError(e) ? 'UPE' : 'UC', isParseError(e) ? 'protocol error' : 'connection termination');
        resolve();
      });
      req.on('upgrade', (res: http.IncomingMessage, upstream: Duplex, upstreamHead: Buffer) => {
        const upstreamServiceTimeMs = performance.now() - upstreamStart;
        const out = responseHeaders(res.headers, upstreamServiceTimeMs);
        out.connection = 'upgrade';
        out.upgrade = res.headers.upgrade;
        if (!this.startResponse(x, target, flags, 101, out, false)) {
          upstream.destroy();
          return resolve();
        }
        x.spliced = true;
        this.downstreams.delete(x.socket as TunnelSocket);
        if (upstreamHead.length > 0) x.socket.write(upstreamHead);
        if (x.head.length > 0) upstream.write(x.head);
        void copyBidirectional(x.socket, upstream).then((r) => {
          x.body.bytes = x.head.length + r.aToB;
          x.bytesSent = upstreamHead.length + r.bToA;
          this.finish(x, { target, flags, upstreamServiceTimeMs: Math.round(upstreamServiceTimeMs), details: 'via_upstream' });
          resolve();
        });
      });
      req.on('response', (res) => {
        // Refused the switch: its answer goes back as is, and the connection closes after it.
        this.relayResponse(x, target, flags, res.statusCode ?? 0, res.headers, res, () => undefined, upstreamStart, false);
        res.once('close', () => {
          connection.destroy();
          if (!res.complete) this.upstreamFailed(x, target, flags, 'UC', 'connection termination');
          resolve();
        });
      });
      req.end();
    });
  }

  /** The HTTP/1.1 pool a request to `target` uses: its cluster's own when a DestinationRule shapes connections. */
  private agentFor(target: UpstreamTarget): TunnelAgent {
    const c = target.cluster;
    if (c === undefined || !c.ownPool) return this.agent;
    const existing = this.clusterAgents.get(c.key);
    if (existing?.settings === c.settings) return existing.agent;
    // Connections of the old settings finish what they carry and are not reused.
    existing?.agent.retire();
    const pool = c.policy.connectionPool;
    const agent = new TunnelAgent(this.opts.upstreams, {
      keepAlive: true,
      // HTTP/1.1 requests beyond max_connections to an endpoint wait for one of its connections (Envoy's pending
      // requests). Per endpoint, so that one endpoint's idle connections never hold another's requests back.
      maxSockets: pool?.maxConnections || Infinity,
      scheduling: 'lifo',
      timeout: timerMs(pool?.idleTimeoutMs || UPSTREAM_IDLE_MS),
      maxRequestsPerConnection: pool?.maxRequestsPerConnection ?? 0,
    });
    this.clusterAgents.set(c.key, { settings: c.settings, agent });
    return agent;
  }

  /**
   * The session key: the endpoint; with a DestinationRule shaping connections, also the cluster, its settings and the
   * TLS server name (Istio's auto SNI names the request's host).
   */
  private sessionKey(target: UpstreamTarget, host: string): string {
    const c = target.cluster;
    if (isWildcardTarget(target)) return `${c?.key ?? ''}|${c?.settings ?? ''}|${host}|${target.address}`;
    return c !== undefined && c.ownPool ? `${c.key}|${c.settings}|${c.policy.tls ? host : ''}|${target.address}` : target.address;
  }

  private sessionFor(target: UpstreamTarget, host: string): Promise<http2.ClientHttp2Session> {
    const key = this.sessionKey(target, host);
    let p = this.sessions.get(key);
    if (p === undefined) {
      const pool = target.cluster?.policy.connectionPool;
      p = this.opts.upstreams.connect(target, ['h2'], host).then((tunnel) => {
        const session = http2.connect(`http://${target.address}`, { createConnection: () => tunnel });
        session.on('error', () => {});
        const forget = () => {
          if (this.sessions.get(key) === p) this.sessions.delete(key);
        };
        session.once('close', forget);
        session.once('goaway', forget);
        session.setTimeout(timerMs(pool?.idleTimeoutMs || UPSTREAM_IDLE_MS), () => this.dropSession(key, session));
        tunnel.once('close', () => session.destroy());
        return session;
      });
      p.catch(() => {
        if (this.sessions.get(key) === p) this.sessions.delete(key);
      });
      this.sessions.set(key, p);
    }
    const max = target.cluster?.policy.connectionPool?.maxRequestsPerConnection ?? 0;
    if (max === 0) return p;
    return p.then((session) => {
      // maxRequestsPerConnection: the session that reached it takes no more streams; it closes once this request's
      // stream is open (the caller opens it before the next turn of the event loop).
      const n = (this.sessionStreams.get(session) ?? 0) + 1;
      this.sessionStreams.set(session, n);
      if (n >= max) {
        if (this.sessions.get(key) === p) this.sessions.delete(key);
        setImmediate(() => this.dropSession(key, session));
      }
      return session;
    });
  }

  /** Takes a session out of use: streams in flight finish, then it closes with its tunnel. */
  private dropSession(key: string, session: http2.ClientHttp2Session): void {
    const p = this.sessions.get(key);
    if (p !== undefined) void p.then((current) => current === session && this.sessions.get(key) === p && this.sessions.delete(key), () => undefined);
    if (session.destroyed) return;
    if (session.closed) session.destroy();
    else session.close();
  }

  /**
   * Starts the downstream response with the upstream's status and headers. An answer HTTP cannot carry downstream (a
   * status outside 200–599, a header Node refuses) is Envoy's upstream protocol error: a 502 instead. False when the
   * response did not start.
   */
  private startResponse(x: Exchange, target: UpstreamTarget, flags: ResponseFlag[], status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean): boolean {
    // One response per exchange: a late answer of an attempt already given up on goes nowhere.
    if (x.done || x.responded) return false;
    if (!((status >= 200 && status <= 599) || (status === 101 && x instanceof UpgradeExchange))) {
      x.upstream?.destroy();
      this.upstreamFailed(x, target, flags, 'UPE', 'protocol error');
      return false;
    }
    x.body.release();
    x.responded = true;
    try {
      x.respond(status, headers, endStream);
      x.status = status;
      x.responseHeaders = headers;
      return true;
    } catch (e) {
      this.opts.log.debug(`upstream response refused by the downstream codec: ${(e as Error).message}`);
      x.responded = false;
      x.upstream?.destroy();
      this.upstreamFailed(x, target, flags, 'UPE', 'protocol error');
      return false;
    }
  }

  /** Sends the upstream response downstream: status and headers, body with backpressure, then trailers. */
  private relayResponse(
    x: Exchange,
    target: UpstreamTarget,
    flags: ResponseFlag[],
    status: number,
    upstreamHeaders: Headers,
    body: Readable,
    trailers: () => Headers | undefined,
    upstreamStart: number,
    endAfterHeaders: boolean,
  ): void {
    const upstreamServiceTimeMs = performance.now() - upstreamStart;
    x.upstreamStatus = status;
    const headers = responseHeaders(upstreamHeaders, upstreamServiceTimeMs);
    if (x.setCookie !== undefined) {
      const prior = headers['set-cookie'];
      headers['set-cookie'] = prior === undefined ? [x.setCookie] : [...(Array.isArray(prior) ? prior : [String(prior)]), x.setCookie];
    }
    modifyHeaders(headers, x.routed?.responseHeaders);
    addCorsHeaders(x, headers);
    if (!this.startResponse(x, target, flags, status, headers, endAfterHeaders)) {
      body.destroy();
      return;
    }
    const grpcResponse = isGrpcContentType(headers['content-type']);
    const messages = grpcResponse ? new GrpcMessageCounter() : undefined;
    let grpcStatus = grpcResponse ? joined(upstreamHeaders['grpc-status']) : undefined;
    const done = () =>
      this.finish(x, {
        target,
        flags,
        grpcStatus,
        responseMessages: messages?.messages,
        upstreamServiceTimeMs: Math.round(upstreamServiceTimeMs),
        details: 'via_upstream',
      });
    if (endAfterHeaders) return done();
    body.on('data', (chunk: Buffer) => {
      x.bytesSent += chunk.length;
      messages?.feed(chunk);
      if (!x.write(chunk)) {
        body.pause();
        x.onceDrain(() => body.resume());
      }
    });
    body.once('end', () => {
      const t = trailers();
      if (t?.['grpc-status'] !== undefined) grpcStatus = joined(t['grpc-status']);
      x.end(t !== undefined && Object.keys(t).length > 0 ? (t as http2.OutgoingHttpHeaders) : undefined);
      done();
    });
  }

  /** The upstream failed: before the response a local reply (502 for a protocol error, else 503), after it a reset. */
  private upstreamFailed(x: Exchange, target: UpstreamTarget, flags: ResponseFlag[], flag: ResponseFlag, reason: string): void {
    if (x.done) return;
    flags.push(flag);
    if (!x.responded) {
      return this.localReply(
        x,
        { status: flag === 'UPE' ? 502 : 503, body: localReplyBody(reason, '', false), flags, details: resetDetails(reason) },
        target,
      );
    }
    x.reset();
    this.finish(x, { target, flags, details: `upstream_reset_after_response_started{${reason}}` });
  }

  private onDownstreamClosed(x: Exchange): void {
    x.downstreamClosed = true;
    x.gone.abort();
    x.upstream?.destroy();
    this.finish(x, { target: undefined, flags: ['DC'], details: 'downstream_remote_disconnect' });
  }

  /** Envoy's local reply: text/plain body, or a trailers-only gRPC status for gRPC requests. */
  private localReply(x: Exchange, r: LocalReply, target: UpstreamTarget | undefined): void {
    if (x.done) return;
    x.responded = true;
    x.body.release();
    if (x.grpc) {
      const code = grpcStatusOf(r.status);
      const h: http2.OutgoingHttpHeaders = { 'content-type': 'application/grpc', 'grpc-status': code, server: 'istio-envoy' };
      if (x.overloaded) h['x-envoy-overloaded'] = 'true';
      if (r.headers) Object.assign(h, r.headers);
      if (r.body) h['grpc-message'] = grpcMessage(r.body);
      x.respond(200, h, true);
      x.status = 200;
      x.responseHeaders = h;
      return this.finish(x, { target, flags: r.flags, details: r.details, transportFailure: r.transportFailure, grpcStatus: code });
    }
    const length = Buffer.byteLength(r.body);
    const h: http2.OutgoingHttpHeaders = { server: 'istio-envoy', date: new Date().toUTCString(), 'content-length': String(length) };
    if (r.body) h['content-type'] = 'text/plain';
    if (x.overloaded) h['x-envoy-overloaded'] = 'true';
    if (r.headers) Object.assign(h, r.headers);
    addCorsHeaders(x, h);
    x.respond(r.status, h, !r.body);
    x.status = r.status;
    x.responseHeaders = h;
    if (r.body) {
      x.write(Buffer.from(r.body));
      x.bytesSent = length;
      x.end();
    }
    this.finish(x, { target, flags: r.flags, details: r.details, transportFailure: r.transportFailure });
  }

  /** Records one finished request (metrics and the access-log line); a request body left unread is abandoned. */
  private finish(x: Exchange, f: Finished): void {
    if (x.done) return;
    x.done = true;
    x.body.dropShadows();
    if (!x.body.ended && x.status !== 0) x.abandonRequest();
    const { ctx } = x;
    const record: HttpRequestRecord = {
      source: ctx.source,
      destination: this.opts.peerLabels(f.target?.workload),
      destinationService: x.routed?.destinationService ?? ctx.destinationService,
      requestProtocol: x.grpc ? 'grpc' : 'http',
      responseCode: x.status,
      grpcStatus: f.grpcStatus,
      responseFlags: x.delayed ? [...f.flags, 'DI'] : f.flags,
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: performance.now() - x.start,
      requestBytes: x.requestHeaderBytes + x.body.bytes,
      // The status line and headers as they go on the wire, plus the body.
      responseBytes: x.responseHeaders === undefined ? x.bytesSent : 17 + headerBytes(x.responseHeaders) + x.bytesSent,
      grpcRequestMessages: x.body.messages?.messages,
      grpcResponseMessages: f.responseMessages,
      startTime: x.startTime,
      method: x.method,
      path: x.path,
      protocol: x.protocol,
      responseCodeDetails: f.details,
      upstreamTransportFailureReason: f.transportFailure,
      bodyBytesReceived: x.body.bytes,
      bodyBytesSent: x.bytesSent,
      upstreamServiceTimeMs: f.upstreamServiceTimeMs,
      forwardedFor: x.header('x-forwarded-for'),
      userAgent: x.header('user-agent'),
      requestId: x.header('x-request-id'),
      authority: x.authority,
      upstreamHost: f.target?.upstreamHost,
      upstreamCluster: x.routed?.cluster ?? ctx.cluster,
      upstreamLocalAddress: f.target?.upstreamLocalAddress,
      downstreamLocalAddress: `${ctx.targetIp}:${ctx.targetPort}`,
      downstreamRemoteAddress: ctx.peerAddress,
      routeName: x.routed?.routeName ?? 'default',
    };
    this.opts.telemetry.recordRequest(record);
  }

  /** A request the codec refused: counted and logged as Envoy does (400 or 431, DPE, `http1.codec_error`). */
  private recordProtocolError(ctx: StreamContext, tooLarge: boolean): void {
    const reply = tooLarge ? HEADERS_TOO_LARGE : BAD_REQUEST;
    this.opts.telemetry.recordRequest({
      source: ctx.source,
      destination: this.opts.peerLabels(undefined),
      destinationService: ctx.destinationService,
      requestProtocol: 'http',
      responseCode: tooLarge ? 431 : 400,
      responseFlags: ['DPE'],
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: 0,
      requestBytes: 0,
      responseBytes: reply.length,
      startTime: Date.now(),
      method: '',
      path: '',
      protocol: 'HTTP/1.1',
      responseCodeDetails: tooLarge ? 'http1.headers_too_large' : 'http1.codec_error',
      bodyBytesReceived: 0,
      bodyBytesSent: reply.length - reply.indexOf('\r\n\r\n') - 4,
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
    for (const { agent } of this.clusterAgents.values()) agent.destroy();
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
  private readonly maxRequestsPerConnection: number;
  private readonly served = new WeakMap<Duplex, number>();

  constructor(
    private readonly upstreams: Upstreams,
    options: http.AgentOptions & { maxRequestsPerConnection?: number },
  ) {
    super(options);
    this.maxRequestsPerConnection = options.maxRequestsPerConnection ?? 0;
  }

  /** A connection that has served maxRequestsPerConnection requests is closed instead of kept for the next. */
  override keepSocketAlive(socket: Duplex): boolean {
    if (this.retired) return false;
    if (this.maxRequestsPerConnection > 0) {
      const n = (this.served.get(socket) ?? 0) + 1;
      this.served.set(socket, n);
      if (n >= this.maxRequestsPerConnection) return false;
    }
    // Node's Agent returns whether it kept the socket (its typings say void).
    return super.keepSocketAlive(socket) as unknown as boolean;
  }

  private retired = false;

  /** Replaced by a pool of new settings: idle connections close now, busy ones when their request is done. */
  retire(): void {
    this.retired = true;
    for (const list of Object.values(this.freeSockets)) for (const socket of list ?? []) socket.destroy();
  }

  /** Pools by endpoint and, for TLS origination, the server name the request's host gives (auto SNI). */
  override getName(options?: http.ClientRequestArgs): string {
    const o = options as { upstream?: UpstreamTarget; upstreamHost?: string } | undefined;
    const perHost = o?.upstream !== undefined && (o.upstream.cluster?.policy.tls !== undefined || isWildcardTarget(o.upstream));
    return perHost && o!.upstreamHost ? `${super.getName(options)}:${o!.upstreamHost}` : super.getName(options);
  }

  override createConnection(options: http.ClientRequestArgs, oncreate?: (err: Error | null, socket: Duplex) => void): undefined {
    // The request names its endpoint (forwardHttp1 passes it along with the request options).
    const target = (options as { upstream: UpstreamTarget }).upstream;
    const host = (options as { upstreamHost?: string }).upstreamHost;
    this.upstreams.connect(target, target.cluster?.policy.tls ? ['http/1.1'] : undefined, host).then(
      (stream) => oncreate!(null, new TunnelSocket(stream)),
      (e: Error) => oncreate!(e, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** The path without the named query parameters (a token the waypoint does not forward). */
function withoutParams(path: string, names: readonly string[]): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const kept = path
    .slice(q + 1)
    .split('&')
    .filter((pair) => !names.includes(pair.slice(0, pair.indexOf('=') < 0 ? pair.length : pair.indexOf('='))));
  return kept.length > 0 ? `${path.slice(0, q)}?${kept.join('&')}` : path.slice(0, q);
}

/** A cookie's value in a request's `cookie` header (the first of that name). */
function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The host of an `:authority`, without its port or IPv6 brackets. */
function hostOf(authority: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(authority);
  return m ? m[1]!.replace(/^\[|\]$/g, '') : authority;
}
