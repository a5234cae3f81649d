// ambit-echo: the sample workload of the demo and the backend of benchmarks. One process serves
//   - HTTP/1.1: every request is answered with who served it (pod, namespace, node, service account) and what it saw
//     (method, path, headers, body, caller address), as Istio's echo app's `Key=value` lines or as JSON;
//   - raw TCP: bytes are echoed back verbatim (L4 tests, throughput);
//   - optionally gRPC: one unary Echo call (see echo.proto).
// The caller address matters in an ambient mesh: ztunnel preserves the client pod's source IP, so `IP=` shows it.
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { LineLog, timestamp } from './log.js';

export interface EchoIdentity {
  pod: string;
  namespace: string;
  node: string;
  serviceAccount: string;
  /** Free-form version label (ServiceVersion= in the response), for traffic-split demos. */
  serviceVersion: string;
}

export interface EchoOptions {
  /** Listen address for every port; default 0.0.0.0. */
  host?: string;
  /** 0 picks a free port (the bound port is reported by EchoServer). */
  httpPort: number;
  tcpPort: number;
  /** Undefined: no gRPC listener. */
  grpcPort?: number;
  identity: EchoIdentity;
  /** Where access-log lines go; undefined disables the access log (benchmarks). */
  accessLog?: NodeJS.WritableStream;
  /**
   * A flaky backend for retry and outlier-detection demos: every `failEvery`-th HTTP request (1: all of them; 0 or
   * undefined: none; `/healthz` never counts) is answered with `failStatus` (default 503) and the usual echo body.
   */
  failEvery?: number;
  failStatus?: number;
}

export interface EchoServer {
  readonly httpPort: number;
  readonly tcpPort: number;
  /** Undefined when gRPC is off. */
  readonly grpcPort: number | undefined;
  /**
   * Stops accepting, fails /healthz, lets in-flight HTTP requests and gRPC calls finish (answering with
   * `Connection: close`), half-closes TCP echo connections, and after graceMs destroys whatever is left.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** Reads the pod's identity from the env vars a Deployment fills from fieldRefs. */
export function identityFromEnv(env: NodeJS.ProcessEnv): EchoIdentity {
  return {
    pod: env.POD_NAME || os.hostname(),
    namespace: env.POD_NAMESPACE ?? '',
    node: env.NODE_NAME ?? '',
    serviceAccount: env.SERVICE_ACCOUNT ?? '',
    serviceVersion: env.SERVICE_VERSION ?? '',
  };
}

const MAX_ECHOED_BODY = 1024 * 1024;
const MAX_DELAY_MS = 10 * 60 * 1000;
const FORWARD_TIMEOUT_MS = 10_000;
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

/** Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; users expect the plain IPv4 address. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export async function startEcho(options: EchoOptions): Promise<EchoServer> {
  const host = options.host ?? '0.0.0.0';
  const log = options.accessLog ? new LineLog(options.accessLog) : undefined;
  let draining = false;

  const fail = { every: options.failEvery ?? 0, status: options.failStatus ?? 503 };
  const httpServer = createHttpServer(options.identity, log, () => draining, fail);
  const tcp = createTcpEchoServer(log);
  const httpPort = await listen(httpServer, host, options.httpPort, 'http');
  let tcpPort: number;
  try {
    tcpPort = await listen(tcp.server, host, options.tcpPort, 'tcp');
  } catch (err) {
    httpServer.close();
    throw err;
  }
  let grpc: { port: number; shutdown(graceMs: number): Promise<void> } | undefined;
  if (options.grpcPort !== undefined) {
    try {
      // Loaded only when asked for: grpc-js and protobufjs add noticeably to start-up time.
      const { startGrpcEcho } = await import('./grpc.js');
      grpc = await startGrpcEcho(host, options.grpcPort, options.identity, log);
    } catch (err) {
      httpServer.close();
      tcp.server.close();
      throw err;
    }
  }

  return {
    httpPort,
    tcpPort,
    grpcPort: grpc?.port,
    async shutdown(graceMs: number): Promise<void> {
      draining = true;
      const httpClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      const tcpClosed = tcp.drain();
      const timer = setTimeout(() => {
        httpServer.closeAllConnections();
        tcp.destroyAll();
      }, graceMs);
      await Promise.all([httpClosed, tcpClosed, grpc?.shutdown(graceMs)]);
      clearTimeout(timer);
      log?.flush();
    },
  };
}

function listen(server: net.Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`cannot listen for ${what} on ${host}:${port}: ${err.code ?? err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

// ---- HTTP ------------------------------------------------------------------------------------------------------

interface EchoRequestView {
  method: string;
  url: string;
  path: string;
  query: string;
  body: string;
  bodyLength: number;
  /** Response body bytes, for the access log. */
  sentBytes: number;
}

function createHttpServer(id: EchoIdentity, log: LineLog | undefined, isDraining: () => boolean, fail: { every: number; status: number }): http.Server {
  /** HTTP requests so far, /healthz left out: every `fail.every`-th fails. */
  let served = 0;
  // The identity part of every text response never changes; build it once.
  const textIdentity =
    `Hostname=${id.pod}\nNamespace=${id.namespace}\nNode=${id.node}\nServiceAccount=${id.serviceAccount}\n`;
  const textVersion = `ServiceVersion=${id.serviceVersion}\n`;

  const server = http.createServer((req, res) => {
    const started = log ? performance.now() : 0;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const view: EchoRequestView = {
      method: req.method ?? 'GET',
      url,
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      body: '',
      bodyLength: 0,
      sentBytes: 0,
    };
    if (log) {
      res.once('finish', () => {
        const ms = (performance.now() - started).toFixed(2);
        log.line(`${timestamp()} "${view.method} ${url} HTTP/${req.httpVersion}" ${res.statusCode} ` +
          `${view.sentBytes} ${ms}ms ${plainAddress(req.socket.remoteAddress)}:${req.socket.remotePort}`);
      });
    }
    // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3): answer at once instead of
    // waiting for 'end', which saves a turn of the event loop on every GET.
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      route(req, res, view);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      if (view.bodyLength < MAX_ECHOED_BODY) chunks.push(chunk);
      view.bodyLength += chunk.length;
    });
    req.on('end', () => {
      if (chunks.length > 0) {
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        view.body = all.toString('utf8', 0, Math.min(all.length, MAX_ECHOED_BODY));
      }
      route(req, res, view);
    });
  });

  function route(req: http.IncomingMessage, res: http.ServerResponse, view: EchoRequestView): void {
    const { path } = view;
    if (path === '/healthz') {
      // Failing readiness while draining takes the pod out of load balancing before it goes away.
      if (isDraining()) send(res, view, 503, TEXT, 'shutting down\n');
      else send(res, view, 200, TEXT, 'ok\n');
    } else if (fail.every > 0 && ++served % fail.every === 0) {
      echo(req, res, view, fail.status);
    } else if (path.startsWith('/status/')) {
      const code = parseIntStrict(path.slice(8));
      if (code === undefined || code < 200 || code > 599) {
        send(res, view, 400, TEXT,
          `invalid status code "${path.slice(8)}" in ${path}: want a number from 200 to 599\n`);
      } else {
        echo(req, res, view, code);
      }
    } else if (path.startsWith('/delay/')) {
      const ms = parseIntStrict(path.slice(7));
      if (ms === undefined || ms > MAX_DELAY_MS) {
        send(res, view, 400, TEXT,
          `invalid delay "${path.slice(7)}" in ${path}: want milliseconds from 0 to ${MAX_DELAY_MS}\n`);
      } else {
        const timer = setTimeout(() => echo(req, res, view, 200), ms);
        res.once('close', () => clearTimeout(timer));
      }
    } else if (path === '/forward') {
      forward(req, res, view);
    } else {
      echo(req, res, view, 200);
    }
  }

  function echo(req: http.IncomingMessage, res: http.ServerResponse, view: EchoRequestView, status: number): void {
    if (wantsJson(req, view)) {
      send(res, view, status, JSON_TYPE, JSON.stringify({
        pod: id.pod,
        namespace: id.namespace,
        node: id.node,
        serviceAccount: id.serviceAccount,
        serviceVersion: id.serviceVersion,
        servicePort: req.socket.localPort,
        method: view.method,
        url: view.url,
        path: view.path,
        proto: `HTTP/${req.httpVersion}`,
        host: req.headers.host ?? '',
        headers: req.headers,
        remoteAddress: plainAddress(req.socket.remoteAddress),
        remotePort: req.socket.remotePort,
        bodyLength: view.bodyLength,
        body: view.body,
      }) + '\n');
      return;
    }
    // Field names and order follow Istio's echo app so the same greps work (`Hostname=`, `IP=`, `RequestHeader=`).
    let text = `${textVersion}ServicePort=${req.socket.localPort}\nHost=${req.headers.host ?? ''}\nURL=${view.url}\n` +
      `Method=${view.method}\nProto=HTTP/${req.httpVersion}\nIP=${plainAddress(req.socket.remoteAddress)}\n` +
      `RemotePort=${req.socket.remotePort}\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) text += `RequestHeader=${raw[i]}:${raw[i + 1]}\n`;
    text += textIdentity;
    text += `BodyLength=${view.bodyLength}\n`;
    // Body goes last and unescaped: everything after `Body=` up to the final newline is the request body.
    if (view.bodyLength > 0) text += `Body=${view.body}\n`;
    send(res, view, status, TEXT, text);
  }

  // GET /forward?url=http://other/...: this pod calls `url` and relays the answer, so a demo can show a chain of
  // identities (frontend → orders → payments) and which hops the mesh's policies allow.
  function forward(req: http.IncomingMessage, res: http.ServerResponse, view: EchoRequestView): void {
    const target = new URLSearchParams(view.query).get('url');
    let url: URL | undefined;
    try {
      if (target) url = new URL(target);
    } catch {
      // reported below
    }
    if (!url || url.protocol !== 'http:') {
      send(res, view, 400, TEXT,
        `invalid url "${target ?? ''}" in ${view.url}: want /forward?url=http://host[:port]/path\n`);
      return;
    }
    const headers: http.OutgoingHttpHeaders = {};
    if (req.headers.accept) headers.accept = req.headers.accept;
    const upstream = http.get(url, { headers, timeout: FORWARD_TIMEOUT_MS, agent: forwardAgent }, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        res.setHeader('x-ambit-forwarded-by', `${id.namespace}/${id.pod}`);
        send(res, view, up.statusCode ?? 502, String(up.headers['content-type'] ?? TEXT), Buffer.concat(chunks));
      });
      up.on('error', (err) => upstreamFailed(res, view, url!, err));
    });
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    upstream.on('error', (err) => upstreamFailed(res, view, url!, err));
  }

  function upstreamFailed(
    res: http.ServerResponse, view: EchoRequestView, url: URL, err: NodeJS.ErrnoException,
  ): void {
    if (res.headersSent) return;
    res.setHeader('x-ambit-forwarded-by', `${id.namespace}/${id.pod}`);
    send(res, view, 502, TEXT, `upstream connect error calling ${url.href}: ${err.code ?? err.message}\n`);
  }

  function send(
    res: http.ServerResponse, view: EchoRequestView, status: number, type: string, body: string | Buffer,
  ): void {
    const length = Buffer.byteLength(body);
    view.sentBytes = length;
    res.writeHead(status, isDraining()
      ? ['content-type', type, 'content-length', String(length), 'connection', 'close']
      : ['content-type', type, 'content-length', String(length)]);
    res.end(body);
  }

  return server;
}

const forwardAgent = new http.Agent({ keepAlive: true });

function wantsJson(req: http.IncomingMessage, view: EchoRequestView): boolean {
  const accept = req.headers.accept;
  if (accept !== undefined && accept.includes('application/json')) return true;
  return view.query.length > 0 && new URLSearchParams(view.query).get('format') === 'json';
}

function parseIntStrict(text: string): number | undefined {
  return /^\d{1,9}$/.test(text) ? Number(text) : undefined;
}

// ---- TCP -------------------------------------------------------------------------------------------------------

function createTcpEchoServer(log: LineLog | undefined): {
  server: net.Server;
  drain(): Promise<void>;
  destroyAll(): void;
} {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    const started = log ? performance.now() : 0;
    const peer = `${plainAddress(socket.remoteAddress)}:${socket.remotePort}`;
    let failure = '';
    // Piping a socket into itself echoes with backpressure and no copies; the client's FIN ends our side too.
    socket.pipe(socket);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failure = ` error=${err.code ?? err.message}`;
    });
    socket.on('close', () => {
      sockets.delete(socket);
      log?.line(`${timestamp()} tcp ${peer} received=${socket.bytesRead} sent=${socket.bytesWritten} ` +
        `${(performance.now() - started).toFixed(2)}ms${failure}`);
    });
  });
  return {
    server,
    drain(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Half-close: the client reads EOF after everything already echoed; its own FIN then closes the socket.
      for (const s of sockets) {
        s.unpipe(s);
        s.end();
        s.resume();
      }
      return closed;
    },
    destroyAll(): void {
      for (const s of sockets) s.destroy();
    },
  };
}
