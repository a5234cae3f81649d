// A waypoint in one test process, on loopback: a real control plane (ControlPlaneServer with a MeshCa, service
// account tokens checked against a ServiceAccountIssuer's JWKS) serving Address and Waypoint resources from a
// FakeSource; the waypoint itself (Waypoint.start, its own CA and xDS clients); endpoint workloads on 127.a.b.x
// addresses (an HboneServer on <ip>:15008 presenting the workload's certificate in front of HTTP/1.1, h2c and TCP echo
// servers, or the plain servers alone for tunnelProtocol NONE); and a client that acts as the source ztunnel (HBONE
// to the waypoint with the `sleep` workload's certificate, from the `sleep` workload's address).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { ServiceAccountTokenAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { xdsTypesOf } from '../../src/controlplane/xds.js';
import { dialHbone, openTunnel } from '../../src/hbone/client.js';
import { HboneServer, type HboneRequest } from '../../src/hbone/server.js';
import { issueWorkloadCertificate } from '../../src/identity/certs.js';
import type { WorkloadCertificate } from '../../src/identity/workload-cert.js';
import { ServiceAccountIssuer } from '../../src/local/tokens.js';
import { LogSink } from '../../src/telemetry/log.js';
import { loadWaypointConfig, type WaypointFlags } from '../../src/waypoint/config.js';
import { TunnelSocket } from '../../src/waypoint/http/tunnel-socket.js';
import { Waypoint } from '../../src/waypoint/waypoint.js';
import {
  TYPE_ADDRESS,
  TYPE_WAYPOINT,
  type Address,
  type PolicyRule,
  type WaypointProtocol,
  type WaypointResource,
  type WorkloadStatus,
} from '../../src/xds/types.js';
import { CapturedLog, FakeSource } from '../controlplane/helpers.js';
import { eventually } from '../support/eventually.js';

export { eventually };

export const TD = 'cluster.local';
/** The waypoint: Gateway `mesh/waypoint`, service account `waypoint`. */
export const WP_NS = 'mesh';
export const WP_NAME = 'waypoint';
export const WP_HOSTNAME = `${WP_NAME}.${WP_NS}.svc.${TD}`;
export const WAYPOINT_ID = `spiffe://${TD}/ns/${WP_NS}/sa/waypoint`;
/** The client workload `client/sleep`. */
export const CLIENT_ID = `spiffe://${TD}/ns/client/sa/sleep`;
/** Namespace of the Services and their endpoints. */
export const APPS = 'apps';
export const ECHO_ID = `spiffe://${TD}/ns/${APPS}/sa/echo`;

export const fqdn = (name: string): string => `${name}.${APPS}.svc.${TD}`;

// ---- the mesh as the tests see it ----------------------------------------------------------------------------

/** Last octet of each address in the 127.a.b.0/24 range the harness found free. */
export const HOST = {
  echoA: 2,
  echoB: 3,
  /** UNHEALTHY endpoint of `echo` and the only endpoint of `empty`; its servers run, so a request to it would show. */
  echoC: 4,
  grpcA: 5,
  /** tunnelProtocol NONE: the waypoint dials its HTTP server directly. */
  plainA: 6,
  /** tunnelProtocol NONE, nothing listens: connections are refused. */
  refusedA: 7,
  /** HBONE; its ztunnel answers every CONNECT with 503 (what ztunnel does when the application port refuses). */
  resetA: 8,
  tcpA: 9,
  client: 10,
  sniffA: 11,
  /** HTTPS on :8443 with a certificate of the mesh's CA (for DestinationRule TLS origination). */
  tlsA: 12,
} as const;

/** Service VIPs (nothing listens on them: only the CONNECT `:authority` names them). */
export const VIP = {
  echo: 100,
  grpc: 101,
  plain: 102,
  refused: 103,
  reset: 104,
  tcp: 105,
  sniff: 106,
  empty: 107,
  unbound: 108,
  secure: 109,
} as const;

interface ServicePortSpec {
  port: number;
  targetPort: number;
  protocol: WaypointProtocol;
  name: string;
}

/** Services bound to the waypoint (and `unbound`, which is not), with the workloads behind them. */
const SERVICES: Record<keyof typeof VIP, { ports: ServicePortSpec[]; endpoints: (keyof typeof HOST)[]; bound: boolean }> = {
  echo: { ports: [{ port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' }], endpoints: ['echoA', 'echoB', 'echoC'], bound: true },
  grpc: { ports: [{ port: 50051, targetPort: 8081, protocol: 'HTTP2', name: 'http2' }], endpoints: ['grpcA'], bound: true },
  plain: { ports: [{ port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' }], endpoints: ['plainA'], bound: true },
  refused: { ports: [{ port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' }], endpoints: ['refusedA'], bound: true },
  reset: {
    ports: [
      { port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' },
      { port: 81, targetPort: 8081, protocol: 'HTTP2', name: 'http2' },
    ],
    endpoints: ['resetA'],
    bound: true,
  },
  tcp: { ports: [{ port: 9000, targetPort: 9000, protocol: 'TCP', name: 'tcp' }], endpoints: ['tcpA'], bound: true },
  sniff: {
    ports: [
      { port: 7000, targetPort: 8080, protocol: 'UNSPECIFIED', name: 'web' },
      { port: 7001, targetPort: 9000, protocol: 'UNSPECIFIED', name: 'raw' },
      { port: 7002, targetPort: 8081, protocol: 'UNSPECIFIED', name: 'h2' },
    ],
    endpoints: ['sniffA'],
    bound: true,
  },
  empty: { ports: [{ port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' }], endpoints: ['echoC'], bound: true },
  unbound: { ports: [{ port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' }], endpoints: ['echoA'], bound: false },
  secure: { ports: [{ port: 80, targetPort: 8443, protocol: 'HTTP', name: 'http' }], endpoints: ['tlsA'], bound: true },
};

interface WorkloadSpec {
  name: string;
  serviceAccount: string;
  tunnel: 'HBONE' | 'NONE';
  status: WorkloadStatus;
  /** Which servers run on the workload's address. */
  serves: { http1?: boolean; h2c?: boolean; tcp?: boolean; https?: boolean; hbone?: 'relay' | 'refuse' };
}

const WORKLOADS: Record<keyof typeof HOST, WorkloadSpec> = {
  echoA: { name: 'echo-a', serviceAccount: 'echo', tunnel: 'HBONE', status: 'HEALTHY', serves: { http1: true, hbone: 'relay' } },
  echoB: { name: 'echo-b', serviceAccount: 'echo', tunnel: 'HBONE', status: 'HEALTHY', serves: { http1: true, hbone: 'relay' } },
  echoC: { name: 'echo-c', serviceAccount: 'echo', tunnel: 'HBONE', status: 'UNHEALTHY', serves: { http1: true, hbone: 'relay' } },
  grpcA: { name: 'grpc-a', serviceAccount: 'grpc', tunnel: 'HBONE', status: 'HEALTHY', serves: { h2c: true, hbone: 'relay' } },
  plainA: { name: 'plain-a', serviceAccount: 'plain', tunnel: 'NONE', status: 'HEALTHY', serves: { http1: true } },
  refusedA: { name: 'refused-a', serviceAccount: 'refused', tunnel: 'NONE', status: 'HEALTHY', serves: {} },
  resetA: { name: 'reset-a', serviceAccount: 'reset', tunnel: 'HBONE', status: 'HEALTHY', serves: { hbone: 'refuse' } },
  tcpA: { name: 'tcp-a', serviceAccount: 'tcp', tunnel: 'HBONE', status: 'HEALTHY', serves: { tcp: true, hbone: 'relay' } },
  client: { name: 'sleep', serviceAccount: 'sleep', tunnel: 'HBONE', status: 'HEALTHY', serves: {} },
  sniffA: { name: 'sniff-a', serviceAccount: 'sniff', tunnel: 'HBONE', status: 'HEALTHY', serves: { http1: true, h2c: true, tcp: true, hbone: 'relay' } },
  tlsA: { name: 'tls-a', serviceAccount: 'secure', tunnel: 'HBONE', status: 'HEALTHY', serves: { https: true, hbone: 'relay' } },
};

function ipBytes(ip: string): Uint8Array {
  return new Uint8Array(ip.split('.').map(Number));
}

// ---- endpoint workloads --------------------------------------------------------------------------------------

export interface RecordedRequest {
  httpVersion: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyLength: number;
  bodySha256: string;
}

export interface RecordedConnect {
  authority: string;
  srcIdentity: string;
}

/** Closes a server and every connection it accepted. */
type Closer = () => Promise<void>;

function listenOn(server: net.Server, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** One endpoint workload: its servers and what they saw. */
export class Backend {
  readonly requests: RecordedRequest[] = [];
  readonly connects: RecordedConnect[] = [];
  /** JSON documents the HTTP/1.1 server answers GETs of their path with (e.g. a JWKS); not recorded as requests. */
  readonly documents = new Map<string, string>();
  /** TCP echo connections accepted. */
  tcpConnections = 0;
  private readonly closers: Closer[] = [];

  constructor(
    readonly name: string,
    readonly ip: string,
  ) {}

  /**
   * HTTP/1.1 on :8080. Answers `x-backend: <name>`; a POST gets its body back, anything else a short text. Test
   * controls in request headers: `x-respond-status: N` answers N; `x-fail-times: <id>:<n>` answers 503 to the first
   * n requests with that id (counted across all backends); `x-respond-status-from: <backend name>:N` answers N when
   * this is that backend; `x-delay-ms: N` answers after N ms.
   */
  async startHttp1(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const doc = req.method === 'GET' ? this.documents.get(req.url ?? '') : undefined;
        if (doc !== undefined) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(doc);
          return;
        }
        const failTimes = /^(.+):(\d+)$/.exec(String(req.headers['x-fail-times'] ?? ''));
        let forced = Number(req.headers['x-respond-status'] ?? 0);
        const from = /^(.+):(\d+)$/.exec(String(req.headers['x-respond-status-from'] ?? ''));
        if (from && from[1] === this.name) forced = Number(from[2]);
        if (failTimes) {
          const seen = FAILURES_SEEN.get(failTimes[1]!) ?? 0;
          FAILURES_SEEN.set(failTimes[1]!, seen + 1);
          if (seen < Number(failTimes[2])) forced = 503;
        }
        const delay = Number(req.headers['x-delay-ms'] ?? 0);
        if (forced || delay) {
          this.requests.push({ httpVersion: req.httpVersion, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyLength: 0, bodySha256: '' });
          const timer = setTimeout(() => {
            res.writeHead(forced || 200, { 'content-type': 'text/plain', 'x-backend': this.name });
            res.end(`${forced || 200} from ${this.name}\n`);
          }, delay);
          res.once('close', () => clearTimeout(timer));
          return;
        }
        const body = Buffer.concat(chunks);
        this.requests.push({
          httpVersion: req.httpVersion,
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          bodyLength: body.length,
          bodySha256: createHash('sha256').update(body).digest('hex'),
        });
        if (req.method === 'POST') {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-backend': this.name });
          res.end(body);
        } else {
          res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': this.name });
          res.end(`hello from ${this.name}\n`);
        }
      });
    });
    await listenOn(server, this.ip, 8080);
    this.closers.push(
      () =>
        new Promise((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
  }

  /**
   * HTTPS on :8443 with the workload's certificate, asking for (not requiring) a client certificate of the mesh's CA.
   * Answers `x-backend`, `x-tls-servername` (the SNI it got) and `x-client-san` (the client certificate's SANs, or
   * `none`).
   */
  async startHttps(cert: WorkloadCertificate): Promise<void> {
    const server = https.createServer({ key: cert.keyPem, cert: cert.chainPem.join(''), ca: cert.rootPems, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      const peer = socket.getPeerCertificate();
      const san = socket.authorized && peer?.subjectaltname ? peer.subjectaltname : 'none';
      this.requests.push({ httpVersion: req.httpVersion, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyLength: 0, bodySha256: '' });
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': this.name, 'x-tls-servername': String((socket as { servername?: string | false }).servername || ''), 'x-client-san': san });
      res.end(`hello over TLS from ${this.name}\n`);
    });
    await listenOn(server, this.ip, 8443);
    this.closers.push(
      () =>
        new Promise((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
  }

  /** h2c on :8081. `application/grpc` requests get one message and `grpc-status: 0` trailers. */
  async startH2c(): Promise<void> {
    const server = http2.createServer();
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => {
      sessions.add(s);
      s.on('error', () => {});
      s.once('close', () => sessions.delete(s));
    });
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const hash = createHash('sha256');
      let n = 0;
      stream.on('data', (c: Buffer) => {
        n += c.length;
        hash.update(c);
      });
      stream.on('end', () => {
        const plain: http.IncomingHttpHeaders = {};
        for (const k in headers) if (k[0] !== ':') plain[k] = headers[k] as string;
        this.requests.push({
          httpVersion: '2.0',
          method: String(headers[':method']),
          url: String(headers[':path']),
          headers: { ...plain, ':authority': String(headers[':authority']) } as http.IncomingHttpHeaders,
          bodyLength: n,
          bodySha256: hash.digest('hex'),
        });
        if (String(headers['content-type'] ?? '').startsWith('application/grpc')) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-backend': this.name }, { waitForTrailers: true });
          stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all good' }));
          stream.end(grpcFrame(Buffer.from(`reply from ${this.name}`)));
        } else {
          stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-backend': this.name });
          stream.end(`h2 hello from ${this.name}\n`);
        }
      });
    });
    await listenOn(server, this.ip, 8081);
    this.closers.push(
      () =>
        new Promise((resolve) => {
          for (const s of sessions) s.destroy();
          server.close(() => resolve());
        }),
    );
  }

  /** TCP echo on :9000 that, after the peer's FIN, writes `[eof]` and then closes its side (half-close visible). */
  async startTcpEcho(): Promise<void> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      this.tcpConnections++;
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => sockets.delete(s));
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end('[eof]'));
    });
    await listenOn(server, this.ip, 9000);
    this.closers.push(
      () =>
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    );
  }

  /** The workload's ztunnel inbound: HBONE on :15008, relaying to <ip>:<target port> (or refusing every CONNECT). */
  async startHbone(cert: WorkloadCertificate, mode: 'relay' | 'refuse'): Promise<void> {
    const server = new HboneServer({
      certificateFor: () => cert,
      onConnect: (req: HboneRequest) => {
        this.connects.push({ authority: req.authority, srcIdentity: req.srcIdentity });
        if (mode === 'refuse') return { status: 503, error: 'connection refused' };
        if (req.target.host !== this.ip) return { status: 400, error: `test refuses ${req.authority}` };
        return new Promise((resolve) => {
          const s = net.connect({ host: this.ip, port: req.target.port, allowHalfOpen: true });
          s.once('connect', () => {
            s.removeAllListeners('error');
            resolve({ status: 200, upstream: s });
          });
          s.once('error', (e) => resolve({ status: 503, error: `connection failed: ${e.message}` }));
        });
      },
    });
    await server.listen(15008, this.ip);
    this.closers.push(() => server.close(100));
  }

  async close(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((c) => c()));
  }
}

/** One gRPC length-prefixed message. */
/** `x-fail-times` ids → requests seen, across every Backend of the process. */
const FAILURES_SEEN = new Map<string, number>();

export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

// ---- resources -----------------------------------------------------------------------------------------------

export function waypointResourceName(kind: 'waypoint' | 'service' | 'policy' | 'destination' | 'authn', ns = '', name = ''): string {
  return kind === 'waypoint' ? `${WP_NS}/${WP_NAME}/waypoint` : `${WP_NS}/${WP_NAME}/${kind}/${ns}/${name}`;
}

export function waypointSelf(policies: string[] = []): WaypointResource {
  return { waypoint: { name: WP_NAME, namespace: WP_NS, hostname: WP_HOSTNAME, trustDomain: TD, trafficType: 'SERVICE', policies } };
}

export function boundService(name: keyof typeof VIP, policies: string[] = []): Record<string, WaypointResource> {
  const spec = SERVICES[name];
  return {
    [waypointResourceName('service', APPS, fqdn(name))]: {
      service: { name, namespace: APPS, hostname: fqdn(name), ports: spec.ports.map((p) => ({ port: p.port, name: p.name, protocol: p.protocol })), policies, routes: [] },
    },
  };
}

export function policy(ns: string, name: string, action: 'ALLOW' | 'DENY' | 'AUDIT', rules: PolicyRule[], dryRun = false): Record<string, WaypointResource> {
  return { [waypointResourceName('policy', ns, name)]: { policy: { name, namespace: ns, action, rules, dryRun } } };
}

// ---- small clients -------------------------------------------------------------------------------------------

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: Record<string, string | string[] | undefined>;
}

/** GET on loopback without keep-alive (nothing lingers after the test). */
export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/**
 * Reads a stream until it closes; resolves with what arrived and how it finished. When the peer ends its side, ours
 * is ended too, as a client application does when the server closed.
 */
export function drain(s: Duplex): Promise<{ data: Buffer; ended: boolean; error?: Error }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: Error | undefined;
    let ended = false;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e) => (error = e));
    s.once('end', () => {
      ended = true;
      if (!s.writableEnded) s.end();
    });
    s.once('close', () => resolve({ data: Buffer.concat(chunks), ended, ...(error ? { error } : {}) }));
    s.resume();
  });
}

/** `p`, or undefined when it has not settled after `ms` (a bound on a wait that must not hang the suite). */
export async function within<T>(ms: number, p: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `n` bytes have arrived on `s` (they are consumed). */
export function readBytes(s: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        cleanup();
        resolve(Buffer.concat(chunks));
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`stream closed after ${got} of ${n} bytes`));
    };
    const cleanup = () => {
      s.off('data', onData);
      s.off('close', onClose);
      s.pause();
    };
    s.on('data', onData);
    s.once('close', onClose);
    s.resume();
  });
}

/** The source ztunnel: one HBONE connection to the waypoint, from the client workload's address. */
export class MeshClient {
  private constructor(
    readonly session: http2.ClientHttp2Session,
    /** The Host a client application would send for a Service `VIP:port`. */
    private readonly hostFor: (authority: string) => string,
  ) {}

  static async dial(h: Harness): Promise<MeshClient> {
    const session = await dialHbone({
      destination: { address: '127.0.0.1', port: h.ports.hbone },
      certificate: h.clientCert,
      expectedIdentities: [WAYPOINT_ID],
      sourceAddress: h.ip(HOST.client),
      connectTimeoutMs: 5000,
    });
    return new MeshClient(session, (authority) => h.hostFor(authority));
  }

  /** CONNECT `authority`; rejects with HboneStatusError when the waypoint refuses. */
  tunnel(authority: string): Promise<http2.ClientHttp2Stream> {
    return openTunnel(this.session, { target: authority });
  }

  /** One HTTP/1.1 request in its own CONNECT stream. */
  async http1(
    authority: string,
    opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer } = {},
  ): Promise<HttpResult> {
    const stream = await this.tunnel(authority);
    const socket = new TunnelSocket(stream);
    try {
      return await new Promise<HttpResult>((resolve, reject) => {
        const req = http.request(
          {
            method: opts.method ?? 'GET',
            path: opts.path ?? '/',
            headers: { host: this.hostFor(authority), ...opts.headers },
            // As curl (100 KiB), not Node's 16 KiB default: the client must not be the limit a test measures.
            maxHeaderSize: 100 * 1024,
            createConnection: () => socket as unknown as net.Socket,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(opts.body);
      });
    } finally {
      socket.destroy();
    }
  }

  /** An HTTP/2 (h2c prior knowledge) session inside one CONNECT stream. */
  async h2session(authority: string): Promise<http2.ClientHttp2Session> {
    const stream = await this.tunnel(authority);
    const session = http2.connect(`http://${authority}`, { createConnection: () => stream as unknown as net.Socket });
    session.on('error', () => {});
    session.once('close', () => stream.destroy());
    return session;
  }

  /** One HTTP/2 request; `endedWithHeaders` tells a trailers-only response (HEADERS with END_STREAM). */
  static h2request(
    session: http2.ClientHttp2Session,
    headers: http2.OutgoingHttpHeaders,
    body?: Buffer,
  ): Promise<HttpResult & { h2headers: http2.IncomingHttpHeaders; endedWithHeaders: boolean; gotTrailers: boolean }> {
    return new Promise((resolve, reject) => {
      const s = session.request(headers, { endStream: body === undefined });
      let h2headers: http2.IncomingHttpHeaders = {};
      let trailers: Record<string, string | string[] | undefined> = {};
      let gotTrailers = false;
      let endedWithHeaders = false;
      const chunks: Buffer[] = [];
      s.on('response', (h, flags) => {
        h2headers = h;
        endedWithHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      s.on('trailers', (t) => {
        gotTrailers = true;
        trailers = t;
      });
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', reject);
      s.once('close', () => {
        if (h2headers[':status'] === undefined) return reject(new Error(`stream closed without a response (rst ${s.rstCode})`));
        const plain: http.IncomingHttpHeaders = {};
        for (const k in h2headers) if (k[0] !== ':') plain[k] = h2headers[k] as string;
        resolve({
          status: Number(h2headers[':status']),
          headers: plain,
          h2headers,
          body: Buffer.concat(chunks),
          trailers,
          gotTrailers,
          endedWithHeaders,
        });
      });
      if (body !== undefined) s.end(body);
    });
  }

  close(): void {
    this.session.close();
  }
}

// ---- Prometheus text -----------------------------------------------------------------------------------------

/** Sum of the samples of `name` whose labels include all of `labels`; 0 when there is none. */
export function metricSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const got = new Map<string, string>();
    for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got.set(m[1]!, m[2]!);
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) sum += Number(line.slice(close + 1).trim());
  }
  return sum;
}

/** The label sets of `name` samples that include `labels`, in exported order. */
export function metricLabelSets(text: string, name: string, labels: Record<string, string>): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) out.push(body);
  }
  return out;
}

// ---- the harness ---------------------------------------------------------------------------------------------

/** A port the kernel just handed out on loopback (for listeners whose port must be known before they start). */
/**
 * A port for a waypoint listener to bind a moment later. It is picked below the kernel's ephemeral range (32768-60999
 * by default), not asked of the kernel: a port the kernel just handed out is one it hands out again to the next
 * outgoing connection of a test running in parallel, and the listener then fails with EADDRINUSE.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
}

/** Whether `port` is free on every address, as the waypoint's listeners bind it. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

const ACCESS_LOG_LINE = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "/;

export interface WaypointPorts {
  hbone: number;
  admin: number;
  metrics: number;
  status: number;
}

export interface StartedWaypoint {
  waypoint: Waypoint;
  ports: WaypointPorts;
  logLines: string[];
}

export class Harness {
  readonly source = new FakeSource([TYPE_ADDRESS, TYPE_WAYPOINT]);
  readonly cpLog = new CapturedLog();
  readonly backends = new Map<keyof typeof HOST, Backend>();
  /** Envoy-format access-log lines the waypoint wrote to stdout. */
  readonly accessLog: string[] = [];
  readonly logLines: string[] = [];
  /** Process warnings (e.g. MaxListenersExceededWarning) emitted while the harness ran. */
  readonly warnings: Error[] = [];
  private readonly onWarning = (w: Error) => this.warnings.push(w);
  /** Pods whose service account tokens the control plane accepts (`namespace/pod`). */
  readonly livePods = new Set<string>();
  cp: ControlPlaneServer | undefined;
  waypoint!: Waypoint;
  ports!: WaypointPorts;
  clientCert!: WorkloadCertificate;
  ca!: MeshCa;
  dir = '';
  private prefix = '';
  private issuer!: ServiceAccountIssuer;
  private jwksPath = '';
  private caKeyPem = '';
  private readonly extraWaypoints: Waypoint[] = [];
  private restoreStdout: (() => void) | undefined;

  ip(host: number): string {
    return `${this.prefix}${host}`;
  }

  authority(service: keyof typeof VIP, port: number): string {
    return `${this.ip(VIP[service])}:${port}`;
  }

  /** `echo.apps.svc.cluster.local` for the echo VIP on port 80, `<fqdn>:<port>` on other ports. */
  hostFor(authority: string): string {
    const [ip, port] = [authority.slice(0, authority.lastIndexOf(':')), authority.slice(authority.lastIndexOf(':') + 1)];
    const name = (Object.keys(VIP) as (keyof typeof VIP)[]).find((n) => this.ip(VIP[n]) === ip);
    if (name === undefined) return authority;
    return port === '80' ? fqdn(name) : `${fqdn(name)}:${port}`;
  }

  backend(host: keyof typeof HOST): Backend {
    return this.backends.get(host)!;
  }

  static async start(): Promise<Harness> {
    const h = new Harness();
    try {
      await h.setUp();
    } catch (e) {
      await h.close();
      throw e;
    }
    return h;
  }

  private async setUp(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'ambit-waypoint-proxy-'));
    process.on('warning', this.onWarning);
    this.captureAccessLog();
    this.ca = await MeshCa.load({ trustDomain: TD, stateDir: this.dir });
    this.caKeyPem = readFileSync(join(this.dir, 'ca', 'root-key.pem'), 'utf8');
    this.jwksPath = join(this.dir, 'sa-jwks.json');
    this.issuer = await ServiceAccountIssuer.load(join(this.dir, 'sa-key.pem'), this.jwksPath);
    this.clientCert = await this.issue(CLIENT_ID);
    await this.startBackends();
    this.publishMesh();
    await this.startControlPlane();
    const started = await this.startWaypoint({ gatewayName: WP_NAME, serviceAccount: 'waypoint', podName: 'waypoint-0', logLines: this.logLines });
    this.waypoint = started.waypoint;
    this.ports = started.ports;
    await eventually('waypoint ready', async () => (await httpGet(this.ports.status, '/healthz/ready')).status === 200, { timeoutMs: 10_000 });
  }

  issue(identity: string): Promise<WorkloadCertificate> {
    return issueWorkloadCertificate({ certPem: this.ca.rootPem, keyPem: this.caKeyPem }, identity, 3600);
  }

  /**
   * The waypoint writes access-log lines to stdout (telemetry/log.ts writeStdout) and Waypoint.start offers no other
   * output for them, so whole writes made only of access-log lines are taken off stdout and kept; everything else
   * (the test runner's own reports) passes through.
   */
  private captureAccessLog(): void {
    const original = process.stdout.write;
    const captured = this.accessLog;
    process.stdout.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      if (typeof chunk === 'string') {
        const lines = chunk.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        if (lines.length > 0 && lines.every((l) => ACCESS_LOG_LINE.test(l))) {
          captured.push(...lines);
          if (process.env.AMBIT_TEST_LOG) process.stderr.write(chunk);
          const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
          cb?.();
          return true;
        }
      }
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof process.stdout.write;
    this.restoreStdout = () => {
      process.stdout.write = original;
    };
  }

  /** Binds every endpoint's servers in a 127.a.b.0/24 range nobody else uses. */
  private async startBackends(): Promise<void> {
    const certs = new Map<string, WorkloadCertificate>();
    for (let attempt = 0; ; attempt++) {
      const a = 100 + ((process.pid + attempt * 37) % 150);
      const b = 1 + ((process.pid * 7 + attempt * 13) % 250);
      this.prefix = `127.${a}.${b}.`;
      try {
        for (const [key, spec] of Object.entries(WORKLOADS) as [keyof typeof HOST, WorkloadSpec][]) {
          const be = new Backend(spec.name, this.ip(HOST[key]));
          this.backends.set(key, be);
          if (spec.serves.http1) await be.startHttp1();
          if (spec.serves.h2c) await be.startH2c();
          if (spec.serves.tcp) await be.startTcpEcho();
          if (spec.serves.hbone || spec.serves.https) {
            const id = `spiffe://${TD}/ns/${APPS}/sa/${spec.serviceAccount}`;
            let cert = certs.get(id);
            if (!cert) certs.set(id, (cert = await this.issue(id)));
            if (spec.serves.https) await be.startHttps(cert);
            if (spec.serves.hbone) await be.startHbone(cert, spec.serves.hbone);
          }
        }
        return;
      } catch (e) {
        await Promise.all([...this.backends.values()].map((be) => be.close()));
        this.backends.clear();
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw e;
      }
    }
  }

  workloadAddress(key: keyof typeof HOST, overrides: { status?: WorkloadStatus } = {}): Record<string, Address> {
    const spec = WORKLOADS[key];
    const services: Record<string, { ports: { servicePort: number; targetPort: number }[] }> = {};
    for (const [svc, s] of Object.entries(SERVICES)) {
      if (s.endpoints.includes(key)) services[`${APPS}/${fqdn(svc)}`] = { ports: s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort })) };
    }
    const ns = key === 'client' ? 'client' : APPS;
    return {
      [`Kubernetes//Pod/${ns}/${spec.name}`]: {
        workload: {
          uid: `Kubernetes//Pod/${ns}/${spec.name}`,
          name: spec.name,
          namespace: ns,
          addresses: [ipBytes(this.ip(HOST[key]))],
          network: '',
          tunnelProtocol: spec.tunnel,
          trustDomain: TD,
          serviceAccount: spec.serviceAccount,
          node: 'node-1',
          canonicalName: spec.name.replace(/-[a-z]$/, ''),
          canonicalRevision: 'v1',
          workloadType: 'POD',
          workloadName: spec.name,
          services,
          authorizationPolicies: [],
          status: overrides.status ?? spec.status,
          clusterId: 'Kubernetes',
        },
      },
    };
  }

  private publishMesh(): void {
    const addresses: Record<string, Address> = {};
    for (const key of Object.keys(WORKLOADS) as (keyof typeof HOST)[]) Object.assign(addresses, this.workloadAddress(key));
    for (const [name, s] of Object.entries(SERVICES) as [keyof typeof VIP, (typeof SERVICES)[keyof typeof VIP]][]) {
      addresses[`${APPS}/${fqdn(name)}`] = {
        service: {
          name,
          namespace: APPS,
          hostname: fqdn(name),
          addresses: [{ network: '', address: ipBytes(this.ip(VIP[name])) }],
          ports: s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort })),
          subjectAltNames: [],
          ...(s.bound ? { waypoint: { hostname: { namespace: WP_NS, hostname: WP_HOSTNAME }, hboneMtlsPort: 15008 } } : {}),
        },
      };
    }
    this.source.set(TYPE_ADDRESS, addresses);
    const resources: Record<string, WaypointResource> = { [waypointResourceName('waypoint')]: waypointSelf() };
    for (const [name, s] of Object.entries(SERVICES) as [keyof typeof VIP, (typeof SERVICES)[keyof typeof VIP]][]) {
      if (s.bound) Object.assign(resources, boundService(name, name === 'echo' ? ['apps/deny-delete'] : name === 'grpc' ? ['apps/grpc-deny'] : []));
    }
    Object.assign(resources, policy(APPS, 'deny-delete', 'DENY', [{ to: [{ operation: { methods: ['DELETE'] } }] }]));
    Object.assign(resources, policy(APPS, 'grpc-deny', 'DENY', [{ to: [{ operation: { paths: ['/test.Denied/*'] } }] }]));
    this.source.set(TYPE_WAYPOINT, resources);
  }

  private async startControlPlane(): Promise<void> {
    this.cp = await ControlPlaneServer.start({
      ca: this.ca,
      authenticator: new ServiceAccountTokenAuthenticator(this.jwksPath, (ns, pod) => this.livePods.has(`${ns}/${pod}`)),
      xdsTypes: xdsTypesOf(this.source),
      placement: { identitiesOnNode: () => new Set() },
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      log: this.cpLog,
    });
  }

  /** Starts a waypoint of this mesh (Gateway `mesh/<gatewayName>`) against the control plane. */
  async startWaypoint(opts: {
    gatewayName: string;
    serviceAccount: string;
    podName: string;
    /** False: the control plane refuses the pod's token until the test adds it to livePods. */
    podAllowed?: boolean;
    logLines?: string[];
    /** Settings over the harness's own. */
    flags?: WaypointFlags;
  }): Promise<StartedWaypoint> {
    const tokenFile = join(this.dir, `${opts.podName}.token`);
    await this.issuer.writeToken(tokenFile, { namespace: WP_NS, serviceAccount: opts.serviceAccount, pod: { name: opts.podName, uid: `uid-${opts.podName}` }, node: 'node-1' });
    if (opts.podAllowed !== false) this.livePods.add(`${WP_NS}/${opts.podName}`);
    const rootCertFile = join(this.dir, 'ca', 'root-cert.pem');
    const ports: WaypointPorts = { hbone: await freePort(), admin: await freePort(), metrics: await freePort(), status: await freePort() };
    const logLines = opts.logLines ?? [];
    const sink = new LogSink({
      level: 'debug',
      write: (line) => {
        logLines.push(line);
        if (process.env.AMBIT_TEST_LOG) process.stderr.write(line);
      },
    });
    const flags: WaypointFlags = {
      gatewayName: opts.gatewayName,
      podName: opts.podName,
      podNamespace: WP_NS,
      instanceIp: '127.0.0.1',
      nodeName: 'node-1',
      serviceAccount: opts.serviceAccount,
      xdsAddress: `127.0.0.1:${this.cp!.port}`,
      caAddress: `127.0.0.1:${this.cp!.port}`,
      rootCertFile,
      tokenFile,
      hbonePort: ports.hbone,
      adminPort: ports.admin,
      metricsPort: ports.metrics,
      statusPort: ports.status,
      drainDurationMs: 200,
      accessLog: true,
      ...opts.flags,
    };
    const waypoint = await Waypoint.start({ config: loadWaypointConfig(flags, {}), sink });
    if (opts.gatewayName !== WP_NAME) this.extraWaypoints.push(waypoint);
    return { waypoint, ports, logLines };
  }

  async scrape(): Promise<string> {
    const r = await httpGet(this.ports.metrics, '/stats/prometheus');
    if (r.status !== 200) throw new Error(`/stats/prometheus answered ${r.status}: ${r.body}`);
    return r.body;
  }

  /** Waits until the waypoint's configuration satisfies `check` (its /config_dump content). */
  async waitForConfig(what: string, check: (dump: Record<string, any>) => boolean): Promise<void> {
    await eventually(what, () => check(this.waypoint.configDump() as Record<string, any>));
  }

  /** Access-log lines written since `from` (an index into accessLog) that contain `fragment`. */
  logged(fragment: string, from = 0): string[] {
    return this.accessLog.slice(from).filter((l) => l.includes(fragment));
  }

  async stopControlPlane(): Promise<void> {
    const cp = this.cp;
    this.cp = undefined;
    await cp?.close();
  }

  async close(): Promise<void> {
    for (const w of this.extraWaypoints.splice(0)) await w.close();
    await this.waypoint?.close();
    await Promise.all([...this.backends.values()].map((b) => b.close()));
    await this.stopControlPlane();
    this.restoreStdout?.();
    process.off('warning', this.onWarning);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
