import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createRootCA, signCertificate } from '../../src/identity/certs.js';
import { generateKeyPair } from '../../src/identity/csr.js';
import { CertificateError, certificateUriSans, subjectAltNameUris } from '../../src/identity/verify.js';

const ADMIN = 'spiffe://td/ns/x/sa/admin';

test('subjectAltNameUris reads plain and quoted entries as node:crypto prints them', () => {
  assert.deepEqual(subjectAltNameUris('URI:spiffe://td/ns/a/sa/b, DNS:b.a.svc, IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1'), ['spiffe://td/ns/a/sa/b']);
  assert.deepEqual(subjectAltNameUris('URI:sp ace, URI:x:y:z'), ['sp ace', 'x:y:z']);
  // Quoted values are JSON string literals: \u002c is a comma inside the value, not a separator.
  assert.deepEqual(
    subjectAltNameUris(String.raw`URI:"spiffe://evil\u002c URI:spiffe://td/ns/x/sa/admin", URI:"a\"b\\c'd", DirName:"CN=a\u002cO=b", othername:"XmppAddr:x\u002cy", URI:ok`),
    ['spiffe://evil, URI:spiffe://td/ns/x/sa/admin', `a"b\\c'd`, 'ok'],
  );
  assert.deepEqual(subjectAltNameUris(''), []);
  for (const bad of ['spiffe', 'URI:"unterminated', 'URI:"x"y', String.raw`URI:"bad \q escape"`, 'URI:a,URI:b']) {
    assert.throws(() => subjectAltNameUris(bad), (e: Error) => e instanceof CertificateError && /cannot parse subjectAltName/.test(e.message), bad);
  }
});

test('a crafted SAN value cannot smuggle in a second URI', async () => {
  const ca = await createRootCA({ trustDomain: 'td', ttlSeconds: 3600 });
  const hostile = [`spiffe://td/ns/a/sa/b, URI:${ADMIN}`, `x", URI:${ADMIN}, URI:"y`, `q\\", URI:${ADMIN}`, 'ctl\u0001é'];
  const pem = await signCertificate({
    publicKey: (await generateKeyPair()).publicKey,
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    uriSans: hostile,
    dnsSans: [`d, URI:${ADMIN}`],
    ttlSeconds: 600,
  });
  // The quoted form is what makes this safe; fail loudly if Node ever prints it differently.
  assert.match(new X509Certificate(pem).subjectAltName!, /^URI:"spiffe:\/\/td\/ns\/a\/sa\/b\\u002c URI:/);
  const uris = certificateUriSans(pem);
  assert.deepEqual(uris, hostile);
  assert.ok(!uris.includes(ADMIN));
});

test('certificateUriSans: DER or PEM, none without a SAN, CertificateError for garbage', async () => {
  const ca = await createRootCA({ trustDomain: 'td', ttlSeconds: 3600 });
  const root = new X509Certificate(ca.certPem);
  assert.equal(root.subjectAltName, undefined);
  assert.deepEqual(certificateUriSans(ca.certPem), []);
  assert.deepEqual(certificateUriSans(root.raw), []);
  assert.throws(() => certificateUriSans(Buffer.from('not a certificate')), (e: Error) => e instanceof CertificateError && /cannot parse certificate/.test(e.message));
});
