// The HBONE server's bounds over real TLS/HTTP2 on loopback: an idle session (PINGs flowing, no stream) gets GOAWAY
// after the idle timeout while a session with a stream stays; after GOAWAY a peer that never closes its end loses the
// connection once its last stream is done; the per-peer and total caps refuse the excess at accept, log once per cap
// however many are refused, and keep serving the admitted connections.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import { dialHbone, openTunnel } from '../../src/hbone/client.js';
import { HboneConnectionLimiter } from '../../src/hbone/limits.js';
import { destroySession } from '../../src/hbone/session.js';
import { SERVER_ID, type Mesh, type TestServer, type Upstream, eventually, mesh, startServer, upstream } from './fixtures.js';

let m: Mesh;
let echo: Upstream;
const servers: TestServer[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const sockets: tls.TLSSocket[] = [];

before(async () => {
  m = await mesh();
  echo = await upstream();
});

after(async () => {
  for (const s of sessions) destroySession(s);
  for (const s of sockets) s.destroy();
  for (const s of servers) await s.close();
  await echo.close();
});

async function serve(opts: Parameters<typeof startServer>[1]): Promise<TestServer> {
  const srv = await startServer(m.server, opts);
  servers.push(srv);
  return srv;
}

async function dial(port: number, sourceAddress?: string): Promise<http2.ClientHttp2Session> {
  const s = await dialHbone({
    destination: { address: '127.0.0.1', port },
    certificate: m.client,
    expectedIdentities: [SERVER_ID],
    ...(sourceAddress ? { sourceAddress } : {}),
    connectTimeoutMs: 5000,
  });
  sessions.push(s);
  return s;
}

/** Writes `text` into a tunnel to the echo server and waits for it to come back. */
async function roundTrip(stream: http2.ClientHttp2Stream, text: string): Promise<void> {
  const back = new Promise<void>((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes(text)) {
        stream.off('data', onData);
        resolve();
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
  stream.write(text);
  await back;
}

const closed = (s: http2.ClientHttp2Session) => new Promise<void>((r) => (s.closed || s.destroyed ? r() : s.once('close', () => r())));

/**
 * An HTTP/2 client whose TCP connection never closes from its side: Node's client ends its socket after GOAWAY once
 * its streams are done, so this one runs over a wrapper that keeps the TLS socket open (a lingering or hostile peer).
 */
class KeepOpen extends Duplex {
  constructor(private readonly socket: tls.TLSSocket) {
    super();
    socket.on('data', (d: Buffer) => {
      if (!this.push(d)) socket.pause();
    });
    socket.on('end', () => this.push(null));
  }
  override _read(): void {
    this.socket.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }
  override _final(cb: () => void): void {
    cb(); // the whole point: no FIN
  }
  override _destroy(error: Error | null, cb: (e?: Error | null) => void): void {
    cb(error);
  }
}

async function keepOpenClient(port: number): Promise<http2.ClientHttp2Session> {
  // allowHalfOpen: the server's FIN must not end our side (Node's TLS socket takes it, its typings do not say so).
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    host: '127.0.0.1',
    port,
    key: m.client.keyPem,
    cert: m.client.chainPem.join(''),
    ca: m.client.rootPems,
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
    allowHalfOpen: true,
  };
  const socket = tls.connect(options);
  sockets.push(socket);
  socket.on('error', () => {});
  await new Promise((r) => socket.once('secureConnect', r));
  const session = http2.connect('http://127.0.0.1', { createConnection: () => new KeepOpen(socket) });
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

test('a session without streams gets GOAWAY after the idle timeout, PINGs or not; one with a stream stays', async () => {
  const srv = await serve({ idleTimeoutMs: 400, keepalive: { intervalMs: 100, timeoutMs: 2000 } });
  const idle = await dial(srv.port);
  const busy = await dial(srv.port);
  const tunnel = await openTunnel(busy, { target: `127.0.0.1:${echo.port}` });
  let goaway = false;
  idle.once('goaway', () => (goaway = true));
  await eventually('the idle session closed', () => idle.closed || idle.destroyed, { timeoutMs: 5000 });
  assert.ok(goaway, 'closed with GOAWAY');
  // The busy session is older than the timeout too, and keeps working.
  await roundTrip(tunnel, 'still here');
  assert.equal(srv.server.sessionCount, 1);
  // Its stream done, it becomes idle like the other.
  tunnel.end();
  await closed(busy);
  await eventually('no session left on the server', () => srv.server.sessionCount === 0, { timeoutMs: 5000 });
});

test('after GOAWAY the connection closes once its last stream is done, though the peer keeps its end open', async () => {
  const srv = await serve({ idleTimeoutMs: 0 });
  const withStream = await keepOpenClient(srv.port);
  await keepOpenClient(srv.port); // one without streams
  const stream = withStream.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` });
  await new Promise((r) => stream.once('response', r));
  await roundTrip(stream, 'before');
  await eventually('both sessions up', () => srv.server.sessionCount === 2);
  const goaway = new Promise((r) => withStream.once('goaway', r));
  srv.server.drain();
  await goaway;
  await eventually('the session without streams closed', () => srv.server.sessionCount === 1, { timeoutMs: 5000 });
  // The open stream is served to its end.
  await roundTrip(stream, 'after goaway');
  stream.end();
  await eventually('the last session closed, socket included', () => srv.server.sessionCount === 0, { timeoutMs: 5000 });
});

test('per-peer and total caps refuse the excess at accept, log once per cap, and keep serving the others', async () => {
  const warnings: string[] = [];
  const limiter = new HboneConnectionLimiter({ maxConnections: 3, maxConnectionsPerPeer: 2 }, (w) => warnings.push(w));
  const srv = await serve({ limiter, idleTimeoutMs: 0 });
  const a1 = await dial(srv.port, '127.0.0.2');
  await dial(srv.port, '127.0.0.2');
  await assert.rejects(dial(srv.port, '127.0.0.2'));
  const b1 = await dial(srv.port, '127.0.0.3');
  await assert.rejects(dial(srv.port, '127.0.0.4'));
  // A flood from the capped peer and from new peers: refused, and no more log lines.
  const flood = await Promise.allSettled([...Array(20)].map((_, i) => dial(srv.port, i % 2 ? '127.0.0.2' : `127.0.0.${10 + i}`)));
  assert.ok(flood.every((r) => r.status === 'rejected'), 'every connection over a cap is refused');
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0]!, /^refusing HBONE connection from 127\.0\.0\.2: 2 connections open from this peer, the limit \(HBONE_MAX_CONNECTIONS_PER_PEER\)$/);
  assert.match(warnings[1]!, /^refusing HBONE connection from 127\.0\.0\.4: 3 connections open, the limit \(HBONE_MAX_CONNECTIONS\)$/);
  // The admitted ones still carry streams.
  for (const s of [a1, b1]) await roundTrip(await openTunnel(s, { target: `127.0.0.1:${echo.port}` }), 'served');
  assert.equal(limiter.open, 3);
  // A closed connection frees its place.
  destroySession(a1);
  await eventually('a place freed', () => limiter.open === 2);
  const again = await dial(srv.port, '127.0.0.2');
  await roundTrip(await openTunnel(again, { target: `127.0.0.1:${echo.port}` }), 'admitted again');
});
