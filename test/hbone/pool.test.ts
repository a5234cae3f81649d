import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { HbonePool, type PoolConnectOptions } from '../../src/hbone/pool.js';
import { SERVER_ID, type Mesh, type TestServer, type Upstream, eventually, mesh, readAll, startServer, upstream } from './fixtures.js';

let m: Mesh;
let srv: TestServer;
let echo: Upstream;

before(async () => {
  m = await mesh();
  srv = await startServer(m.server);
  echo = await upstream();
});
after(async () => {
  await srv.close();
  await echo.close();
});

function req(port: number, extra: Partial<PoolConnectOptions> = {}): PoolConnectOptions {
  return {
    destination: { address: '127.0.0.1', port },
    certificate: m.client,
    expectedIdentities: [SERVER_ID],
    target: { address: '127.0.0.1', port: echo.port },
    ...extra,
  };
}

async function roundTrip(stream: http2.ClientHttp2Stream, text: string): Promise<string> {
  stream.end(text);
  return (await readAll(stream)).toString();
}

test('streams to the same key share one connection; concurrent first dials share one dial', async () => {
  const pool = new HbonePool();
  try {
    const streams = await Promise.all(Array.from({ length: 10 }, () => pool.connect(req(srv.port))));
    assert.equal(pool.connectionCount, 1);
    await eventually('one server session', () => srv.server.sessionCount === 1);
    const replies = await Promise.all(streams.map((s, i) => roundTrip(s, `msg ${i}`)));
    assert.deepEqual(replies, streams.map((_, i) => `msg ${i}`));
    // A later stream reuses the idle connection.
    assert.equal(await roundTrip(await pool.connect(req(srv.port)), 'again'), 'again');
    assert.equal(pool.connectionCount, 1);
    // A different key (another expected identity set) gets its own connection.
    await roundTrip(await pool.connect(req(srv.port, { expectedIdentities: [SERVER_ID, 'spiffe://cluster.local/ns/x/sa/y'] })), 'k2');
    assert.equal(pool.connectionCount, 2);
  } finally {
    await pool.close();
  }
});

test('more than 100 concurrent streams open a second connection; the peer limit is honoured too', async () => {
  const s2 = await startServer(m.server);
  const pool = new HbonePool();
  const wide = new HbonePool({ maxStreamsPerConnection: 1000 });
  try {
    const held = await Promise.all(Array.from({ length: 150 }, () => pool.connect(req(s2.port))));
    assert.equal(pool.connectionCount, 2);
    await eventually('two server sessions', () => s2.server.sessionCount === 2);
    for (const s of held) s.end();
    await Promise.all(held.map((s) => readAll(s)));

    // Our own limit raised above the server's SETTINGS_MAX_CONCURRENT_STREAMS (200): 250 streams need 2 connections.
    const many = await Promise.all(Array.from({ length: 250 }, () => wide.connect(req(s2.port))));
    assert.equal(wide.connectionCount, 2);
    for (const s of many) s.end();
    await Promise.all(many.map((s) => readAll(s)));
  } finally {
    await pool.close();
    await wide.close();
    await s2.close();
  }
});

test('an idle connection is closed after the idle timeout', async () => {
  const s2 = await startServer(m.server);
  const pool = new HbonePool({ idleTimeoutMs: 150 });
  try {
    assert.equal(await roundTrip(await pool.connect(req(s2.port)), 'x'), 'x');
    assert.equal(pool.connectionCount, 1);
    await eventually('pool dropped the idle connection', () => pool.connectionCount === 0, { timeoutMs: 3000 });
    await eventually('server saw the connection close', () => s2.server.sessionCount === 0, { timeoutMs: 3000 });
  } finally {
    await pool.close();
    await s2.close();
  }
});

test('a peer that stops answering PINGs is dropped and its streams fail', async () => {
  // A TCP relay in front of the server that can be frozen: bytes stop flowing both ways, sockets stay open.
  let frozen = false;
  const pairs: net.Socket[] = [];
  const relay = net.createServer((down) => {
    const up = net.connect(srv.port, '127.0.0.1');
    pairs.push(down, up);
    for (const [a, b] of [[down, up], [up, down]] as const) {
      a.on('data', (c: Buffer) => {
        if (!frozen) b.write(c);
      });
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const pool = new HbonePool({ keepalive: { intervalMs: 50, timeoutMs: 300 } });
  try {
    const port = (relay.address() as net.AddressInfo).port;
    const stream = await pool.connect(req(port));
    const failed = new Promise<string>((resolve) => {
      stream.on('error', (e) => resolve(e.message));
      stream.on('close', () => resolve(`closed, rst ${stream.rstCode}`));
    });
    frozen = true;
    assert.equal(await failed, 'HBONE ping timeout');
    await eventually('the pool to drop its connection', () => pool.connectionCount === 0);
  } finally {
    await pool.close(100);
    for (const s of pairs) s.destroy();
    relay.close();
  }
});

test('GOAWAY retires a connection: open streams finish, new streams use a new connection', async () => {
  const first = await startServer(m.server);
  const second = await startServer(m.server);
  // One stable address whose connections are served by `first` until it shuts down, then by `second`.
  let target = first.server;
  const front = net.createServer((s) => target.handleConnection(s));
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const pool = new HbonePool();
  try {
    const port = (front.address() as net.AddressInfo).port;
    const inflight = await pool.connect(req(port));
    inflight.write('before ');
    target = second.server;
    const closing = first.server.close(5000); // sends GOAWAY, waits for the open stream
    await eventually('pool noticed GOAWAY', () => pool.connectionCount === 0);
    assert.equal(await roundTrip(await pool.connect(req(port)), 'new'), 'new');
    assert.equal(second.stats.length, 1, 'new stream went to the new server');
    assert.equal(await roundTrip(inflight, 'and after'), 'before and after');
    await closing;
  } finally {
    await pool.close();
    front.close();
    await first.close();
    await second.close();
  }
});

test('dial failures reach every waiter with a clear error', async () => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const pool = new HbonePool();
  const results = await Promise.allSettled([1, 2, 3].map(() => pool.connect(req(deadPort))));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.match((r as PromiseRejectedResult).reason.message, new RegExp(`^connection failed: connect ECONNREFUSED 127.0.0.1:${deadPort}`));
  }

  // A listener that accepts and then says nothing: the dial times out with ztunnel's hint.
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const slow = new HbonePool({ connectTimeoutMs: 200 });
  try {
    await assert.rejects(
      slow.connect(req((silent.address() as net.AddressInfo).port)),
      /^HboneConnectTimeoutError: connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008/,
    );
  } finally {
    await pool.close();
    await slow.close();
    silent.close();
  }
});

test('createConnection supplies the transport (how the proxy dials from inside a pod)', async () => {
  const dialed: string[] = [];
  const pool = new HbonePool({
    createConnection: ({ destination, sourceAddress }) => {
      dialed.push(`${sourceAddress}->${destination.address}:${destination.port}`);
      return net.connect({ host: destination.address, port: destination.port, localAddress: sourceAddress });
    },
  });
  try {
    const s = await pool.connect(req(srv.port, { sourceAddress: '127.0.0.3' }));
    assert.equal(await roundTrip(s, 'via hook'), 'via hook');
    assert.deepEqual(dialed, [`127.0.0.3->127.0.0.1:${srv.port}`]);
    const last = srv.stats[srv.stats.length - 1]!;
    assert.equal(last.peer.address, '127.0.0.3', 'the server saw the chosen source address');
  } finally {
    await pool.close();
  }
});
