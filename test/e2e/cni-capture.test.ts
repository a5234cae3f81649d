// The in-pod capture ruleset against a real pod netns: what gets redirected where, what bypasses it,
// and that the original destination survives the redirect.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DNS_CAPTURE_PORT, INPOD_MARK, ZTUNNEL_INBOUND_PLAINTEXT_PORT, ZTUNNEL_INBOUND_PORT, ZTUNNEL_OUTBOUND_PORT,
  installCapture, isCaptured, removeCapture,
} from '../../src/cni/index.js';
import { PodNetns, getSocketMark, originalDst } from '../../src/inpod/index.js';
import { Accepted, createPodPair, inNetns, nextMessage, plainAddress, readAll, type PodPair } from './inpod-fixture.js';

// The timeout turns a hang (a connection that never comes) into a failure; `after` still cleans up.
describe('in-pod capture rules (nftables)', { timeout: 60_000 }, () => {
  let pair: PodPair | undefined;
  let pod: PodNetns;
  let peer: PodNetns;
  const servers: Accepted[] = [];
  // The proxy's in-pod listeners, marked like every socket ztunnel owns in a pod.
  let outbound: Accepted;
  let inboundPlain: Accepted;
  let hbone: Accepted;
  let dns: Accepted;
  // A real service on the peer, answering every connection.
  let peerApp: Accepted;
  const serve = (a: Accepted): Accepted => (servers.push(a), a);
  const listRuleset = (): Promise<string> => inNetns(pair!.pod, 'nft', ['-s', 'list', 'ruleset']);

  before(async () => {
    pair = await createPodPair();
    pod = PodNetns.open(pair.pod);
    peer = PodNetns.open(pair.peer);
    await installCapture(pair.pod);
    outbound = serve(new Accepted(pod.listen(ZTUNNEL_OUTBOUND_PORT, { mark: INPOD_MARK, reuseport: true })));
    inboundPlain = serve(new Accepted(pod.listen(ZTUNNEL_INBOUND_PLAINTEXT_PORT, { mark: INPOD_MARK, reuseport: true })));
    hbone = serve(new Accepted(pod.listen(ZTUNNEL_INBOUND_PORT, { mark: INPOD_MARK, reuseport: true })));
    dns = serve(new Accepted(pod.listen(DNS_CAPTURE_PORT, { mark: INPOD_MARK, reuseport: true })));
    peerApp = serve(new Accepted(peer.listen(8080), 'from peer'));
  });

  after(async () => {
    for (const s of servers) await s.close();
    pod?.close();
    peer?.close();
    await pair?.cleanup();
  });

  it('installs tables, fwmark rule and local route; reinstalling changes nothing', async () => {
    assert.equal(await isCaptured(pair!.pod), true);
    assert.equal(await isCaptured(pair!.peer), false);
    const first = await listRuleset();
    for (const table of ['istio-ambient-nat', 'istio-ambient-mangle', 'istio-ambient-raw']) {
      assert.match(first, new RegExp(`table inet ${table} \\{`));
    }
    assert.match(first, /tcp dport != 15008 .*redirect to :15006/);
    assert.match(first, /redirect to :15001/);
    assert.match(first, /udp dport 53 .*redirect to :15053/);
    // nft may list (m & 0xfffff000) | 0x111 as the equivalent (m & 0xfffff111) | 0x111.
    assert.match(first, /ct mark set ct mark & 0xfffff(000|111) \| 0x00000111/);
    assert.match(first, /ct mark & 0x00000fff == 0x00000111 counter meta mark set ct mark/);
    await installCapture(pair!.pod);
    assert.equal(await listRuleset(), first);
    for (const ip of ['-4', '-6']) {
      const rules = await inNetns(pair!.pod, 'ip', [ip, 'rule', 'show', 'pref', '32764']);
      assert.deepEqual(rules.trim().split('\n'), ['32764:\tfrom all fwmark 0x111/0xfff lookup 100'], `ip ${ip} rule`);
      const routes = await inNetns(pair!.pod, 'ip', [ip, 'route', 'show', 'table', '100']);
      assert.match(routes, /^local default dev lo /, `ip ${ip} route table 100`);
    }
  });

  it('redirects outbound TCP to 15001 and keeps the original destination (IPv4 and IPv6)', async () => {
    const before = peerApp.sockets.length;
    for (const [address, family] of [[pair!.peerIp4, 'IPv4'], [pair!.peerIp6, 'IPv6']] as const) {
      const client = await pod.connect(address, 8080);
      const accepted = await outbound.next();
      assert.deepEqual(originalDst(accepted), { address, port: 8080, family });
      assert.equal(accepted.remotePort, client.localPort);
      client.destroy();
    }
    assert.equal(peerApp.sockets.length, before, 'the peer must not see redirected connections');
  });

  it('lets sockets marked 0x539 (the proxy\'s own) through to the real destination', async () => {
    const client = await pod.connect(pair!.peerIp4, 8080, { mark: INPOD_MARK });
    const accepted = await peerApp.next();
    assert.equal(plainAddress(accepted.remoteAddress), pair!.podIp4);
    assert.equal(getSocketMark(client), INPOD_MARK);
    assert.equal(await readAll(client), 'from peer');
  });

  it('redirects inbound TCP to a pod port to 15006 with the original destination', async () => {
    for (const [address, family] of [[pair!.podIp4, 'IPv4'], [pair!.podIp6, 'IPv6']] as const) {
      const client = await peer.connect(address, 8080);
      const accepted = await inboundPlain.next();
      assert.deepEqual(originalDst(accepted), { address, port: 8080, family });
      assert.equal(plainAddress(accepted.remoteAddress), family === 'IPv4' ? pair!.peerIp4 : pair!.peerIp6);
      client.destroy();
    }
  });

  it('does not redirect inbound HBONE on 15008; its local address is the pod IP', async () => {
    const before = inboundPlain.sockets.length;
    const client = await peer.connect(pair!.podIp4, ZTUNNEL_INBOUND_PORT);
    const accepted = await hbone.next();
    assert.equal(plainAddress(accepted.localAddress), pair!.podIp4);
    assert.equal(inboundPlain.sockets.length, before);
    client.destroy();
  });

  it('redirects DNS over TCP and UDP to 15053', async () => {
    const client = await pod.connect(pair!.peerIp4, 53);
    const accepted = await dns.next();
    assert.deepEqual(originalDst(accepted), { address: pair!.peerIp4, port: 53, family: 'IPv4' });
    client.destroy();

    // UDP: an unmarked app socket sends to the peer's port 53; the proxy's marked 15053 socket gets it.
    const proxy = pod.bindUdp(DNS_CAPTURE_PORT, { mark: INPOD_MARK });
    const app = pod.bindUdp(0, { host: '0.0.0.0' });
    try {
      const received = nextMessage(proxy);
      app.send('query', 53, pair!.peerIp4);
      assert.equal((await received).text, 'query');
    } finally {
      proxy.close();
      app.close();
    }
  });

  it('keeps app-to-self traffic via the pod IP local', async () => {
    const app = serve(new Accepted(pod.listen(8081, { host: pair!.podIp4 }), 'self'));
    const before = outbound.sockets.length + inboundPlain.sockets.length;
    const client = await pod.connect(pair!.podIp4, 8081);
    await app.next();
    assert.equal(await readAll(client), 'self');
    assert.equal(outbound.sockets.length + inboundPlain.sockets.length, before);
  });

  it('routes app replies back to a transparent proxy socket that spoofs the client address', async () => {
    // ztunnel's inbound path: it connects to the app from inside the pod with the original client's IP
    // (IP_TRANSPARENT + IP_FREEBIND, mark 0x539). The handshake only completes if the app's SYN-ACK,
    // addressed to the peer's IP, is caught by connmark 0x111 -> fwmark -> table 100 -> local.
    const app = serve(new Accepted(pod.listen(8082, { host: pair!.podIp4 }), 'reply to spoofed client'));
    const upstream = await pod.connect(pair!.podIp4, 8082, {
      mark: INPOD_MARK, transparent: true, freebind: true, bindHost: pair!.peerIp4, timeoutMs: 3000,
    });
    const accepted = await app.next();
    assert.equal(plainAddress(accepted.remoteAddress), pair!.peerIp4);
    assert.equal(await readAll(upstream), 'reply to spoofed client');
  });

  it('reports a missing netns clearly', async () => {
    const missing = `${pair!.tag}-missing`;
    await assert.rejects(installCapture(missing), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.message, `installCapture(/run/netns/${missing}): network namespace not found`);
      return true;
    });
    await assert.rejects(isCaptured(missing), /isCaptured\(.*\): network namespace not found/);
  });

  it('removeCapture restores direct traffic and is idempotent', async () => {
    await removeCapture(pair!.pod);
    await removeCapture(pair!.pod);
    assert.equal(await isCaptured(pair!.pod), false);
    assert.doesNotMatch(await listRuleset(), /istio-ambient/);
    assert.equal((await inNetns(pair!.pod, 'ip', ['rule', 'show', 'pref', '32764'])).trim(), '');
    assert.equal((await inNetns(pair!.pod, 'ip', ['route', 'show', 'table', '100'])).trim(), '');
    const before = outbound.sockets.length;
    const client = await pod.connect(pair!.peerIp4, 8080);
    await peerApp.next();
    assert.equal(await readAll(client), 'from peer');
    assert.equal(outbound.sockets.length, before);
  });
});
