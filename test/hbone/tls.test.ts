import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createRootCA, issueWorkloadCertificate } from '../../src/identity/certs.js';
import { dialHbone, openTunnel } from '../../src/hbone/client.js';
import { HboneServer } from '../../src/hbone/server.js';
import { destroySession } from '../../src/hbone/session.js';
import { HBONE_CIPHERSUITES, clientTlsOptions, serverTlsOptions } from '../../src/hbone/tls.js';
import { CLIENT_ID, SERVER_ID, TD, type Mesh, type TestServer, type Upstream, eventually, mesh, readAll, startServer, upstream } from './fixtures.js';

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

/** A raw TLS client against the HBONE server, for handshakes our own client would never attempt. */
function rawTls(opts: tls.ConnectionOptions): Promise<{ error?: Error; socket: tls.TLSSocket }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: srv.port, ca: m.ca.certPem, checkServerIdentity: () => undefined, ...opts });
    socket.once('error', (error) => resolve({ error, socket }));
    socket.once('close', () => resolve({ socket }));
    socket.resume();
  });
}

const lastError = () => srv.errors[srv.errors.length - 1]?.message ?? '';

test('client sends no SNI and negotiates TLS 1.3, h2 and a mesh cipher suite', async () => {
  const seen: tls.TLSSocket[] = [];
  const server = tls.createServer(serverTlsOptions(m.server, 5000), (s) => {
    seen.push(s);
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as net.AddressInfo).port;
    // As dialHbone does it: TLS over a transport we created, no host or servername given.
    const socket = tls.connect({ socket: net.connect(port, '127.0.0.1'), ...clientTlsOptions(m.client, [SERVER_ID]) });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    assert.equal(socket.getProtocol(), 'TLSv1.3');
    assert.equal(socket.alpnProtocol, 'h2');
    assert.ok(HBONE_CIPHERSUITES.split(':').includes(socket.getCipher().standardName), socket.getCipher().standardName);
    await eventually('one connection seen', () => seen.length === 1);
    socket.destroy();
    assert.equal(seen[0]!.servername, false, 'no SNI extension on the wire');
    assert.equal(seen[0]!.authorized, true);
  } finally {
    server.close();
  }
});

test('TLS 1.2, a non-mesh cipher suite and a missing h2 ALPN are all refused', async () => {
  const cred = { key: m.client.keyPem, cert: m.client.certChainPem };
  const v12 = await rawTls({ ...cred, maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] });
  assert.ok(v12.error, 'TLS 1.2 handshake must fail');
  await eventually('a tls handshake error', () => /tls handshake error/.test(lastError()));

  const chacha = await rawTls({ ...cred, ciphers: 'TLS_CHACHA20_POLY1305_SHA256', ALPNProtocols: ['h2'] });
  assert.ok(chacha.error, 'a handshake offering only CHACHA20 must fail');

  const before = srv.errors.length;
  const h1 = await rawTls({ ...cred, ALPNProtocols: ['http/1.1'] });
  assert.notEqual(h1.socket.alpnProtocol, 'h2');
  await eventually('the server to report the failure', () => srv.errors.length > before);
  assert.match(lastError(), /ALPN|no_application_protocol|tls handshake error/);
});

test('a client certificate from another trust domain is rejected by the server', async () => {
  // Same CA, so the chain verifies: only the trust-domain check stands in the way.
  const foreign = await issueWorkloadCertificate(m.ca, 'spiffe://other.domain/ns/default/sa/client', 600);
  const before = srv.errors.length;
  const session = await dialHbone({ destination: { address: '127.0.0.1', port: srv.port }, certificate: foreign, expectedIdentities: [SERVER_ID] }).catch(
    (e: Error) => e,
  );
  if (!(session instanceof Error)) {
    // TLS 1.3 lets the client finish before the server has checked it; the server then drops the connection.
    await assert.rejects(openTunnel(session, { target: { address: '127.0.0.1', port: echo.port } }));
    destroySession(session);
  }
  await eventually('the server to report the failure', () => srv.errors.length > before);
  assert.equal(
    lastError(),
    `identity verification error: peer did not present the expected trustdomain (${TD}), got spiffe://other.domain/ns/default/sa/client`,
  );
});

test('a client certificate from another CA, or none at all, is rejected by the server', async () => {
  const otherCa = await createRootCA({ trustDomain: TD, ttlSeconds: 600 });
  const rogue = await issueWorkloadCertificate(otherCa, CLIENT_ID, 600);
  let before = srv.errors.length;
  await rawTls({ key: rogue.keyPem, cert: rogue.certChainPem, ALPNProtocols: ['h2'] });
  await eventually('the server to report the failure', () => srv.errors.length > before);
  assert.match(lastError(), /client certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  before = srv.errors.length;
  await rawTls({ ALPNProtocols: ['h2'] });
  await eventually('the server to report the failure', () => srv.errors.length > before);
  assert.match(lastError(), /client presented no certificate|tls handshake error/);
});

test('the client refuses a server whose identity is not expected, or whose chain is not ours', async () => {
  await assert.rejects(
    dialHbone({ destination: { address: '127.0.0.1', port: srv.port }, certificate: m.client, expectedIdentities: ['spiffe://cluster.local/ns/default/sa/other', 'spiffe://cluster.local/ns/x/sa/y'] }),
    (e: Error) =>
      e.message ===
      `identity verification error: peer did not present the expected SAN (spiffe://cluster.local/ns/default/sa/other,spiffe://cluster.local/ns/x/sa/y), got ${SERVER_ID}`,
  );
  const otherCa = await createRootCA({ trustDomain: TD, ttlSeconds: 600 });
  const impostor = await issueWorkloadCertificate(otherCa, SERVER_ID, 600);
  const fake = await startServer(impostor);
  try {
    await assert.rejects(
      dialHbone({ destination: { address: '127.0.0.1', port: fake.port }, certificate: m.client, expectedIdentities: [SERVER_ID] }),
      /^HboneDialError: tls handshake error: .*certificate/,
    );
  } finally {
    await fake.close();
  }
});

test('the server presents the certificate of the pod the connection was addressed to', async () => {
  const podA = await issueWorkloadCertificate(m.ca, 'spiffe://cluster.local/ns/a/sa/pod-a', 600);
  const podB = await issueWorkloadCertificate(m.ca, 'spiffe://cluster.local/ns/b/sa/pod-b', 600);
  const server = new HboneServer({
    certificateFor: (local) => (local.address === '127.0.0.1' ? podA : local.address === '127.0.0.2' ? podB : Promise.reject(new Error('unknown pod'))),
    onConnect: () => ({ status: 503, error: 'not used' }),
  });
  // Two listeners owned by "someone else" (as in-pod listeners are) hand their sockets to one HBONE server.
  const listeners = await Promise.all(
    ['127.0.0.1', '127.0.0.2'].map(
      (host) =>
        new Promise<net.Server>((resolve) => {
          const l = net.createServer((s) => server.handleConnection(s));
          l.listen(0, host, () => resolve(l));
        }),
    ),
  );
  try {
    const [a, b] = listeners.map((l) => l.address() as net.AddressInfo);
    const sa = await dialHbone({ destination: { address: a!.address, port: a!.port }, certificate: m.client, expectedIdentities: [podA.identity] });
    const sb = await dialHbone({ destination: { address: b!.address, port: b!.port }, certificate: m.client, expectedIdentities: [podB.identity] });
    destroySession(sa);
    destroySession(sb);
    await assert.rejects(
      dialHbone({ destination: { address: b!.address, port: b!.port }, certificate: m.client, expectedIdentities: [podA.identity] }),
      /expected SAN \(spiffe:\/\/cluster.local\/ns\/a\/sa\/pod-a\), got spiffe:\/\/cluster.local\/ns\/b\/sa\/pod-b/,
    );
  } finally {
    for (const l of listeners) l.close();
    await server.close(100);
  }
});

test('a rotated certificate is used for new connections', async () => {
  let current = m.server;
  const s = await startServer(m.server, { certificateFor: () => current });
  try {
    const first = await dialHbone({ destination: { address: '127.0.0.1', port: s.port }, certificate: m.client, expectedIdentities: [SERVER_ID] });
    const stream = await openTunnel(first, { target: { address: '127.0.0.1', port: echo.port } });
    stream.end('a');
    assert.equal((await readAll(stream)).toString(), 'a');
    current = await issueWorkloadCertificate(m.ca, 'spiffe://cluster.local/ns/default/sa/server-v2', 600);
    await assert.rejects(
      dialHbone({ destination: { address: '127.0.0.1', port: s.port }, certificate: m.client, expectedIdentities: [SERVER_ID] }),
      /got spiffe:\/\/cluster.local\/ns\/default\/sa\/server-v2/,
    );
    destroySession(first);
  } finally {
    await s.close();
  }
});
