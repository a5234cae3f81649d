import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { copyBidirectional } from '../../src/hbone/copy.js';
import { readAll } from './fixtures.js';

// A TCP proxy made only of copyBidirectional: client -> proxy -> backend.
async function proxyTo(backend: net.Server) {
  const results: Promise<Awaited<ReturnType<typeof copyBidirectional>>>[] = [];
  const proxy = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = net.connect((backend.address() as net.AddressInfo).port, '127.0.0.1');
    results.push(copyBidirectional(down, up));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return { proxy, results, port: (proxy.address() as net.AddressInfo).port };
}

test('copy counts bytes, respects backpressure and carries half-close both ways', async () => {
  // The backend reads slowly at first (paused), so the proxy must buffer-limit rather than drop or balloon.
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    s.pause();
    let n = 0;
    setTimeout(() => s.resume(), 200);
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => s.end(`${n}`));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const { proxy, results, port } = await proxyTo(backend);
  try {
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const payload = Buffer.alloc(8 * 1024 * 1024, 7);
    client.end(payload);
    assert.equal((await readAll(client)).toString(), String(payload.length));
    const r = await results[0]!;
    assert.equal(r.aToB, payload.length);
    assert.equal(r.bToA, String(payload.length).length);
    assert.equal(r.error, undefined);
  } finally {
    proxy.close();
    backend.close();
  }
});

test('a reset on one side becomes a reset on the other', async () => {
  const backend = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const { proxy, results, port } = await proxyTo(backend);
  try {
    const client = net.connect(port, '127.0.0.1');
    const outcome = new Promise<string>((resolve) => {
      client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      client.on('end', () => resolve('clean end'));
    });
    client.write('x');
    assert.equal(await outcome, 'ECONNRESET');
    assert.match((await results[0]!).error!.message, /ECONNRESET/);
  } finally {
    proxy.close();
    backend.close();
  }
});
