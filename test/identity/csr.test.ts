import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { parseCsr } from '../../src/identity/certs.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/identity/csr.js';
import { integer, objectIdentifier, octetString, sequence, setOf } from '../../src/identity/der.js';
import { CertificateError } from '../../src/identity/verify.js';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const ECDSA_WITH_SHA256 = sequence(objectIdentifier('1.2.840.10045.4.3.2'));

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
}

function derToCsrPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
}

test("the CA's parser verifies a CSR made with node:crypto and reads its SANs and key", async () => {
  const keys = await generateKeyPair();
  const csr = await createCsr({ keys, uriSans: [ID], dnsSans: ['reviews.default.svc'] });
  const parsed = await parseCsr(csr);
  assert.deepEqual(parsed.uriSans, [ID]);
  assert.deepEqual(parsed.dnsSans, ['reviews.default.svc']);
  assert.equal(parsed.publicKeyPem, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  assert.match(privateKeyToPem(keys.privateKey), /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);

  // Istio's shape: empty subject, ecdsa-with-SHA256, and a critical SAN (required with an empty subject).
  const request = new x509.Pkcs10CertificateRequest(csr);
  assert.equal(request.subject, '');
  assert.deepEqual(request.signatureAlgorithm, { name: 'ECDSA', hash: { name: 'SHA-256' } });
  const san = request.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension);
  assert.equal(san?.critical, true);

  const bare = await parseCsr(await createCsr({ keys, uriSans: [] }));
  assert.deepEqual([bare.uriSans, bare.dnsSans], [[], []]);
});

test('a tampered CSR fails verification', async () => {
  const csr = await createCsr({ keys: await generateKeyPair(), uriSans: [ID] });
  // One byte inside the signed part (the SAN string).
  const renamed = pemToDer(csr);
  const at = renamed.indexOf(Buffer.from('reviews'));
  assert.ok(at > 0);
  renamed[at] = 'R'.charCodeAt(0);
  await assert.rejects(parseCsr(derToCsrPem(renamed)), (e: Error) => e instanceof CertificateError && /signature is invalid/.test(e.message));
  // The request signed by another key: the signature must be by the key inside the request.
  const signatureOf = (der: Buffer) => der.subarray(der.indexOf(ECDSA_WITH_SHA256) + ECDSA_WITH_SHA256.length);
  const original = pemToDer(csr);
  const requestInfo = original.subarray(4, original.indexOf(ECDSA_WITH_SHA256)); // after the outer 30 82 LL LL
  const foreign = signatureOf(pemToDer(await createCsr({ keys: await generateKeyPair(), uriSans: [ID] })));
  const swapped = sequence(requestInfo, ECDSA_WITH_SHA256, foreign);
  assert.deepEqual(sequence(requestInfo, ECDSA_WITH_SHA256, signatureOf(original)), original, 'the request splits where expected');
  await assert.rejects(parseCsr(derToCsrPem(swapped)), /signature is invalid/);
  await assert.rejects(parseCsr('not a csr'), /cannot parse certificate signing request/);
});

test('createCsr refuses what it cannot encode faithfully', async () => {
  const keys = await generateKeyPair();
  await assert.rejects(createCsr({ keys, uriSans: ['spiffe://cluster.local/ns/é/sa/x'] }), /non-ASCII character; an IA5String cannot hold it/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await assert.rejects(createCsr({ keys: rsa, uriSans: [ID] }), /needs an ECDSA P-256 key, got rsa/);
});

test('DER encodings of the edge cases: long lengths, multi-byte OID arcs, INTEGER sign, SET OF order', () => {
  assert.equal(objectIdentifier('1.2.840.113549.1.9.14').toString('hex'), '06092a864886f70d01090e');
  assert.equal(integer(0).toString('hex'), '020100');
  assert.equal(integer(127).toString('hex'), '02017f');
  assert.equal(integer(128).toString('hex'), '02020080');
  assert.equal(integer(65536).toString('hex'), '0203010000');
  assert.equal(octetString(Buffer.alloc(200)).subarray(0, 3).toString('hex'), '0481c8');
  assert.equal(octetString(Buffer.alloc(300)).subarray(0, 4).toString('hex'), '0482012c');
  assert.equal(setOf(integer(2), integer(1)).toString('hex'), '3106020101020102');
  assert.throws(() => objectIdentifier('3.1'), /invalid object identifier/);
  assert.throws(() => integer(-1), /not a non-negative safe integer/);
});
