// IstioCertificateService/CreateCertificate over real TLS gRPC: signing, chain, SAN and TTL; node authorization;
// bad CSRs; persistence of the self-signed root; a user-supplied intermediate CA.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import 'reflect-metadata'; // before @peculiar/x509, which needs the Reflect metadata API when it loads
import * as x509 from '@peculiar/x509';
import { createRootCA, signCertificate } from '../../src/identity/certs.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/identity/csr.js';
import { verifyCertificateChain } from '../../src/identity/verify.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { createCertificate, startControlPlane, tempDir, type Fixture } from './helpers.js';

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const HTTPBIN = 'spiffe://cluster.local/ns/default/sa/httpbin';
const placement = {
  identitiesOnNode: (node: string) => new Set(node === 'node-1' ? [SLEEP] : node === 'node-2' ? [HTTPBIN] : []),
};

async function csrFor(uriSans: string[]): Promise<string> {
  return createCsr({ keys: await generateKeyPair(), uriSans });
}

function impersonating(identity: string) {
  return { fields: { ImpersonatedIdentity: { stringValue: identity } } };
}

function lifetimeSeconds(pem: string): number {
  const c = new X509Certificate(pem);
  return (Date.parse(c.validTo) - Date.parse(c.validFrom)) / 1000;
}

describe('certificate service', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startControlPlane({ types: [], placement });
  });
  after(async () => fx?.close());

  const call = (token: string | null, request: object) => createCertificate(fx.server.port, fx.server.rootPem, token, request);

  it('signs a CSR for a pod on the caller node: [leaf, root], SPIFFE SAN, 24h default TTL', async () => {
    const res = await call('token-node-1', { csr: await csrFor([SLEEP]), metadata: impersonating(SLEEP) });
    assert.equal(res.error, undefined, res.error?.details);
    const chain = res.certChain!;
    assert.equal(chain.length, 2);
    assert.equal(chain[1], fx.server.rootPem);
    const leaf = new X509Certificate(chain[0]!);
    const root = new X509Certificate(chain[1]!);
    assert.ok(leaf.checkIssued(root));
    assert.ok(leaf.verify(root.publicKey));
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, `URI:${SLEEP}`);
    // Backdated by a minute for clock skew.
    assert.ok(Math.abs(lifetimeSeconds(chain[0]!) - (24 * 3600 + 60)) <= 2, `lifetime ${lifetimeSeconds(chain[0]!)}`);
    verifyCertificateChain(chain, [fx.server.rootPem]);
  });

  it('honours validity_duration up to the maximum and refuses longer, as istiod does', async () => {
    const short = await call('token-node-1', { csr: await csrFor([SLEEP]), validityDuration: 3600 });
    assert.ok(Math.abs(lifetimeSeconds(short.certChain![0]!) - 3660) <= 2);
    const max = await call('token-node-1', { csr: await csrFor([SLEEP]), validityDuration: 90 * 24 * 3600 });
    assert.ok(Math.abs(lifetimeSeconds(max.certChain![0]!) - (90 * 24 * 3600 + 60)) <= 2);
    const long = await call('token-node-1', { csr: await csrFor([SLEEP]), validityDuration: 90 * 24 * 3600 + 1 });
    assert.equal(long.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(long.error!.details, 'CSR signing error (requested TTL 2160h0m1s is greater than the max allowed TTL 2160h0m0s)');
    assert.ok(fx.log.has('CSR signing error: requested TTL 2160h0m1s is greater than the max allowed TTL 2160h0m0s'), fx.log.lines.join('\n'));
  });

  it('refuses a TTL above a configured maximum and signs up to it', async () => {
    const small = await startControlPlane({ types: [], placement, maxWorkloadCertTtlSeconds: 3600 });
    try {
      const callSmall = (request: object) => createCertificate(small.server.port, small.server.rootPem, 'token-node-1', request);
      const refused = await callSmall({ csr: await csrFor([SLEEP]), validityDuration: 7200 });
      assert.equal(refused.error?.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(refused.error!.details, 'CSR signing error (requested TTL 2h0m0s is greater than the max allowed TTL 1h0m0s)');
      const signed = await callSmall({ csr: await csrFor([SLEEP]), validityDuration: 1800 });
      assert.ok(Math.abs(lifetimeSeconds(signed.certChain![0]!) - 1860) <= 2);
    } finally {
      await small.close();
    }
  });

  it("refuses another node's identity with PERMISSION_DENIED naming node and identity", async () => {
    const res = await call('token-node-1', { csr: await csrFor([HTTPBIN]), metadata: impersonating(HTTPBIN) });
    assert.equal(res.error?.code, grpc.status.PERMISSION_DENIED);
    assert.match(res.error!.details, /node node-1 may not request a certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/httpbin/);
    // The same request from the node that runs httpbin succeeds.
    const ok = await call('token-node-2', { csr: await csrFor([HTTPBIN]), metadata: impersonating(HTTPBIN) });
    assert.equal(ok.error, undefined);
  });

  it('refuses an identity from another trust domain', async () => {
    const res = await call('token-node-1', { csr: await csrFor(['spiffe://evil.example/ns/default/sa/sleep']) });
    assert.equal(res.error?.code, grpc.status.PERMISSION_DENIED);
    assert.match(res.error!.details, /trust domain evil\.example/);
  });

  it('refuses unauthenticated callers', async () => {
    for (const token of [null, 'wrong']) {
      const res = await call(token, { csr: await csrFor([SLEEP]) });
      assert.equal(res.error?.code, grpc.status.UNAUTHENTICATED, `token ${token}`);
    }
  });

  it('refuses bad CSRs with INVALID_ARGUMENT and says why', async () => {
    const cases: [string, object, RegExp][] = [
      ['garbage', { csr: 'not a csr' }, /CSR parsing error/],
      ['no SAN', { csr: await csrFor([]) }, /exactly one URI SAN.*found 0/],
      ['two SANs', { csr: await csrFor([SLEEP, HTTPBIN]) }, /exactly one URI SAN.*found 2/],
      ['not SPIFFE', { csr: await csrFor(['https://example.com/x']) }, /is not a spiffe:/],
      ['SAN ≠ ImpersonatedIdentity', { csr: await csrFor([SLEEP]), metadata: impersonating(HTTPBIN) }, /does not match ImpersonatedIdentity/],
    ];
    // A key type Istio's CA does not sign: RSA with a 1024-bit modulus.
    const rsaAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 1024 };
    const rsa = (await webcrypto.subtle.generateKey(rsaAlg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const weak = await x509.Pkcs10CertificateRequestGenerator.create({
      keys: rsa,
      signingAlgorithm: rsaAlg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: SLEEP }])],
    });
    cases.push(['RSA-1024 key', { csr: weak.toString('pem') }, /RSA 1024-bit is not allowed/]);
    for (const [what, req, msg] of cases) {
      const res = await call('token-node-1', req);
      assert.equal(res.error?.code, grpc.status.INVALID_ARGUMENT, what);
      assert.match(res.error!.details, msg, what);
    }
  });

  it('counts requests and issuances in /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${fx.server.debugPort}/metrics`)).text();
    assert.match(text, /citadel_server_success_cert_issuance_count [4-9]/);
    assert.match(text, /citadel_server_csr_count \d+/);
  });
});

describe('mesh CA material', () => {
  it('creates the root once and reuses it from the state directory', async () => {
    const { dir, cleanup } = tempDir('root');
    try {
      const first = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
      const again = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
      assert.equal(again.rootPem, first.rootPem);
      const root = new X509Certificate(first.rootPem);
      assert.ok(root.ca);
      assert.match(root.subject, /O=cluster\.local/);
    } finally {
      cleanup();
    }
  });

  it('signs with a user-supplied intermediate and returns [leaf, intermediate, root]', async () => {
    const { dir, cleanup } = tempDir('inter');
    try {
      const root = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3650 * 86400 });
      const keys = await generateKeyPair();
      const interPem = await signCertificate({
        publicKey: keys.publicKey,
        issuerCertPem: root.certPem,
        issuerKeyPem: root.keyPem,
        uriSans: [],
        ttlSeconds: 365 * 86400,
        isCA: true,
        subject: 'O=cluster.local, CN=intermediate',
      });
      const certFile = join(dir, 'ca-cert.pem');
      const keyFile = join(dir, 'ca-key.pem');
      writeFileSync(certFile, interPem + root.certPem);
      writeFileSync(keyFile, privateKeyToPem(keys.privateKey));
      const ca = await MeshCa.load({ trustDomain: 'cluster.local', certFile, keyFile });
      assert.equal(ca.rootPem, root.certPem);
      const chain = await ca.signWorkload(await csrFor([SLEEP]), SLEEP, 3600);
      assert.equal(chain.length, 3);
      assert.equal(chain[1], interPem);
      verifyCertificateChain(chain, [root.certPem]);

      // A key that does not belong to the certificate is refused, naming the file.
      writeFileSync(keyFile, root.keyPem);
      await assert.rejects(MeshCa.load({ trustDomain: 'cluster.local', certFile, keyFile }), /CA key does not match the first certificate of .*ca-cert\.pem/);
      // A bundle without its root is refused.
      writeFileSync(certFile, interPem);
      await assert.rejects(MeshCa.load({ trustDomain: 'cluster.local', certFile, keyFile }), /not a self-signed root/);
    } finally {
      cleanup();
    }
  });
});
