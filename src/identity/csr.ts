// Workload keys and PKCS#10 certificate requests (RFC 2986) made with node:crypto and a few DER helpers. The node
// proxy makes one key and CSR per workload identity it serves; building them here rather than with @peculiar/x509
// keeps that library (and its reflection and ASN.1 stack) out of the proxy. The CA parses the requests with
// @peculiar/x509 (`parseCsr` in certs.ts).
import { type KeyObject, generateKeyPair as generateKeyPairCallback, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { bitString, boolean, ia5String, implicit, integer, objectIdentifier, octetString, sequence, setOf } from './der.js';

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
/** GeneralName choices (RFC 5280 §4.2.1.6). */
const DNS_NAME = 2;
const UNIFORM_RESOURCE_IDENTIFIER = 6;

export interface WorkloadKeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

const generateKeyPairAsync = promisify(generateKeyPairCallback);

/** ECDSA P-256 (signatures with SHA-256): what Istio uses for ECC workload certificates. */
export async function generateKeyPair(): Promise<WorkloadKeyPair> {
  return generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
}

/** PKCS#8 PEM, newline-terminated. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function pemEncode(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Creates a PEM CSR signed by `keys`, asking for the given SANs (the CA decides what it actually grants). The subject
 * is empty, as in Istio, so the SubjectAlternativeName extension is critical (RFC 5280 §4.2.1.6).
 */
export async function createCsr(opts: { keys: WorkloadKeyPair; uriSans: string[]; dnsSans?: string[] }): Promise<string> {
  const { privateKey, publicKey } = opts.keys;
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    // The signature algorithm below is fixed to ecdsa-with-SHA256.
    throw new TypeError(`createCsr needs an ECDSA P-256 key, got ${privateKey.asymmetricKeyType} ${privateKey.asymmetricKeyDetails?.namedCurve ?? ''}`);
  }
  const names = [
    ...opts.uriSans.map((uri) => implicit(UNIFORM_RESOURCE_IDENTIFIER, ia5String(uri))),
    ...(opts.dnsSans ?? []).map((dns) => implicit(DNS_NAME, ia5String(dns))),
  ];
  const extensionRequest = sequence(
    objectIdentifier(OID_EXTENSION_REQUEST),
    setOf(sequence(sequence(objectIdentifier(OID_SUBJECT_ALT_NAME), boolean(true), octetString(sequence(...names))))),
  );
  const requestInfo = sequence(
    integer(0), // version 1
    sequence(), // empty subject
    publicKey.export({ type: 'spki', format: 'der' }),
    implicit(0, names.length ? setOf(extensionRequest) : setOf()), // attributes
  );
  // For EC keys node:crypto signs in the DER (r, s) form X.509 expects.
  const signature = await new Promise<Buffer>((resolve, reject) =>
    sign('sha256', requestInfo, privateKey, (err, sig) => (err ? reject(err) : resolve(sig))),
  );
  const request = sequence(requestInfo, sequence(objectIdentifier(OID_ECDSA_WITH_SHA256)), bitString(signature));
  return pemEncode(request, 'CERTIFICATE REQUEST');
}
