// The waypoint proxy against hostile endpoints and clients, in one process on loopback (harness.ts): endpoints that
// answer with statuses no HTTP codec may forward, with garbage, or close mid-body; bodies that must survive retries;
// endpoints that answer before reading an upload; CONNECT and upgrades; websockets; trailers; absolute-form targets;
// header limits; gRPC message counting. Expected behaviour is Envoy's as Istio configures a waypoint
// (../shared/reference/envoy-l7.md §0, §3.2, §3.3, §3.8, §5).
//
// Besides the harness's mesh, this file publishes Services of its own (see EXTRA_SERVICES), whose endpoints run the
// servers each test starts for itself on their addresses.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { TYPE_ADDRESS, TYPE_WAYPOINT, type Address, type WaypointProtocol, type WaypointResource } from '../../src/xds/types.js';
import {
  APPS,
  Backend,
  Harness,
  MeshClient,
  TD,
  WP_HOSTNAME,
  WP_NS,
  drain,
  eventually,
  fqdn,
  grpcFrame,
  metricSum,
  policy,
  waypointResourceName,
  within,
} from './harness.js';

const UPE_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: protocol error';
const UPE_LOG = / 502 UPE upstream_reset_before_response_started\{protocol_error\} /;
/** Bound on every wait for the waypoint: a regression fails the test instead of hanging the suite. */
const BOUND_MS = 5000;

// ---- this file's part of the mesh ----------------------------------------------------------------------------

interface ExtraWorkload {
  name: string;
  /** Last octet in the harness's 127.a.b.0/24 (the harness uses 2–11 and 100–108). */
  host: number;
  serviceAccount: string;
  tunnel: 'HBONE' | 'NONE';
}

const EXTRA_WORKLOADS: ExtraWorkload[] = [
  /** HBONE endpoint of `hostile`: tests run their own servers on its :8080 / :8081 behind a relaying ztunnel. */
  { name: 'hostile-h', host: 20, serviceAccount: 'hostile', tunnel: 'HBONE' },
  /** tunnelProtocol NONE endpoint of `hostile-plain`: tests run their own servers on its :8080 / :8081. */
  { name: 'hostile-p', host: 21, serviceAccount: 'hostile-plain', tunnel: 'NONE' },
  { name: 'retry-a', host: 22, serviceAccount: 'retry', tunnel: 'HBONE' },
  { name: 'retry-b', host: 23, serviceAccount: 'retry', tunnel: 'HBONE' },
  /** Its ztunnel answers every CONNECT with 503. */
  { name: 'retry-bad', host: 24, serviceAccount: 'retry', tunnel: 'HBONE' },
  /** tunnelProtocol NONE and nothing listens: connections are refused. */
  { name: 'retry-dead', host: 25, serviceAccount: 'retry', tunnel: 'NONE' },
];

interface ExtraPort {
  port: number;
  targetPort: number;
  protocol: WaypointProtocol;
  name: string;
}
const HTTP_PORTS: ExtraPort[] = [
  { port: 80, targetPort: 8080, protocol: 'HTTP', name: 'http' },
  { port: 81, targetPort: 8081, protocol: 'HTTP2', name: 'http2' },
];

const EXTRA_SERVICES: Record<string, { vip: number; ports: ExtraPort[]; endpoints: string[] }> = {
  hostile: { vip: 120, ports: HTTP_PORTS, endpoints: ['hostile-h'] },
  'hostile-plain': { vip: 121, ports: HTTP_PORTS, endpoints: ['hostile-p'] },
  retry: { vip: 122, ports: [HTTP_PORTS[0]!], endpoints: ['retry-a', 'retry-b', 'retry-bad'] },
  'retry-dead': { vip: 123, ports: [HTTP_PORTS[0]!], endpoints: ['retry-a', 'retry-b', 'retry-dead'] },
};

function ipBytes(ip: string): Uint8Array {
  return new Uint8Array(ip.split('.').map(Number));
}

function extraAddresses(h: Harness): Record<string, Address> {
  const out: Record<string, Address> = {};
  for (const w of EXTRA_WORKLOADS) {
    const services: Record<string, { ports: { servicePort: number; targetPort: number }[] }> = {};
    for (const [svc, s] of Object.entries(EXTRA_SERVICES)) {
      if (s.endpoints.includes(w.name)) services[`${APPS}/${fqdn(svc)}`] = { ports: s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort })) };
    }
    const uid = `Kubernetes//Pod/${APPS}/${w.name}`;
    out[uid] = {
      workload: {
        uid,
        name: w.name,
        namespace: APPS,
        addresses: [ipBytes(h.ip(w.host))],
        network: '',
        tunnelProtocol: w.tunnel,
        trustDomain: TD,
        serviceAccount: w.serviceAccount,
        node: 'node-1',
        canonicalName: w.name.replace(/-[a-z]+$/, ''),
        canonicalRevision: 'v1',
        workloadType: 'POD',
        workloadName: w.name,
        services,
        authorizationPolicies: [],
        status: 'HEALTHY',
        clusterId: 'Kubernetes',
      },
    };
  }
  for (const [name, s] of Object.entries(EXTRA_SERVICES)) {
    out[`${APPS}/${fqdn(name)}`] = {
      service: {
        name,
        namespace: APPS,
        hostname: fqdn(name),
        addresses: [{ network: '', address: ipBytes(h.ip(s.vip)) }],
        ports: s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort })),
        subjectAltNames: [],
        waypoint: { hostname: { namespace: WP_NS, hostname: WP_HOSTNAME }, hboneMtlsPort: 15008 },
      },
    };
  }
  return out;
}

function extraBoundService(name: string, policies: string[] = []): Record<string, WaypointResource> {
  const s = EXTRA_SERVICES[name]!;
  return {
    [waypointResourceName('service', APPS, fqdn(name))]: {
      service: { name, namespace: APPS, hostname: fqdn(name), ports: s.ports.map((p) => ({ port: p.port, name: p.name, protocol: p.protocol })), policies, routes: [] },
    },
  };
}

// ---- small tools ---------------------------------------------------------------------------------------------

/** Listens; returns a closer that destroys every connection the server accepted (upgraded ones included). */
async function serveOn(server: net.Server, ip: string, port: number): Promise<() => Promise<void>> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** A raw TCP server that reads one request head per connection and lets `answer` act on the socket. */
function rawHttpServer(answer: (s: net.Socket, path: string, head: string) => void): net.Server {
  return net.createServer((s) => {
    s.on('error', () => {});
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      s.pause();
      answer(s, buf.split(' ')[1] ?? '', buf.slice(0, end));
    };
    s.on('data', onData);
  });
}

/** Buffers what a stream delivers and hands it out as the test asks; ends our side once the peer ended. */
class ByteReader {
  buf = Buffer.alloc(0);
  ended = false;
  closed = false;
  error: Error | undefined;
  private waiters: (() => void)[] = [];
  readonly whenClosed: Promise<void>;

  constructor(readonly s: Duplex) {
    s.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    s.on('error', (e) => (this.error = e));
    s.once('end', () => {
      this.ended = true;
      if (!s.writableEnded) s.end();
      this.wake();
    });
    this.whenClosed = new Promise((resolve) =>
      s.once('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `parse` finds what it wants at the front of the buffer; it returns [value, bytes consumed]. */
  async take<T>(what: string, parse: (b: Buffer) => [T, number] | undefined): Promise<T> {
    const deadline = Date.now() + BOUND_MS;
    for (;;) {
      const got = parse(this.buf);
      if (got !== undefined) {
        this.buf = this.buf.subarray(got[1]);
        return got[0];
      }
      if (this.ended || this.closed) throw new Error(`stream ${this.closed ? 'closed' : 'ended'} before ${what}; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${BOUND_MS} ms; have ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await within(left, new Promise<void>((r) => this.waiters.push(r)));
    }
  }

  head(): Promise<ParsedHead> {
    return this.take('a response head', (b) => {
      const end = b.indexOf('\r\n\r\n');
      return end < 0 ? undefined : [parseHead(b.subarray(0, end).toString('latin1')), end + 4];
    });
  }

  bytes(n: number): Promise<Buffer> {
    return this.take(`${n} bytes`, (b) => (b.length >= n ? [Buffer.from(b.subarray(0, n)), n] : undefined));
  }
}

interface ParsedHead {
  statusLine: string;
  status: number;
  headers: Record<string, string>;
}

function parseHead(text: string): ParsedHead {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    if (c > 0) {
      const k = l.slice(0, c).trim().toLowerCase();
      const v = l.slice(c + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
  }
  return { statusLine, status: Number(statusLine.split(' ')[1]), headers };
}

interface H2Result {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
  error: Error | undefined;
  /** The response's DATA ended with END_STREAM (as opposed to a reset). */
  ended: boolean;
}

/** One HTTP/2 request that never rejects: whatever happened is in the result. Resolves when the stream closed. */
function h2exchange(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  opts: { body?: Buffer | Buffer[]; keepOpen?: boolean } = {},
): Promise<H2Result> {
  return new Promise((resolve) => {
    const r: H2Result = { status: undefined, headers: {}, body: Buffer.alloc(0), trailers: undefined, rstCode: undefined, error: undefined, ended: false };
    const chunks: Buffer[] = [];
    let s: http2.ClientHttp2Stream;
    try {
      s = session.request(headers, { endStream: opts.body === undefined && !opts.keepOpen });
    } catch (e) {
      r.error = e as Error;
      return resolve(r);
    }
    s.on('response', (h) => {
      r.headers = h;
      r.status = Number(h[':status']);
    });
    s.on('trailers', (t) => (r.trailers = t));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e) => (r.error = e));
    s.once('end', () => {
      r.ended = true;
      // A CONNECT the peer answered and ended: nothing more to send either.
      if (opts.keepOpen && !s.closed) s.close();
    });
    s.once('close', () => {
      r.body = Buffer.concat(chunks);
      r.rstCode = s.rstCode;
      resolve(r);
    });
    if (opts.body !== undefined) {
      const parts = Array.isArray(opts.body) ? opts.body : [opts.body];
      for (const p of parts) s.write(p);
      s.end();
    }
  });
}

/** Writes `total` bytes with backpressure until done or the stream closes; `progress.sent` counts what was written. */
async function pump(w: Duplex, total: number, closed: Promise<void>, progress: { sent: number }): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  while (progress.sent < total && !isClosed && !w.destroyed && !w.writableEnded) {
    const n = Math.min(chunk.length, total - progress.sent);
    let ok: boolean;
    try {
      ok = w.write(n === chunk.length ? chunk : chunk.subarray(0, n));
    } catch {
      break;
    }
    progress.sent += n;
    if (!ok) await Promise.race([new Promise((r) => w.once('drain', r)), closed]);
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ---- websocket framing (RFC 6455), enough for text, binary and close frames ------------------------------------

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const wsAccept = (key: string): string => createHash('sha1').update(key + WS_GUID).digest('base64');

function wsFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  let head: Buffer;
  if (len < 126) head = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ key[i % 4]!;
  return Buffer.concat([head, key, masked]);
}

interface WsFrame {
  opcode: number;
  payload: Buffer;
}

function parseWsFrame(b: Buffer): [WsFrame, number] | undefined {
  if (b.length < 2) return undefined;
  const opcode = b[0]! & 0x0f;
  const masked = (b[1]! & 0x80) !== 0;
  let len = b[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(b.readBigUInt64BE(2));
    off = 10;
  }
  const key = masked ? b.subarray(off, off + 4) : undefined;
  if (masked) off += 4;
  if (b.length < off + len) return undefined;
  const payload = Buffer.from(b.subarray(off, off + len));
  if (key) for (let i = 0; i < len; i++) payload[i]! ^= key[i % 4]!;
  return [{ opcode, payload }, off + len];
}

/** A websocket echo server: greets, echoes text as `echo:<text>` and binary as is, answers a close and ends. */
function websocketServer(seen: http.IncomingMessage[]): http.Server {
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required');
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push(req);
    socket.on('error', () => {});
    const key = String(req.headers['sec-websocket-key'] ?? '');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${wsAccept(key)}\r\n\r\n`);
    socket.write(wsFrame(1, Buffer.from('hello from server'), false));
    let buf = Buffer.from(head);
    const onData = (d?: Buffer) => {
      if (d) buf = Buffer.concat([buf, d]);
      for (let f = parseWsFrame(buf); f; f = parseWsFrame(buf)) {
        buf = buf.subarray(f[1]);
        const { opcode, payload } = f[0];
        if (opcode === 1) socket.write(wsFrame(1, Buffer.concat([Buffer.from('echo:'), payload]), false));
        else if (opcode === 2) socket.write(wsFrame(2, payload, false));
        else if (opcode === 8) {
          socket.end(wsFrame(8, payload, false));
          return;
        }
      }
    };
    socket.on('data', onData);
    onData();
  });
  return server;
}

// ---- the tests -----------------------------------------------------------------------------------------------

describe('waypoint proxy against hostile endpoints and clients', { timeout: 90_000 }, () => {
  let h: Harness;
  let client: MeshClient;
  const ownBackends = new Map<string, Backend>();

  before(async () => {
    h = await Harness.start();
    client = await MeshClient.dial(h);
    const cert = (sa: string) => h.issue(`spiffe://${TD}/ns/${APPS}/sa/${sa}`);
    const relay = async (name: string, host: number, sa: string, mode: 'relay' | 'refuse', http1: boolean) => {
      const be = new Backend(name, h.ip(host));
      ownBackends.set(name, be);
      if (http1) await be.startHttp1();
      await be.startHbone(await cert(sa), mode);
    };
    await relay('hostile-h', 20, 'hostile', 'relay', false);
    await relay('retry-a', 22, 'retry', 'relay', true);
    await relay('retry-b', 23, 'retry', 'relay', true);
    await relay('retry-bad', 24, 'retry', 'refuse', false);
    h.source.set(TYPE_ADDRESS, extraAddresses(h));
    const bound: Record<string, WaypointResource> = {};
    for (const name of Object.keys(EXTRA_SERVICES)) Object.assign(bound, extraBoundService(name));
    h.source.set(TYPE_WAYPOINT, bound);
    await eventually('this file’s Services at the waypoint', () => {
      const st = h.waypoint.state;
      return Object.entries(EXTRA_SERVICES).every(([, s]) => {
        const svc = st.serviceByVip(h.ip(s.vip));
        return svc !== undefined && st.boundService(svc) !== undefined && st.endpointsOf(svc).length === s.endpoints.length;
      });
    });
  });

  after(async () => {
    client?.close();
    await h?.close();
    await Promise.all([...ownBackends.values()].map((b) => b.close()));
  });

  const authority = (svc: string, port: number) => `${h.ip(EXTRA_SERVICES[svc]!.vip)}:${port}`;
  const hostOf = (svc: string, port: number) => (port === 80 ? fqdn(svc) : `${fqdn(svc)}:${port}`);
  /** The two ways to reach an endpoint: through its ztunnel (HBONE) and plain TCP. */
  const transports = () => [
    { svc: 'hostile', ip: h.ip(20), label: 'HBONE endpoint' },
    { svc: 'hostile-plain', ip: h.ip(21), label: 'plain-TCP endpoint' },
  ];

  /** Runs `fn` with `make()` listening on `port` of both hostile endpoints; always closes them. */
  async function withServers(port: number, make: () => net.Server, fn: () => Promise<void>): Promise<void> {
    const stops: (() => Promise<void>)[] = [];
    try {
      for (const t of transports()) stops.push(await serveOn(make(), t.ip, port));
      await fn();
    } finally {
      await Promise.all(stops.map((s) => s()));
    }
  }

  async function assertStillServes(what: string): Promise<void> {
    const r = await within(BOUND_MS, client.http1(h.authority('echo', 80), { path: `/still-serving/${encodeURIComponent(what)}` }));
    assert.equal(r?.status, 200, `the waypoint still serves after ${what}`);
  }

  describe('upstream responses no codec may forward', () => {
    it('answers 502 UPE for upstream statuses 099 and 600, to HTTP/1.1 and HTTP/2 clients, and keeps serving', async () => {
      const server = () =>
        rawHttpServer((s, path) => {
          const status = path.includes('/s099') ? '099 Odd' : '600 X';
          s.write(`HTTP/1.1 ${status}\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok`);
        });
      await withServers(8080, server, async () => {
        const mark = h.accessLog.length;
        const problems: string[] = [];
        for (const t of transports()) {
          for (const code of ['099', '600']) {
            const path = `/s${code}/${t.svc}`;
            const r1 = await within(BOUND_MS, client.http1(authority(t.svc, 80), { path: `${path}/h1`, headers: { host: fqdn(t.svc) } }));
            if (r1 === undefined) problems.push(`${t.label}, upstream ${code}, HTTP/1.1 client: no response within ${BOUND_MS} ms`);
            else {
              if (r1.status !== 502 || r1.body.toString() !== UPE_BODY)
                problems.push(`${t.label}, upstream ${code}, HTTP/1.1 client: ${r1.status} ${JSON.stringify(r1.body.toString())}`);
              else if (r1.headers['content-type'] !== 'text/plain') problems.push(`${t.label}, ${code}, h1: content-type ${r1.headers['content-type']}`);
            }
            const session = await client.h2session(authority(t.svc, 80));
            try {
              const r2 = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': `${path}/h2`, ':authority': fqdn(t.svc) }));
              if (r2 === undefined) problems.push(`${t.label}, upstream ${code}, HTTP/2 client: no response within ${BOUND_MS} ms`);
              else if (r2.status !== 502 || r2.body.toString() !== UPE_BODY)
                problems.push(`${t.label}, upstream ${code}, HTTP/2 client: ${r2.status} ${JSON.stringify(r2.body.toString())} rst=${r2.rstCode} ${r2.error?.message ?? ''}`);
            } finally {
              session.close();
            }
          }
        }
        assert.deepEqual(problems, []);
        for (const t of transports()) {
          for (const code of ['099', '600']) {
            for (const [proto, suffix] of [
              ['HTTP/1.1', 'h1'],
              ['HTTP/2', 'h2'],
            ] as const) {
              const line = await eventually(`access-log line for ${code} ${suffix} via ${t.label}`, () => h.logged(`"GET /s${code}/${t.svc}/${suffix} ${proto}"`, mark)[0]);
              assert.match(line, UPE_LOG, line);
            }
          }
        }
      });
      await assertStillServes('invalid upstream statuses');
    });

    it('answers 502 UPE for an upstream response that is not HTTP', async () => {
      const server = () => rawHttpServer((s) => s.end('HELLO THERE\r\n\r\n'));
      await withServers(8080, server, async () => {
        const mark = h.accessLog.length;
        for (const t of transports()) {
          const r1 = await within(BOUND_MS, client.http1(authority(t.svc, 80), { path: `/garbage/${t.svc}/h1`, headers: { host: fqdn(t.svc) } }));
          assert.ok(r1, `${t.label}: a response within ${BOUND_MS} ms`);
          assert.equal(r1.status, 502, `${t.label}, HTTP/1.1 client`);
          assert.equal(r1.body.toString(), UPE_BODY);
          const session = await client.h2session(authority(t.svc, 80));
          try {
            const r2 = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': `/garbage/${t.svc}/h2`, ':authority': fqdn(t.svc) }));
            assert.ok(r2, `${t.label}: an HTTP/2 response within ${BOUND_MS} ms`);
            assert.equal(r2.status, 502, `${t.label}, HTTP/2 client`);
            assert.equal(r2.body.toString(), UPE_BODY);
          } finally {
            session.close();
          }
          for (const [path, proto] of [
            [`/garbage/${t.svc}/h1`, 'HTTP/1.1'],
            [`/garbage/${t.svc}/h2`, 'HTTP/2'],
          ] as const) {
            const line = await eventually(`access-log line for ${path}`, () => h.logged(`"GET ${path} ${proto}"`, mark)[0]);
            assert.match(line, UPE_LOG, line);
          }
        }
      });
      await assertStillServes('garbage from an endpoint');
    });

    it('aborts the downstream response when the endpoint closes mid-body (UC after the response started)', async () => {
      // Promises 100 bytes, sends 10, closes.
      const server = () => rawHttpServer((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: text/plain\r\n\r\n0123456789'));
      await withServers(8080, server, async () => {
        const mark = h.accessLog.length;
        for (const t of transports()) {
          // HTTP/1.1, on the raw CONNECT stream so a hang and a short body are both visible.
          const stream = await client.tunnel(authority(t.svc, 80));
          try {
            stream.write(`GET /mid-body/${t.svc}/h1 HTTP/1.1\r\nhost: ${fqdn(t.svc)}\r\n\r\n`);
            const got = await within(BOUND_MS, drain(stream));
            assert.ok(got, `${t.label}: the HTTP/1.1 client's CONNECT stream closes (it was left hanging)`);
            const text = got.data.toString('latin1');
            if (text.length > 0) {
              assert.match(text, /^HTTP\/1\.1 200 /, `${t.label}: ${JSON.stringify(text)}`);
              const body = text.slice(text.indexOf('\r\n\r\n') + 4);
              assert.ok(body.length < 100, `${t.label}: the response is cut short (${body.length} body bytes)`);
            }
          } finally {
            stream.destroy();
          }

          const session = await client.h2session(authority(t.svc, 80));
          try {
            const r = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': `/mid-body/${t.svc}/h2`, ':authority': fqdn(t.svc) }));
            assert.ok(r, `${t.label}: the HTTP/2 stream closes`);
            assert.equal(r.status, 200, `${t.label}: the response had started`);
            // Envoy resets the downstream stream (RST_STREAM; its codec's default reset code is NO_ERROR).
            assert.ok(r.body.length < 100, `${t.label}: cut short (${r.body.length} bytes, rst ${r.rstCode})`);
          } finally {
            session.close();
          }
          for (const [suffix, proto] of [
            ['h1', 'HTTP/1.1'],
            ['h2', 'HTTP/2'],
          ] as const) {
            const line = await eventually(`access-log line for ${t.label} ${suffix}`, () => h.logged(`"GET /mid-body/${t.svc}/${suffix} ${proto}"`, mark)[0]);
            assert.match(line, / 200 UC upstream_reset_after_response_started\{connection_termination\} /, line);
          }
        }
      });
      await assertStillServes('an endpoint closing mid-body');
    });
  });

  describe('retries', () => {
    /**
     * Sends `n` requests one at a time to a Service with two good endpoints and one that fails every connection;
     * returns what went wrong. A request may go to the failing endpoint first; Envoy's default route then retries it
     * (reset-before-request, twice, previous-hosts predicate), and the body must go along whole.
     */
    async function retryRound(svc: string, n: number, withBody: (i: number) => Buffer | undefined): Promise<{ problems: string[]; badAttempts: number }> {
      const good = [ownBackends.get('retry-a')!, ownBackends.get('retry-b')!];
      const bad = ownBackends.get('retry-bad')!;
      const problems: string[] = [];
      let badAttempts = 0;
      for (let i = 0; i < n; i++) {
        const body = withBody(i);
        const path = `/retry/${svc}/${body ? 'post' : 'get'}/${i}`;
        const badBefore = bad.connects.length;
        const r = await within(
          BOUND_MS,
          client.http1(authority(svc, 80), { method: body ? 'POST' : 'GET', path, headers: { host: fqdn(svc), ...(body ? { 'content-type': 'application/octet-stream' } : {}) }, body }),
        );
        const tried = bad.connects.length - badBefore;
        badAttempts += tried;
        if (r === undefined) {
          problems.push(`${path}: no response within ${BOUND_MS} ms (CONNECTs refused by retry-bad for it: ${tried})`);
          continue;
        }
        if (r.status !== 200) {
          problems.push(`${path}: ${r.status} ${JSON.stringify(r.body.toString())} (CONNECTs refused by retry-bad for it: ${tried})`);
          continue;
        }
        const seen = good.flatMap((b) => b.requests).filter((q) => q.url === path);
        if (seen.length !== 1) problems.push(`${path}: the endpoints saw it ${seen.length} times`);
        if (body) {
          if (!r.body.equals(body)) problems.push(`${path}: echoed body differs (${r.body.length} of ${body.length} bytes)`);
          if (seen[0] && (seen[0].bodyLength !== body.length || seen[0].bodySha256 !== sha256(body)))
            problems.push(`${path}: the endpoint got ${seen[0].bodyLength} bytes, not the ${body.length} sent (or different ones)`);
        } else if (seen[0] && seen[0].bodyLength !== 0) problems.push(`${path}: a GET arrived with a ${seen[0].bodyLength}-byte body`);
      }
      return { problems, badAttempts };
    }

    it('carries the request body through retries when one endpoint refuses the CONNECT, and every request succeeds', async () => {
      const { problems, badAttempts } = await retryRound('retry', 45, (i) => (i % 3 === 2 ? undefined : randomBytes(100 + ((i * 997) % 20_000))));
      assert.ok(badAttempts > 0, 'the refusing endpoint was picked at least once (else nothing was retried)');
      assert.deepEqual(problems, [], `with Envoy's previous-hosts retry predicate a retry avoids the endpoint that just failed (${badAttempts} refused CONNECTs)`);
    });

    it('carries the request body through retries when one endpoint refuses connections, and every request succeeds', async () => {
      const { problems } = await retryRound('retry-dead', 45, (i) => (i % 3 === 2 ? undefined : randomBytes(100 + ((i * 997) % 20_000))));
      assert.deepEqual(problems, [], 'with Envoy’s previous-hosts retry predicate a retry avoids the endpoint that just failed');
    });

    it('sends a body over 1 MiB when the first pick fails at connect (nothing of the body was read yet)', async () => {
      const bad = ownBackends.get('retry-bad')!;
      const good = [ownBackends.get('retry-a')!, ownBackends.get('retry-b')!];
      let sawConnectFailure = false;
      for (let i = 0; i < 25 && !sawConnectFailure; i++) {
        const body = randomBytes((1 << 20) + 300_000);
        const path = `/retry-big/${i}`;
        const badBefore = bad.connects.length;
        const r = await within(BOUND_MS * 2, client.http1(authority('retry', 80), { method: 'POST', path, headers: { host: fqdn('retry') }, body }));
        const tried = bad.connects.length - badBefore;
        assert.ok(r, `${path}: a response (refused CONNECTs first: ${tried})`);
        assert.equal(r.status, 200, `${path}: ${r.status} ${r.body.toString().slice(0, 200)} after ${tried} refused CONNECTs`);
        assert.ok(r.body.equals(body), `${path}: body echoed intact (${r.body.length} of ${body.length} bytes)`);
        const seen = good.flatMap((b) => b.requests).filter((q) => q.url === path);
        assert.equal(seen.length, 1, `${path}: delivered once`);
        assert.equal(seen[0]!.bodySha256, sha256(body), `${path}: the endpoint got the body byte for byte`);
        if (tried > 0) sawConnectFailure = true;
      }
      assert.ok(sawConnectFailure, 'one of the requests had its first pick fail at connect');
    });
  });

  describe('early responses', () => {
    /** Answers 413 to /upload as soon as the head is in and never reads the body; 200 `ok` to anything else. */
    const earlyServer = () =>
      rawHttpServer((s, path) => {
        if (path.startsWith('/upload')) {
          s.write('HTTP/1.1 413 Payload Too Large\r\ncontent-type: text/plain\r\ncontent-length: 8\r\nconnection: close\r\n\r\ntoo big\n');
          // Paused by rawHttpServer: the 8 MB stay unread; the connection stays open until the test ends.
        } else s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
    const UPLOAD = 8_000_000;

    it('gives an HTTP/1.1 client the 413 and closes its connection instead of leaving the upload blocked', async () => {
      await withServers(8080, earlyServer, async () => {
        const mark = h.accessLog.length;
        for (const t of transports()) {
          const stream = await client.tunnel(authority(t.svc, 80));
          const reader = new ByteReader(stream);
          try {
            stream.write(`POST /upload/${t.svc} HTTP/1.1\r\nhost: ${fqdn(t.svc)}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${UPLOAD}\r\n\r\n`);
            const progress = { sent: 0 };
            void pump(stream, UPLOAD, reader.whenClosed, progress);
            const head = await reader.head();
            assert.equal(head.status, 413, `${t.label}: ${head.statusLine}`);
            const closed = await within(BOUND_MS, reader.whenClosed.then(() => true));
            assert.ok(closed, `${t.label}: the CONNECT stream closes after the 413 (the client had sent ${progress.sent} of ${UPLOAD} bytes)`);
          } finally {
            stream.destroy();
          }
          const line = await eventually(`access-log line for ${t.label}`, () => h.logged(`"POST /upload/${t.svc} HTTP/1.1"`, mark)[0]);
          assert.match(line, / 413 - via_upstream /, line);
        }
      });
      await assertStillServes('an early response');
    });

    it('gives an HTTP/2 client the 413, ends or resets the stream with NO_ERROR, and keeps the session usable', async () => {
      await withServers(8080, earlyServer, async () => {
        for (const t of transports()) {
          const session = await client.h2session(authority(t.svc, 80));
          try {
            const s = session.request({ ':method': 'POST', ':path': `/upload/${t.svc}/h2`, ':authority': fqdn(t.svc), 'content-length': String(UPLOAD) }, { endStream: false });
            let status: number | undefined;
            s.on('response', (hd) => (status = Number(hd[':status'])));
            s.on('error', () => {});
            s.resume();
            // Node's client keeps a stream reset with NO_ERROR open while its own writes are pending (it waits for
            // the writable side to finish): the response's end and the reset code are what the server controls.
            const closed = new Promise<void>((r) => {
              s.once('end', () => r());
              s.once('close', () => r());
            });
            const progress = { sent: 0 };
            void pump(s, UPLOAD, closed, progress);
            const done = await within(BOUND_MS, closed.then(() => true));
            if (!done) s.close(http2.constants.NGHTTP2_CANCEL);
            assert.ok(done, `${t.label}: the stream closes after the ${status ?? 'missing'} response (the client had sent ${progress.sent} of ${UPLOAD} bytes)`);
            assert.equal(status, 413, t.label);
            await eventually('the reset (or end) of the stream', () => (s.rstCode !== undefined ? true : undefined));
            assert.equal(s.rstCode, http2.constants.NGHTTP2_NO_ERROR, `${t.label}: closed with NO_ERROR (got ${s.rstCode})`);
            s.close();
            const next = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': `/after-upload/${t.svc}`, ':authority': fqdn(t.svc) }));
            assert.equal(next?.status, 200, `${t.label}: the session serves another request (${next?.error?.message ?? ''})`);
            assert.equal(next?.body.toString(), 'ok');
          } finally {
            session.close();
          }
        }
      });
    });
  });

  describe('CONNECT and upgrades', () => {
    it('refuses an HTTP/2 CONNECT on an HTTP2 port with 403 upgrade_failed, opening nothing upstream', async () => {
      const be = h.backend('grpcA');
      const before = { connects: be.connects.length, requests: be.requests.length };
      const mark = h.accessLog.length;
      const session = await client.h2session(h.authority('grpc', 50051));
      try {
        for (let i = 0; i < 3; i++) {
          const r = await within(BOUND_MS, h2exchange(session, { ':method': 'CONNECT', ':authority': `${fqdn('grpc')}:50051` }, { keepOpen: true }));
          assert.ok(r, 'the CONNECT stream is answered and closes');
          assert.equal(r.status, 403, `CONNECT ${i}: ${r.error?.message ?? ''}`);
          assert.equal(r.body.length, 0, 'empty body');
          assert.equal(r.headers.server, 'istio-envoy');
        }
        assert.equal(be.connects.length, before.connects, 'no HBONE CONNECT to the endpoint');
        assert.equal(be.requests.length, before.requests, 'nothing reached the endpoint');
        const lines = await eventually('three access-log lines', () => {
          const l = h.logged('"CONNECT ', mark);
          return l.length >= 3 ? l : undefined;
        });
        for (const l of lines) assert.match(l, / 403 - upgrade_failed /, l);
        const ok = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': '/after-connect', ':authority': `${fqdn('grpc')}:50051` }));
        assert.equal(ok?.status, 200, 'the session still serves');
      } finally {
        session.close();
      }
    });

    it('refuses an HTTP/1.1 CONNECT with 403 and closes the connection', async () => {
      const mark = h.accessLog.length;
      const before = h.backend('echoA').requests.length + h.backend('echoB').requests.length;
      const stream = await client.tunnel(h.authority('echo', 80));
      try {
        stream.write('CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n');
        const got = await within(BOUND_MS, drain(stream));
        assert.ok(got, 'the connection closes');
        assert.match(got.data.toString('latin1'), /^HTTP\/1\.1 403 /, JSON.stringify(got.data.toString('latin1')));
      } finally {
        stream.destroy();
      }
      assert.equal(h.backend('echoA').requests.length + h.backend('echoB').requests.length, before, 'nothing reached an endpoint');
      const line = await eventually('access-log line', () => h.logged('"CONNECT ', mark)[0]);
      assert.match(line, / 403 - upgrade_failed /, line);
    });

    it('refuses Upgrade: foo with 403 upgrade_failed', async () => {
      const mark = h.accessLog.length;
      const before = h.backend('echoA').requests.length + h.backend('echoB').requests.length;
      const stream = await client.tunnel(h.authority('echo', 80));
      const reader = new ByteReader(stream);
      try {
        stream.write(`GET /upgrade-foo HTTP/1.1\r\nhost: ${fqdn('echo')}\r\nconnection: Upgrade\r\nupgrade: foo\r\n\r\n`);
        const head = await reader.head();
        assert.equal(head.status, 403, head.statusLine);
        assert.equal(head.headers['content-length'] ?? '0', '0', 'empty body');
      } finally {
        stream.destroy();
      }
      assert.equal(h.backend('echoA').requests.length + h.backend('echoB').requests.length, before, 'nothing reached an endpoint');
      const line = await eventually('access-log line', () => h.logged('"GET /upgrade-foo HTTP/1.1"', mark)[0]);
      assert.match(line, / 403 - upgrade_failed /, line);
    });

    it('serves an Upgrade: h2c request as plain HTTP/1.1, without the upgrade headers (Envoy ignores h2c upgrades)', async () => {
      // envoy source/common/http/http1/codec_impl.cc ConnectionImpl::onHeadersCompleteImpl: "Ignore h2c upgrade
      // requests until we support them" — Upgrade: h2c is removed, `upgrade` and `http2-settings` dropped from
      // Connection, HTTP2-Settings removed, and the request goes on as an ordinary one. Only other upgrade types
      // reach the HCM's upgrade check (403 upgrade_failed).
      const mark = h.accessLog.length;
      const stream = await client.tunnel(h.authority('echo', 80));
      const reader = new ByteReader(stream);
      try {
        stream.write(
          `GET /upgrade-h2c HTTP/1.1\r\nhost: ${fqdn('echo')}\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
        );
        const head = await reader.head();
        const line = await eventually('access-log line', () => h.logged('"GET /upgrade-h2c HTTP/1.1"', mark)[0]);
        assert.equal(head.status, 200, `${head.statusLine} (access log: ${line})`);
        assert.notEqual(head.status, 101, 'no switch to h2c');
      } finally {
        stream.destroy();
      }
      const seen = [h.backend('echoA'), h.backend('echoB')].flatMap((b) => b.requests).find((q) => q.url === '/upgrade-h2c');
      assert.ok(seen, 'the endpoint got the request');
      assert.equal(seen.headers.upgrade, undefined);
      assert.equal(seen.headers['http2-settings'], undefined);
    });
  });

  describe('websocket', () => {
    it('splices a websocket through after the endpoint’s 101, both ways, and logs a 101 line after close', async () => {
      const seen: http.IncomingMessage[] = [];
      await withServers(8080, () => websocketServer(seen), async () => {
        for (const t of transports()) {
          const mark = h.accessLog.length;
          const path = `/ws/${t.svc}`;
          const stream = await client.tunnel(authority(t.svc, 80));
          const reader = new ByteReader(stream);
          try {
            const key = randomBytes(16).toString('base64');
            stream.write(
              `GET ${path} HTTP/1.1\r\nhost: ${fqdn(t.svc)}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${key}\r\n\r\n`,
            );
            const head = await reader.head();
            assert.equal(head.status, 101, `${t.label}: ${head.statusLine}`);
            assert.equal(head.headers.upgrade?.toLowerCase(), 'websocket');
            assert.match(head.headers.connection ?? '', /upgrade/i);
            assert.equal(head.headers['sec-websocket-accept'], wsAccept(key), 'the endpoint’s accept key comes through');
            const frame = () => reader.take('a websocket frame', parseWsFrame);
            const greeting = await frame();
            assert.equal(greeting.opcode, 1);
            assert.equal(greeting.payload.toString(), 'hello from server', 'server → client');
            for (const text of ['one', 'two', 'ü-three']) {
              stream.write(wsFrame(1, Buffer.from(text), true));
              const echo = await frame();
              assert.equal(echo.payload.toString(), `echo:${text}`, 'client → server → client');
            }
            const big = randomBytes(200_000);
            stream.write(wsFrame(2, big, true));
            const bigEcho = await frame();
            assert.equal(bigEcho.opcode, 2);
            assert.ok(bigEcho.payload.equals(big), `a 200 kB binary message intact (${bigEcho.payload.length} bytes back)`);
            const code = Buffer.from([0x03, 0xe8]);
            stream.write(wsFrame(8, code, true));
            const close = await frame();
            assert.equal(close.opcode, 8, 'the close handshake completes');
            assert.ok(await within(BOUND_MS, reader.whenClosed.then(() => true)), `${t.label}: the CONNECT stream closes after the websocket closed`);
          } finally {
            stream.destroy();
          }
          const req = seen.at(-1)!;
          assert.equal(req.url, path);
          assert.equal(String(req.headers.upgrade).toLowerCase(), 'websocket', 'the endpoint saw the upgrade');
          assert.equal(req.headers['x-forwarded-proto'], 'http');
          const line = await eventually(`101 access-log line via ${t.label}`, () => h.logged(`"GET ${path} HTTP/1.1"`, mark)[0]);
          assert.match(line, / 101 - via_upstream /, line);
        }
      });
    });

    it('denies a websocket upgrade an AuthorizationPolicy denies: 403 RBAC, nothing reaches the endpoint', async () => {
      const seen: http.IncomingMessage[] = [];
      h.source.set(TYPE_WAYPOINT, { ...policy(APPS, 'ws-deny', 'DENY', [{ to: [{ operation: { paths: ['/ws-denied'] } }] }]), ...extraBoundService('hostile', ['apps/ws-deny']) });
      try {
        await h.waitForConfig(
          'ws-deny applied',
          (d) => d.policies.some((p: any) => p.name === 'ws-deny') && d.boundServices.some((s: any) => s.hostname === fqdn('hostile') && s.policies.includes('apps/ws-deny')),
        );
        await withServers(8080, () => websocketServer(seen), async () => {
          const mark = h.accessLog.length;
          const stream = await client.tunnel(authority('hostile', 80));
          const reader = new ByteReader(stream);
          try {
            stream.write(
              `GET /ws-denied HTTP/1.1\r\nhost: ${fqdn('hostile')}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
            );
            const head = await reader.head();
            assert.equal(head.status, 403, head.statusLine);
            const body = await reader.bytes(Number(head.headers['content-length'] ?? 19));
            assert.equal(body.toString(), 'RBAC: access denied');
          } finally {
            stream.destroy();
          }
          assert.equal(seen.length, 0, 'the endpoint saw no upgrade');
          const line = await eventually('access-log line', () => h.logged('"GET /ws-denied HTTP/1.1"', mark)[0]);
          assert.match(line, / 403 - rbac_access_denied_matched_policy\[ns\[apps\]-policy\[ws-deny\]-rule\[0\]\] /, line);
        });
      } finally {
        h.source.set(TYPE_WAYPOINT, extraBoundService('hostile'), [waypointResourceName('policy', APPS, 'ws-deny')]);
        await h.waitForConfig('ws-deny removed', (d) => !d.policies.some((p: any) => p.name === 'ws-deny'));
      }
    });
  });

  describe('trailers', () => {
    it('passes trailers of a non-gRPC HTTP/2 response to an HTTP/2 client and (chunked) to an HTTP/1.1 client', async () => {
      const h2server = () => {
        const server = http2.createServer();
        server.on('session', (s) => s.on('error', () => {}));
        server.on('stream', (stream) => {
          stream.on('error', () => {});
          stream.resume();
          stream.on('end', () => {
            stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
            stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
            stream.end('body with trailers');
          });
        });
        return server;
      };
      await withServers(8081, h2server, async () => {
        for (const t of transports()) {
          const session = await client.h2session(authority(t.svc, 81));
          try {
            const r = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': '/trailers/h2', ':authority': hostOf(t.svc, 81) }));
            assert.ok(r);
            assert.equal(r.status, 200, t.label);
            assert.equal(r.body.toString(), 'body with trailers');
            assert.equal(r.trailers?.['x-checksum'], 'abc123', `${t.label}: HTTP/2 client gets the trailer`);
          } finally {
            session.close();
          }
          const r1 = await within(BOUND_MS, client.http1(authority(t.svc, 81), { path: '/trailers/h1', headers: { host: hostOf(t.svc, 81), te: 'trailers' } }));
          assert.ok(r1);
          assert.equal(r1.status, 200, t.label);
          assert.equal(r1.body.toString(), 'body with trailers');
          assert.equal(r1.headers['transfer-encoding'], 'chunked', `${t.label}: chunked, so trailers can follow`);
          assert.equal(r1.trailers['x-checksum'], 'abc123', `${t.label}: HTTP/1.1 client gets the trailer`);
        }
      });
    });

    it('passes trailers of a chunked HTTP/1.1 response to an HTTP/2 client', async () => {
      const h1server = () =>
        http.createServer((req, res) => {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
            res.write('body');
            res.addTrailers({ 'x-checksum': 'def456' });
            res.end();
          });
        });
      await withServers(8080, h1server, async () => {
        for (const t of transports()) {
          const session = await client.h2session(authority(t.svc, 80));
          try {
            const r = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': '/h1-trailers', ':authority': fqdn(t.svc), te: 'trailers' }));
            assert.ok(r);
            assert.equal(r.status, 200);
            assert.equal(r.body.toString(), 'body');
            assert.equal(r.trailers?.['x-checksum'], 'def456', t.label);
          } finally {
            session.close();
          }
        }
      });
    });
  });

  describe('request targets', () => {
    it('proxies an absolute-form request target with its path, and its authority in place of Host', async () => {
      const mark = h.accessLog.length;
      const r = await within(BOUND_MS, client.http1(h.authority('echo', 80), { path: `http://${fqdn('echo')}/absolute/p?q=1`, headers: { host: 'ignored.example' } }));
      assert.ok(r);
      assert.equal(r.status, 200);
      const seen = [h.backend('echoA'), h.backend('echoB')].flatMap((b) => b.requests).find((q) => q.url.startsWith('/absolute/p'));
      assert.ok(seen, 'the endpoint got it');
      assert.equal(seen.url, '/absolute/p?q=1', 'origin-form upstream');
      assert.equal(seen.headers.host, fqdn('echo'), 'RFC 9112 §3.2.2: the target’s authority replaces Host');
      const line = await eventually('access-log line', () => h.logged('"GET /absolute/p?q=1 HTTP/1.1"', mark)[0]);
      assert.ok(line.includes(` "${fqdn('echo')}" `), line);
    });

    it('answers OPTIONS * with 404 absolute_path_rejected', async () => {
      const mark = h.accessLog.length;
      const r = await within(BOUND_MS, client.http1(h.authority('echo', 80), { method: 'OPTIONS', path: '*' }));
      assert.ok(r);
      assert.equal(r.status, 404);
      assert.equal(r.body.length, 0);
      const line = await eventually('access-log line', () => h.logged('"OPTIONS * HTTP/1.1"', mark)[0]);
      assert.match(line, / 404 - absolute_path_rejected /, line);
    });
  });

  describe('header limits', () => {
    /** HTTP/1.1 endpoint that accepts large heads, and answers /big-response with a 20 KiB header. */
    const bigHeaderServer = (seen: http.IncomingHttpHeaders[]) => () =>
      http.createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => {
        seen.push(req.headers);
        req.resume();
        req.on('end', () => {
          if (req.url === '/big-response') res.writeHead(200, { 'x-big-response': 'r'.repeat(20 * 1024) });
          else res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('ok');
        });
      });

    it('passes 20 KiB of request headers (HTTP/1.1 and HTTP/2 clients)', async () => {
      const seen: http.IncomingHttpHeaders[] = [];
      await withServers(8080, bigHeaderServer(seen), async () => {
        const big = 'a'.repeat(20 * 1024);
        const r = await within(BOUND_MS, client.http1(authority('hostile-plain', 80), { path: '/big-headers/h1', headers: { host: fqdn('hostile-plain'), 'x-big': big } }));
        assert.equal(r?.status, 200, `HTTP/1.1: ${r?.status} ${r?.body.toString()}`);
        assert.equal(seen.at(-1)?.['x-big'], big, 'the endpoint got the header whole');
        const session = await client.h2session(authority('hostile-plain', 80));
        try {
          const r2 = await within(BOUND_MS, h2exchange(session, { ':method': 'GET', ':path': '/big-headers/h2', ':authority': fqdn('hostile-plain'), 'x-big': big }));
          assert.equal(r2?.status, 200, `HTTP/2: ${r2?.status} ${r2?.body.toString()} ${r2?.error?.message ?? ''}`);
          assert.equal(seen.at(-1)?.['x-big'], big);
        } finally {
          session.close();
        }
      });
    });

    it('passes 20 KiB of response headers (Envoy’s limit is 60 KiB, not Node’s 16 KiB)', async () => {
      const seen: http.IncomingHttpHeaders[] = [];
      await withServers(8080, bigHeaderServer(seen), async () => {
        const mark = h.accessLog.length;
        const r = await within(BOUND_MS, client.http1(authority('hostile-plain', 80), { path: '/big-response', headers: { host: fqdn('hostile-plain') } }));
        const line = await eventually('access-log line', () => h.logged('"GET /big-response HTTP/1.1"', mark)[0]);
        assert.equal(r?.status, 200, `${r?.status} ${r?.body.toString()} — ${line}`);
        assert.equal(r?.headers['x-big-response'], 'r'.repeat(20 * 1024));
      });
    });

    it('answers 431 for request headers over 60 KiB, closes the connection, and counts it with DPE', async () => {
      const labels = { reporter: 'waypoint', destination_service: fqdn('hostile-plain'), response_code: '431', response_flags: 'DPE' };
      const before = await h.scrape();
      const mark = h.accessLog.length;
      const stream = await client.tunnel(authority('hostile-plain', 80));
      try {
        stream.write(`GET /huge-headers HTTP/1.1\r\nhost: ${fqdn('hostile-plain')}\r\nx-huge: ${'h'.repeat(61 * 1024)}\r\n\r\n`);
        const got = await within(BOUND_MS, drain(stream));
        assert.ok(got, 'the connection closes');
        const text = got.data.toString('latin1');
        assert.match(text, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/, JSON.stringify(text.slice(0, 200)));
        assert.ok(text.endsWith('\r\n\r\nRequest Header Fields Too Large'), JSON.stringify(text));
      } finally {
        stream.destroy();
      }
      await eventually('431 counted', async () => metricSum(await h.scrape(), 'istio_requests_total', labels) - metricSum(before, 'istio_requests_total', labels) === 1);
      const line = await eventually('access-log line', () => h.logged(' 431 ', mark)[0]);
      assert.match(line, / 431 DPE /, line);
    });
  });

  describe('gRPC', () => {
    it('counts request and response messages however they are chunked', async () => {
      const requestMessages = [Buffer.from('first'), Buffer.alloc(0), randomBytes(40_000)];
      const responseMessages = [Buffer.from('reply one'), randomBytes(3000)];
      const received: Buffer[] = [];
      const grpcServer = () => {
        const server = http2.createServer();
        server.on('session', (s) => s.on('error', () => {}));
        server.on('stream', (stream) => {
          stream.on('error', () => {});
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            received.push(Buffer.concat(chunks));
            stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
            stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
            const out = Buffer.concat(responseMessages.map(grpcFrame));
            // The first message and three bytes of the second's prefix, then the rest once that was flushed.
            const cut = 5 + responseMessages[0]!.length + 3;
            stream.write(out.subarray(0, cut), () => stream.end(out.subarray(cut)));
          });
        });
        return server;
      };
      await withServers(8081, grpcServer, async () => {
        const labels = { reporter: 'waypoint', destination_service: fqdn('hostile'), request_protocol: 'grpc' };
        const base = await h.scrape();
        const delta = (text: string, name: string) => metricSum(text, name, labels) - metricSum(base, name, labels);
        const session = await client.h2session(authority('hostile', 81));
        try {
          const body = Buffer.concat(requestMessages.map(grpcFrame));
          // Three writes that cut through the second message's prefix and the third's body.
          const parts = [body.subarray(0, 12), body.subarray(12, 20_000), body.subarray(20_000)];
          const r = await within(
            BOUND_MS,
            h2exchange(session, { ':method': 'POST', ':path': '/test.Count/Many', ':authority': hostOf('hostile', 81), 'content-type': 'application/grpc', te: 'trailers' }, { body: parts }),
          );
          assert.ok(r);
          assert.equal(r.status, 200, r.error?.message);
          assert.ok(r.body.equals(Buffer.concat(responseMessages.map(grpcFrame))), 'response messages intact');
          assert.equal(r.trailers?.['grpc-status'], '0');
          assert.ok(received.at(-1)?.equals(body), 'request messages intact at the endpoint');
        } finally {
          session.close();
        }
        const after = await eventually('request counted', async () => {
          const text = await h.scrape();
          return delta(text, 'istio_requests_total') === 1 ? text : undefined;
        });
        assert.equal(delta(after, 'istio_request_messages_total'), 3, 'istio_request_messages_total');
        assert.equal(delta(after, 'istio_response_messages_total'), 2, 'istio_response_messages_total');
      });
    });
  });

  it('leaves the waypoint serving, with no process warnings', async () => {
    await assertStillServes('everything above');
    assert.deepEqual(
      h.warnings.map((w) => `${w.name}: ${w.message}`),
      [],
    );
  });
});
