// The native addon and PodNetns against real network namespaces: sockets are created in the pod netns
// (not the test's), marks and binds apply, errors name the call and the namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { PodNetns, getSocketMark, native, netnsPath, originalDst, setSocketMark, socketFd } from '../../src/inpod/index.js';
import { Accepted, createPodPair, nextMessage, plainAddress, readAll, type PodPair } from './inpod-fixture.js';

// The timeout turns a hang (a connection that never comes) into a failure; `after` still cleans up.
describe('in-pod sockets (native addon)', { timeout: 60_000 }, () => {
  let pair: PodPair | undefined;
  let pod: PodNetns;
  let peer: PodNetns;
  const servers: Accepted[] = [];
  const serve = (server: net.Server, reply?: string): Accepted => {
    const a = new Accepted(server, reply);
    servers.push(a);
    return a;
  };

  before(async () => {
    pair = await createPodPair();
    pod = PodNetns.open(pair.pod);
    peer = PodNetns.open(pair.peer);
  });

  after(async () => {
    for (const s of servers) await s.close();
    pod?.close();
    peer?.close();
    await pair?.cleanup();
  });

  it('opens a netns by name or path and rejects what is not one', () => {
    assert.equal(pod.path, `/run/netns/${pair!.pod}`);
    assert.equal(netnsPath('/proc/1/ns/net'), '/proc/1/ns/net');
    assert.throws(() => netnsPath('../etc'), /invalid network namespace name/);
    assert.throws(() => PodNetns.open(`${pair!.tag}-missing`), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, new RegExp(`^open\\(/run/netns/${pair!.tag}-missing\\): ENOENT`));
      return true;
    });
    assert.throws(() => PodNetns.open('/etc/hostname'), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EINVAL');
      assert.match(err.message, /openNetns\(\/etc\/hostname\): not a network namespace/);
      return true;
    });
  });

  it('creates listeners inside the pod netns, not the calling one', async () => {
    // The pod IP exists only inside the pod netns, so binding it proves where the socket lives.
    assert.throws(() => native().listenTcp(-1, pair!.podIp4, 8080), { code: 'EADDRNOTAVAIL' });
    const app = serve(pod.listen(8080, { host: pair!.podIp4 }), 'hello from pod');
    const client = await peer.connect(pair!.podIp4, 8080);
    const accepted = await app.next();
    assert.equal(await readAll(client), 'hello from pod');
    assert.equal(plainAddress(accepted.remoteAddress), pair!.peerIp4);
    assert.equal(accepted.localAddress, pair!.podIp4);
  });

  it('applies SO_MARK to listeners (inherited by accepted sockets) and to outbound sockets', async () => {
    const server = serve(pod.listen(8081, { mark: 0x539 }), 'marked');
    const client = await pod.connect('127.0.0.1', 8081, { mark: 0x111 });
    const accepted = await server.next();
    assert.equal(getSocketMark(client), 0x111);
    assert.equal(getSocketMark(accepted), 0x539);
    assert.equal(native().getMark(socketFd(accepted)), 0x539);
    setSocketMark(client, 0x222);
    assert.equal(getSocketMark(client), 0x222);
    assert.equal(await readAll(client), 'marked');
  });

  it('binds the local address and port of outbound sockets', async () => {
    const peerServer = serve(peer.listen(9000), 'ok');
    const client = await pod.connect(pair!.peerIp4, 9000, { bindHost: pair!.podIp4, bindPort: 40123 });
    const accepted = await peerServer.next();
    assert.equal(plainAddress(accepted.remoteAddress), pair!.podIp4);
    assert.equal(accepted.remotePort, 40123);
    assert.equal(await readAll(client), 'ok');

    const client6 = await pod.connect(pair!.peerIp6, 9000);
    const accepted6 = await peerServer.next();
    assert.equal(accepted6.remoteAddress, pair!.podIp6);
    assert.equal(await readAll(client6), 'ok');
  });

  it('binds UDP sockets inside the pod netns for node:dgram', async () => {
    const receiver = pod.bindUdp(5353, { host: pair!.podIp4, mark: 0x539 });
    const sender = peer.bindUdp(0, { host: pair!.peerIp4 });
    try {
      const got = nextMessage(receiver);
      sender.send('ping', 5353, pair!.podIp4);
      assert.deepEqual(await got, { text: 'ping', from: pair!.peerIp4 });
      assert.throws(() => pod.bindUdp(5353, { host: pair!.podIp4 }), { code: 'EADDRINUSE' });
    } finally {
      receiver.close();
      sender.close();
    }
  });

  it('reports EADDRINUSE naming the address and netns; SO_REUSEPORT allows a second listener', async () => {
    serve(pod.listen(8082));
    assert.throws(() => pod.listen(8082), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EADDRINUSE');
      assert.equal(err.syscall, 'bind');
      assert.match(err.message, new RegExp(`^bind\\(\\[::\\]:8082\\): EADDRINUSE .* in netns /run/netns/${pair!.pod}$`));
      return true;
    });
    // An old and a new proxy overlap during upgrades: both set SO_REUSEPORT.
    serve(pod.listen(8083, { reuseport: true }));
    serve(pod.listen(8083, { reuseport: true }));
  });

  it('rejects failed connects with the address and netns', async () => {
    await assert.rejects(pod.connect(pair!.peerIp4, 1), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ECONNREFUSED');
      assert.match(err.message, new RegExp(`${pair!.peerIp4.replace(/\./g, '\\.')}:1 in netns /run/netns/${pair!.pod}`));
      return true;
    });
    await assert.rejects(pod.connect('peer.example', 80), /'peer\.example' is not an IP address/);
    await assert.rejects(pod.connect(pair!.peerIp4, 9001, { bindHost: '10.255.255.1' }), { code: 'EADDRNOTAVAIL' });
  });

  it('names the setns failure and refuses a closed netns', () => {
    assert.throws(() => native().socketInNetns(99999, 4, 'tcp'), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EBADF');
      assert.match(err.message, /^setns\(netns fd 99999\): EBADF/);
      return true;
    });
    assert.throws(() => native().socketInNetns(-1, 5 as 4, 'tcp'), /family must be 4 or 6/);
    const ns = PodNetns.open(pair!.pod);
    ns.close();
    ns.close();
    assert.equal(ns.fd, -1);
    assert.throws(() => ns.listen(8084), /network namespace \/run\/netns\/.* is closed/);
  });

  it('has no original destination for a connection that was not redirected', async () => {
    const server = serve(pod.listen(8085));
    const client = await pod.connect('127.0.0.1', 8085);
    const accepted = await server.next();
    // Without NAT in this netns conntrack has no entry to ask.
    assert.throws(() => originalDst(accepted), /getsockopt\(SO_ORIGINAL_DST\)\(fd \d+\): ENOENT/);
    client.destroy();
    accepted.destroy();
    await new Promise((r) => accepted.once('close', r));
    assert.throws(() => originalDst(accepted), /socket has no file descriptor/);
  });

  it('makes connect sockets ahead in batches and closes the spares with the netns', async () => {
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    const before = openFds();
    const ns = PodNetns.open(pod.path);
    try {
      // Sockets are made in the pod's netns: the pod's loopback listener is not reachable from ours.
      const mine = pod.listen(8086, { host: '127.0.0.1' });
      await once(mine, 'listening');
      mine.on('connection', (s) => s.end('pod'));
      const socket = await ns.connect('127.0.0.1', 8086);
      const [reply] = await once(socket, 'data');
      assert.equal(String(reply), 'pod');
      socket.destroy();
      mine.close();
      // One socket in use came from a batch: the rest are spares, held open until close().
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(openFds() - before >= 15, `spare sockets are kept: ${openFds() - before} extra fds`);
    } finally {
      ns.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(openFds(), before, 'close() releases the netns fd and every spare socket');
    const fds = native().tcpSockets(-1, 6, 3);
    assert.equal(new Set(fds).size, 3);
    for (const fd of fds) native().closeFd(fd);
    assert.throws(() => native().tcpSockets(-1, 4, 0), /count must be 1\.\.256/);
    // prepareConnect consumes its fd: on a bad option it closes the socket before throwing.
    const [spare] = native().tcpSockets(-1, 4, 1);
    assert.throws(() => native().prepareConnect(spare!, 4, { bindHost: '::1' }), /bindHost '::1' port 0 is not an IPv4 address/);
    assert.equal(existsSync(`/proc/self/fd/${spare}`), false, 'the fd was closed');
  });

  it('measures socketInNetns (reported, not asserted)', (t) => {
    const calls = 2000;
    const time = (netnsFd: number): number => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) {
        native().closeFd(native().socketInNetns(netnsFd, 4, 'tcp', { mark: 0x539, nonblocking: true }));
      }
      return Number(process.hrtime.bigint() - start) / calls / 1000;
    };
    const other = time(pod.fd);
    const same = time(-1);
    const batches = 100;
    const start = process.hrtime.bigint();
    for (let i = 0; i < batches; i++) for (const fd of native().tcpSockets(pod.fd, 4, 16)) native().closeFd(fd);
    const batched = Number(process.hrtime.bigint() - start) / (batches * 16) / 1000;
    t.diagnostic(`socketInNetns: ${other.toFixed(1)} us/call via setns helper thread, ${same.toFixed(1)} us/call in the current netns; ` +
      `tcpSockets in batches of 16: ${batched.toFixed(1)} us/socket`);
    // The fds come from the pod netns: the mark survives, and the call works after many threads.
    const fd = native().socketInNetns(pod.fd, 6, 'udp', { mark: 7 });
    assert.equal(native().getMark(fd), 7);
    native().closeFd(fd);
  });
});
