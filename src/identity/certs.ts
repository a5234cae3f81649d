// The CA's side of certificates: parsing and checking CSRs, creating the self-signed root, and signing workload,
// serving and intermediate certificates, with @peculiar/x509 over Node's WebCrypto. The node proxy never loads this
// module (that library and its reflection and ASN.1 stack cost it memory): it makes keys and CSRs with csr.ts and
// reads and verifies certificates with verify.ts. All values cross module boundaries as PEM strings so they can go
// into gRPC messages, files and `tls.createSecureContext` unchanged.
import 'reflect-metadata'; // @peculiar/x509 depends on tsyringe, which needs the Reflect metadata API.
import * as x509 from '@peculiar/x509';
import { KeyObject, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { createCsr, generateKeyPair, privateKeyToPem } from './csr.js';
import { CertificateError } from './verify.js';
import { WorkloadCertificate } from './workload-cert.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

// The project compiles without the DOM lib, so name the WebCrypto types through node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;

/** The self-signed root's key: ECDSA P-256 with SHA-256 signatures, like the workload keys csr.ts makes. */
const ROOT_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

// A CA key may be user supplied (Istio "plug-in CA" cacerts are often RSA), so the signing algorithm is derived
// from the key itself rather than assumed.
function signingAlgorithmFor(keyPem: string): { importAlg: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams; signAlg: Algorithm | EcdsaParams } {
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new CertificateError(`cannot parse private key PEM: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const named = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!named) throw new CertificateError(`unsupported EC curve ${curve} in private key`);
    const hash = named === 'P-256' ? 'SHA-256' : 'SHA-384';
    return { importAlg: { name: 'ECDSA', namedCurve: named }, signAlg: { name: 'ECDSA', hash } as EcdsaParams };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { importAlg: alg, signAlg: alg };
  }
  throw new CertificateError(`unsupported private key type ${key.asymmetricKeyType}`);
}

async function importSigningKey(keyPem: string): Promise<{ key: CryptoKey; signAlg: Algorithm | EcdsaParams }> {
  const { importAlg, signAlg } = signingAlgorithmFor(keyPem);
  // Re-export through node:crypto so PKCS#1 / SEC1 PEMs ("RSA PRIVATE KEY", "EC PRIVATE KEY") are accepted too.
  const pkcs8 = createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' });
  const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign']);
  return { key: key as CryptoKey, signAlg };
}

export interface ParsedCsr {
  publicKey: CryptoKey;
  /** SubjectPublicKeyInfo PEM, handy for logging and for comparing keys. */
  publicKeyPem: string;
  uriSans: string[];
  dnsSans: string[];
}

function sansOf(ext: x509.SubjectAlternativeNameExtension | null, type: x509.GeneralNameType): string[] {
  if (!ext) return [];
  return ext.names.items.filter((n) => n.type === type).map((n) => n.value);
}

/** Parses a PEM CSR and checks its self-signature (proof that the requester holds the private key). */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new CertificateError(`cannot parse certificate signing request: ${(e as Error).message}`);
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch (e) {
    throw new CertificateError(`cannot verify certificate signing request signature: ${(e as Error).message}`);
  }
  if (!valid) throw new CertificateError('certificate signing request signature is invalid');
  const san = (csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) ??
    null) as x509.SubjectAlternativeNameExtension | null;
  const spki = csr.publicKey;
  return {
    publicKey: (await spki.export()) as CryptoKey,
    publicKeyPem: spki.toString('pem') + '\n',
    uriSans: sansOf(san, 'url'),
    dnsSans: sansOf(san, 'dns'),
  };
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString('hex');
}

// Allow for small clock differences between the CA and the peers that verify its certificates.
const BACKDATE_MS = 60_000;

/** Creates a self-signed root CA with subject O=<trustDomain> (Istio's self-signed root uses the same). */
export async function createRootCA(opts: { trustDomain: string; ttlSeconds: number; commonName?: string }): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ROOT_KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: opts.commonName ? `O=${opts.trustDomain}, CN=${opts.commonName}` : `O=${opts.trustDomain}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + opts.ttlSeconds * 1000),
    signingAlgorithm: ROOT_KEY_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: privateKeyToPem(KeyObject.from(keys.privateKey)) };
}

export interface SignCertificateOptions {
  /** PEM CSR; its signature is verified. Exactly one of `csr` / `publicKey` is required. */
  csr?: string;
  /** The subject public key, as a KeyObject or SPKI PEM. */
  publicKey?: KeyObject | string;
  issuerCertPem: string;
  issuerKeyPem: string;
  uriSans: string[];
  dnsSans?: string[];
  ipSans?: string[];
  ttlSeconds: number;
  /** Issue an intermediate CA certificate instead of a workload certificate. */
  isCA?: boolean;
  /** Subject DN; workload certificates default to an empty subject (identity lives in the SAN, as in Istio). */
  subject?: string;
}

/** Signs a certificate with the issuer's key; returns the certificate PEM (without the issuer chain). */
export async function signCertificate(opts: SignCertificateOptions): Promise<string> {
  if ((opts.csr === undefined) === (opts.publicKey === undefined)) {
    throw new CertificateError('signCertificate needs exactly one of csr or publicKey');
  }
  if (!(opts.ttlSeconds > 0)) throw new CertificateError(`invalid certificate TTL ${opts.ttlSeconds}s`);
  let publicKey: x509.PublicKeyType;
  if (opts.csr !== undefined) {
    publicKey = (await parseCsr(opts.csr)).publicKey;
  } else {
    const spki = typeof opts.publicKey === 'string' ? opts.publicKey : opts.publicKey!.export({ type: 'spki', format: 'der' });
    publicKey = await new x509.PublicKey(spki).export();
  }

  let issuer: x509.X509Certificate;
  try {
    issuer = new x509.X509Certificate(opts.issuerCertPem);
  } catch (e) {
    throw new CertificateError(`cannot parse issuer certificate: ${(e as Error).message}`);
  }
  const { key: signingKey, signAlg } = await importSigningKey(opts.issuerKeyPem);
  const names: x509.JsonGeneralName[] = [
    ...opts.uriSans.map((value) => ({ type: 'url' as const, value })),
    ...(opts.dnsSans ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipSans ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const subject = opts.subject ?? '';
  const extensions: x509.Extension[] = [];
  if (opts.isCA) {
    extensions.push(
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    );
  } else {
    extensions.push(
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    );
  }
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer, false));
  // RFC 5280 §4.2.1.6: the SAN extension must be critical when the subject is empty.
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, subject === ''));

  const now = Date.now();
  let notAfter = now + opts.ttlSeconds * 1000;
  // Never outlive the issuer: peers would reject the tail end of the certificate's life anyway.
  notAfter = Math.min(notAfter, issuer.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: issuer.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(notAfter),
    signingAlgorithm: signAlg,
    publicKey,
    signingKey,
    extensions,
  });
  return cert.toString('pem') + '\n';
}

/**
 * Issues a workload certificate directly from a CA key held in this process (key generation, CSR, signing).
 * Used where the CA is local (tests, benchmarks); proxies go through the CA service.
 */
export async function issueWorkloadCertificate(
  ca: CertificateAuthority,
  identity: string,
  ttlSeconds: number,
): Promise<WorkloadCertificate> {
  const keys = await generateKeyPair();
  const csr = await createCsr({ keys, uriSans: [identity] });
  const certPem = await signCertificate({ csr, issuerCertPem: ca.certPem, issuerKeyPem: ca.keyPem, uriSans: [identity], ttlSeconds });
  return WorkloadCertificate.fromPem({ keyPem: privateKeyToPem(keys.privateKey), chainPem: [certPem], rootPems: [ca.certPem] });
}
