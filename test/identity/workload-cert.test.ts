import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRootCA, issueWorkloadCertificate, signCertificate } from '../../src/identity/certs.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/identity/csr.js';
import { WorkloadCertificate } from '../../src/identity/workload-cert.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';

test('issueWorkloadCertificate yields a verified certificate whose refresh time is the half-life', async () => {
  const ca = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3600 });
  const wc = await issueWorkloadCertificate(ca, ID, 1000);
  assert.equal(wc.identity, ID);
  assert.deepEqual(wc.spiffe, { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' });
  assert.equal(wc.trustDomain, 'cluster.local');
  assert.equal(wc.chainPem.length, 1);
  assert.deepEqual(wc.rootPems, [ca.certPem]);
  const mid = (wc.notBefore.getTime() + wc.notAfter.getTime()) / 2;
  assert.equal(wc.refreshAt().getTime(), mid);
  assert.equal(wc.isExpired(), false);
  assert.equal(wc.isExpired(new Date(wc.notAfter.getTime() + 1)), true);
});

test('fromPem moves a trailing root out of the chain and rejects a key that does not match', async () => {
  const ca = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3600 });
  const keys = await generateKeyPair();
  const certPem = await signCertificate({
    csr: await createCsr({ keys, uriSans: [ID] }),
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: ['https://not-spiffe.example', ID],
    ttlSeconds: 600,
  });
  const keyPem = privateKeyToPem(keys.privateKey);
  const wc = WorkloadCertificate.fromPem({ keyPem, chainPem: certPem + ca.certPem, rootPems: ca.certPem });
  assert.equal(wc.identity, ID, 'the first SPIFFE SAN is the identity');
  assert.deepEqual(wc.chainPem, [certPem]);
  assert.equal(wc.certChainPem, certPem);

  const otherKey = privateKeyToPem((await generateKeyPair()).privateKey);
  assert.throws(() => WorkloadCertificate.fromPem({ keyPem: otherKey, chainPem: certPem, rootPems: ca.certPem }), /private key does not match/);
  const otherCa = await createRootCA({ trustDomain: 'cluster.local', ttlSeconds: 3600 });
  assert.throws(() => WorkloadCertificate.fromPem({ keyPem, chainPem: certPem, rootPems: otherCa.certPem }), /does not chain to a trusted root/);
  assert.throws(() => WorkloadCertificate.fromPem({ keyPem, chainPem: 'nothing', rootPems: ca.certPem }), /contains no PEM certificate/);
  assert.throws(
    () => new WorkloadCertificate({ identity: 'spiffe://x/y', keyPem, chainPem: [certPem], rootPems: [], notBefore: new Date(), notAfter: new Date() }),
    /is not a SPIFFE workload identity/,
  );
});
