import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, createSign, createVerify, generateKeyPairSync, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createRootCA, signCertificate } from '../../src/identity/certs.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/identity/csr.js';
import { certificateUriSans, splitPemBundle, verifyCertificateChain } from '../../src/identity/verify.js';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';

test('root CA and workload certificate have the shapes TLS peers need', async () => {
  const ca = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3600 });
  const root = new X509Certificate(ca.certPem);
  assert.equal(root.ca, true);
  assert.equal(root.subject, 'O=cluster.local');
  assert.ok(root.checkIssued(root));

  const keys = await generateKeyPair();
  const pem = await signCertificate({
    csr: await createCsr({ keys, uriSans: [ID] }),
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: [ID],
    dnsSans: ['reviews'],
    ipSans: ['10.0.0.7'],
    ttlSeconds: 600,
  });
  const leaf = new X509Certificate(pem);
  assert.equal(leaf.ca, false);
  assert.ok(leaf.verify(root.publicKey));
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.match(leaf.subjectAltName!, /URI:spiffe:\/\/cluster.local\/ns\/default\/sa\/reviews/);
  assert.match(leaf.subjectAltName!, /IP Address:10.0.0.7/);
  assert.deepEqual(certificateUriSans(pem), [ID]);
  assert.deepEqual(certificateUriSans(leaf.raw), [ID]);
  const lifetime = new Date(leaf.validTo).getTime() - Date.now();
  assert.ok(lifetime > 500_000 && lifetime <= 600_000, `lifetime ${lifetime}`);
  // The certificate's key is the CSR's key: sign with the private key, verify with the certificate.
  const keyPem = privateKeyToPem(keys.privateKey);
  const sig = createSign('sha256').update('x').sign(keyPem);
  assert.ok(createVerify('sha256').update('x').verify(leaf.publicKey, sig));
  verifyCertificateChain([pem], [ca.certPem]);
});

test('a certificate never outlives its issuer', async () => {
  const ca = await createRootCA({ trustDomain: 'td', ttlSeconds: 120 });
  const pem = await signCertificate({
    publicKey: (await generateKeyPair()).publicKey,
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: ['spiffe://td/ns/a/sa/b'],
    ttlSeconds: 86400,
  });
  assert.equal(new X509Certificate(pem).validTo, new X509Certificate(ca.certPem).validTo);
});

test('chain verification through an intermediate, and the failures it names', async () => {
  const ca = await createRootCA({ trustDomain: 'td', ttlSeconds: 3600 });
  const otherCa = await createRootCA({ trustDomain: 'td', ttlSeconds: 3600 });
  const interKeys = await generateKeyPair();
  const interPem = await signCertificate({
    publicKey: interKeys.publicKey,
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: [],
    ttlSeconds: 1800,
    isCA: true,
    subject: 'O=intermediate',
  });
  const inter = { certPem: interPem, keyPem: privateKeyToPem(interKeys.privateKey) };
  const leafPem = await signCertificate({
    publicKey: (await generateKeyPair()).publicKey,
    issuerCertPem: inter.certPem,
    issuerKeyPem: inter.keyPem,
    uriSans: ['spiffe://td/ns/a/sa/b'],
    ttlSeconds: 600,
  });
  verifyCertificateChain([leafPem, interPem], [ca.certPem]);
  verifyCertificateChain([leafPem, interPem, ca.certPem], [ca.certPem]);
  assert.deepEqual(splitPemBundle(leafPem + interPem + ca.certPem), [leafPem, interPem, ca.certPem]);
  assert.throws(() => verifyCertificateChain([leafPem], [ca.certPem]), /leaf certificate \(issuer O=intermediate\) does not chain to a trusted root/);
  assert.throws(() => verifyCertificateChain([leafPem, interPem], [otherCa.certPem]), /chain certificate #1 .* does not chain to a trusted root/);
  assert.throws(() => verifyCertificateChain([leafPem, interPem], [ca.certPem], new Date(Date.now() + 7200_000)), /leaf certificate expired at/);
  assert.throws(() => verifyCertificateChain([ca.certPem], [ca.certPem]), /leaf certificate is a root certificate/);
  // A leaf (CA:FALSE) must not act as an issuer.
  const leafKeys = await generateKeyPair();
  const leafAsIssuer = await signCertificate({
    publicKey: leafKeys.publicKey,
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: ['spiffe://td/ns/a/sa/evil'],
    ttlSeconds: 600,
    subject: 'O=evil',
  });
  const forged = await signCertificate({
    publicKey: (await generateKeyPair()).publicKey,
    issuerCertPem: leafAsIssuer,
    issuerKeyPem: privateKeyToPem(leafKeys.privateKey),
    uriSans: ['spiffe://td/ns/a/sa/admin'],
    ttlSeconds: 600,
  });
  assert.throws(() => verifyCertificateChain([forged, leafAsIssuer], [ca.certPem]), /chain certificate #1 .* is not a CA certificate/);
});

test('an RSA CA key (plug-in CA) can sign workload certificates', async () => {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), alg, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey(
      'spki',
      createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
      alg,
      true,
      ['verify'],
    ),
  };
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=rsa.local',
    keys: keys as never,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const rootPem = root.toString('pem');
  const leafPem = await signCertificate({
    publicKey: (await generateKeyPair()).publicKey,
    issuerCertPem: rootPem,
    issuerKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }) as string,
    uriSans: ['spiffe://rsa.local/ns/a/sa/b'],
    ttlSeconds: 600,
  });
  verifyCertificateChain([leafPem], [rootPem]);
  await assert.rejects(
    signCertificate({ publicKey: rootPem, csr: 'x', issuerCertPem: rootPem, issuerKeyPem: 'x', uriSans: [], ttlSeconds: 1 }),
    /exactly one of csr or publicKey/,
  );
  await assert.rejects(
    signCertificate({ publicKey: (await generateKeyPair()).publicKey, issuerCertPem: rootPem, issuerKeyPem: 'garbage', uriSans: [], ttlSeconds: 1 }),
    /cannot parse private key PEM/,
  );
});
