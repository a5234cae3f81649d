// Bulk data both ways through one HBONE stream between two Node HTTP/2 sessions, in a network namespace whose TCP
// buffers are pinned small. Node's session stops reading while one of its writes is in progress, so with both ends
// writing and the buffers full each end waits for the other: before the server's eager-write transport this test
// hung until the PING timeout reset the connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import { dialHbone, openTunnel } from '../../src/hbone/client.js';
import { copyBidirectional } from '../../src/hbone/copy.js';
import { HboneServer } from '../../src/hbone/server.js';
import { destroySession } from '../../src/hbone/session.js';
import { PodNetns } from '../../src/inpod/netns.js';
import { SERVER_ID, mesh } from './fixtures.js';

const isRoot = process.getuid?.() === 0;
const NETNS = `ambit-hbone-bidi-${process.pid}`;
// Short PINGs: a stalled connection is reset within seconds instead of the default 30.
const KEEPALIVE = { intervalMs: 500, timeoutMs: 2000 };

let ns: PodNetns | undefined;
const servers: net.Server[] = [];
let hbone: HboneServer | undefined;
let session: http2.ClientHttp2Session | undefined;

function sh(args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

function listen(onSocket: (s: net.Socket) => void): number {
  const server = ns!.listen(0, { host: '127.0.0.1' });
  server.on('connection', (s: net.Socket) => {
    s.on('error', () => {});
    onSocket(s);
  });
  servers.push(server);
  return (server.address() as net.AddressInfo).port;
}

before(async () => {
  if (!isRoot) return;
  sh(['ip', 'netns', 'add', NETNS]);
  sh(['ip', '-n', NETNS, 'link', 'set', 'lo', 'up']);
  // Buffers that stay small, as on a busy machine where autotuning has not grown them.
  sh(['ip', 'netns', 'exec', NETNS, 'sysctl', '-qw', 'net.ipv4.tcp_rmem=4096 16384 65536', 'net.ipv4.tcp_wmem=4096 16384 65536']);
  ns = PodNetns.open(NETNS);
  const m = await mesh();
  const echoPort = listen((s) => {
    s.allowHalfOpen = true;
    s.pipe(s);
  });
  hbone = new HboneServer({
    certificateFor: () => m.server,
    keepalive: KEEPALIVE,
    onConnect: async () => ({ status: 200, upstream: await ns!.connect('127.0.0.1', echoPort) }),
  });
  const hbonePort = listen((s) => hbone!.handleConnection(s));
  session = await dialHbone({
    destination: { address: '127.0.0.1', port: hbonePort },
    certificate: m.client,
    expectedIdentities: [SERVER_ID],
    keepalive: KEEPALIVE,
    createConnection: () => ns!.connect('127.0.0.1', hbonePort),
  });
});

after(async () => {
  if (session) destroySession(session);
  for (const s of servers) s.close();
  await hbone?.close(100);
  ns?.close();
  if (isRoot) execFileSync('ip', ['netns', 'del', NETNS], { stdio: 'ignore' });
});

test('10 MB echoed through a pumped HBONE stream arrives intact with TCP buffers pinned small', { skip: !isRoot && 'needs root for a network namespace' }, async () => {
  // The client side pumps an application socket into the stream, as ztunnel's outbound does.
  const frontPort = listen((app) => {
    void openTunnel(session!, { target: { address: '127.0.0.1', port: 9 } }).then(
      (stream) => copyBidirectional(app, stream),
      () => app.destroy(),
    );
  });
  const payload = randomBytes(10 * 1024 * 1024);
  for (let round = 0; round < 3; round++) {
    const app = await ns!.connect('127.0.0.1', frontPort);
    app.allowHalfOpen = true;
    const got = await new Promise<{ data: Buffer; error?: Error }>((resolve) => {
      const chunks: Buffer[] = [];
      let error: Error | undefined;
      app.on('data', (c: Buffer) => chunks.push(c));
      app.on('error', (e) => (error = e));
      app.on('close', () => resolve({ data: Buffer.concat(chunks), ...(error ? { error } : {}) }));
      app.end(payload);
    });
    assert.equal(got.error, undefined, `round ${round}`);
    assert.equal(got.data.length, payload.length, `round ${round}`);
    assert.equal(createHash('sha256').update(got.data).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  }
  assert.equal(session!.destroyed, false, 'the pooled session survived');
});
