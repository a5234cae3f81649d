import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { HboneStatusError, dialHbone, openTunnel } from '../../src/hbone/client.js';
import type { HboneRequest } from '../../src/hbone/server.js';
import { destroySession } from '../../src/hbone/session.js';
import { CLIENT_ID, SERVER_ID, type Mesh, type TestServer, type Upstream, eventually, mesh, readAll, startServer, upstream } from './fixtures.js';

let m: Mesh;
let srv: TestServer;
let echo: Upstream;
let session: http2.ClientHttp2Session;

before(async () => {
  m = await mesh();
  echo = await upstream();
  // Short PINGs: the hostile-client test relies on them to reap a session whose peer vanished mid-transfer.
  srv = await startServer(m.server, { keepalive: { intervalMs: 200, timeoutMs: 1000 } });
  session = await dial(srv.port);
});

after(async () => {
  destroySession(session);
  await srv.close();
  await echo.close();
});

function dial(port: number) {
  return dialHbone({
    destination: { address: '127.0.0.1', port },
    certificate: m.client,
    expectedIdentities: [SERVER_ID],
  });
}

const echoTarget = () => ({ address: '127.0.0.1', port: echo.port });

test('1 byte through CONNECT comes back, and the stream is accounted', async () => {
  const statsP = srv.nextStats();
  const stream = await openTunnel(session, { target: echoTarget() });
  stream.end(Buffer.from([42]));
  const got = await readAll(stream);
  assert.deepEqual([...got], [42]);
  const s = await statsP;
  assert.equal(s.status, 200);
  assert.equal(s.bytesReceived, 1);
  assert.equal(s.bytesSent, 1);
  assert.equal(s.srcIdentity, CLIENT_ID);
  assert.equal(s.request?.dstIdentity, SERVER_ID);
  assert.equal(s.error, undefined);
  assert.ok(s.durationMs >= 0);
});

test('10 MB echo arrives intact in both directions', async () => {
  const payload = randomBytes(10 * 1024 * 1024);
  const statsP = srv.nextStats();
  const stream = await openTunnel(session, { target: echoTarget() });
  const received = readAll(stream);
  // Write in chunks, respecting backpressure like a real application.
  for (let off = 0; off < payload.length; off += 256 * 1024) {
    if (!stream.write(payload.subarray(off, off + 256 * 1024))) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  const got = await received;
  assert.equal(got.length, payload.length);
  assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  const s = await statsP;
  assert.equal(s.bytesReceived, payload.length);
  assert.equal(s.bytesSent, payload.length);
});

test('half-close: the client ends its side and still gets the reply', async () => {
  // The upstream replies only after the client's FIN, then closes: needs half-close carried end to end.
  const counter = await upstream((s) => {
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`got ${n} bytes`));
  });
  try {
    const stream = await openTunnel(session, { target: { address: '127.0.0.1', port: counter.port } });
    stream.write('hello ');
    stream.end('world');
    assert.equal((await readAll(stream)).toString(), 'got 11 bytes');
  } finally {
    await counter.close();
  }
});

test('CONNECT headers reach the hook parsed; :authority is bracketed for IPv6', async () => {
  let seen: HboneRequest | undefined;
  const s2 = await startServer(m.server, {
    onConnect: (req) => {
      seen = req;
      return { status: 503, error: 'inspected' };
    },
  });
  try {
    const sess = await dial(s2.port);
    await assert.rejects(
      openTunnel(sess, {
        target: { address: 'fd00::2', port: 8080 },
        forwardedFor: { address: '10.1.2.3', port: 45678 },
        forwardedHost: 'reviews.default.svc.cluster.local',
        baggage: 'k8s.namespace.name=default,service.name=reviews%20v1',
      }),
      /http status: 503/,
    );
    sess.destroy();
    assert.ok(seen);
    assert.equal(seen.authority, '[fd00::2]:8080');
    assert.deepEqual(seen.target, { host: 'fd00::2', port: 8080 });
    assert.deepEqual(seen.forwarded, { for: '10.1.2.3:45678', host: 'reviews.default.svc.cluster.local' });
    assert.equal(seen.baggage.get('service.name'), 'reviews v1');
    assert.match(seen.traceparent!.traceId, /^[0-9a-f]{32}$/);
    assert.equal(seen.srcIdentity, CLIENT_ID);
    assert.equal(seen.peer.address, '127.0.0.1');
    assert.equal(seen.local.port, s2.port);
  } finally {
    await s2.close();
  }
});

test('400 for a non-CONNECT method and for an unparsable :authority', async () => {
  const statsP = srv.nextStats();
  const get = session.request({ ':method': 'GET', ':path': '/' });
  const status = await new Promise<number>((r) => get.once('response', (h) => r(Number(h[':status']))));
  get.resume();
  assert.equal(status, 400);
  assert.equal((await statsP).error, 'expected method CONNECT, got GET');

  for (const bad of ['no-port', '10.0.0.1:99999', '[fd00::1]8080', 'fd00::1:80', 'host_x:80']) {
    const p = srv.nextStats();
    await assert.rejects(openTunnel(session, { target: bad }), (e: Error) => e instanceof HboneStatusError && e.message === 'http status: 400');
    const s = await p;
    assert.equal(s.status, 400);
    assert.equal(s.error, `no valid authority pseudo header: ${bad}`);
  }
});

test('401 and 503 decisions and hook failures reach the client as http status errors', async () => {
  const s2 = await startServer(m.server, {
    onConnect: (req) => {
      if (req.target.port === 1) return { status: 401, error: 'connection closed due to policy rejection: allow policies exist, but none allowed' };
      if (req.target.port === 2) throw new Error('hook exploded');
      return { status: 503, error: 'connection failed: upstream refused' };
    },
  });
  try {
    const sess = await dial(s2.port);
    const p1 = s2.nextStats();
    await assert.rejects(openTunnel(sess, { target: { address: '127.0.0.1', port: 1 } }), (e: HboneStatusError) => e.status === 401 && e.message === 'http status: 401');
    assert.match((await p1).error!, /policy rejection/);
    const p2 = s2.nextStats();
    await assert.rejects(openTunnel(sess, { target: { address: '127.0.0.1', port: 2 } }), /http status: 503/);
    assert.equal((await p2).error, 'hook exploded');
    await assert.rejects(openTunnel(sess, { target: { address: '127.0.0.1', port: 3 } }), /http status: 503/);
    // The session survives every rejection.
    assert.equal(sess.destroyed, false);
    sess.destroy();
  } finally {
    await s2.close();
  }
});

test('200 is sent only after the hook returns the upstream', async () => {
  let release!: () => void;
  let hookCalled!: () => void;
  const called = new Promise<void>((r) => (hookCalled = r));
  const s2 = await startServer(m.server, {
    onConnect: async (req) => {
      hookCalled();
      await new Promise<void>((r) => (release = r));
      const { dialTarget } = await import('./fixtures.js');
      return dialTarget(req);
    },
  });
  try {
    const sess = await dial(s2.port);
    let answered = false;
    const tunnel = openTunnel(sess, { target: echoTarget() }).then((s) => ((answered = true), s));
    await called;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false, 'response must wait for the hook');
    release();
    const stream = await tunnel;
    stream.end('x');
    assert.equal((await readAll(stream)).toString(), 'x');
    sess.destroy();
  } finally {
    await s2.close();
  }
});

test('an upstream reset resets the HBONE stream, and a client reset resets the upstream', async () => {
  const resetter = await upstream((s) => s.once('data', () => s.resetAndDestroy()));
  try {
    const p = srv.nextStats();
    const stream = await openTunnel(session, { target: { address: '127.0.0.1', port: resetter.port } });
    const closed = new Promise<void>((r) => stream.once('close', r));
    stream.write('trigger');
    await closed;
    assert.equal(stream.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    assert.match((await p).error!, /ECONNRESET|reset/);
  } finally {
    await resetter.close();
  }

  const holder = await upstream(() => {});
  try {
    const stream = await openTunnel(session, { target: { address: '127.0.0.1', port: holder.port } });
    await eventually('the held upstream socket', () => holder.sockets.length === 1);
    const up = holder.sockets[0]!;
    const upError = new Promise<string | undefined>((r) => {
      up.once('error', (e: NodeJS.ErrnoException) => r(e.code));
      up.once('end', () => r('graceful end'));
    });
    // A bare RST_STREAM, as our own copy sends when the downstream TCP connection is reset.
    stream.destroy(new Error('downstream reset'));
    assert.equal(await upError, 'ECONNRESET');
  } finally {
    await holder.close();
  }
});

test('hostile clients never take the server down', async () => {
  const garbage = (data: Buffer, viaTls: boolean) =>
    new Promise<void>((resolve) => {
      const done = () => resolve();
      if (viaTls) {
        const s = tls.connect({ host: '127.0.0.1', port: srv.port, key: m.client.keyPem, cert: m.client.certChainPem, ca: m.ca.certPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
        s.on('error', done);
        s.on('close', done);
        s.once('secureConnect', () => s.write(data));
        s.resume();
      } else {
        const s = net.connect(srv.port, '127.0.0.1', () => s.write(data));
        s.on('error', done);
        s.on('close', done);
        s.resume();
      }
    });
  await garbage(randomBytes(4096), false); // not TLS at all
  await garbage(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true); // TLS, then not HTTP/2
  await garbage(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(2048)]), true); // preface, then junk frames

  // Reset mid-transfer, and kill the whole connection mid-transfer.
  let raw!: net.Socket;
  const sess = await dialHbone({
    destination: { address: '127.0.0.1', port: srv.port },
    certificate: m.client,
    expectedIdentities: [SERVER_ID],
    createConnection: ({ destination }) => (raw = net.connect(destination.port, destination.address)),
  });
  const big = randomBytes(4 * 1024 * 1024);
  const streams = await Promise.all([1, 2, 3].map(() => openTunnel(sess, { target: echoTarget() })));
  for (const s of streams) s.write(big);
  streams[0]!.close(http2.constants.NGHTTP2_CANCEL);
  streams[1]!.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
  await new Promise((r) => setTimeout(r, 20));
  raw.destroy();

  // Still serving, and nothing from those connections is left behind.
  const stream = await openTunnel(session, { target: echoTarget() });
  stream.end('still alive');
  assert.equal((await readAll(stream)).toString(), 'still alive');
  // A peer that vanishes while the server's writes are blocked is only noticed by the PING keepalive (Node stops
  // reading a session socket while a write is pending), hence the generous wait.
  await eventually('one session left', () => srv.server.sessionCount === 1);
  await eventually('upstream connections of dead streams to close', () => echo.sockets.every((s) => s.destroyed));
  assert.ok(srv.errors.some((e) => /tls handshake error/.test(e.message)), srv.errors.map((e) => e.message).join('; '));
});
