// Reading and checking certificates with node:crypto's X509Certificate (OpenSSL, what the TLS stack itself trusts):
// PEM bundles, URI SANs and chain verification. The node proxy needs these on every connection and certificate;
// they stay free of @peculiar/x509 (certs.ts, the CA's side) so the proxy does not load that library.
import { X509Certificate } from 'node:crypto';

export class CertificateError extends Error {
  override name = 'CertificateError';
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into individual certificate PEMs (each newline-terminated). */
export function splitPemBundle(bundle: string): string[] {
  return (bundle.match(PEM_CERT) ?? []).map((p) => p + '\n');
}

/** Index just past the closing quote of the JSON string literal that opens at `open`, or -1 if it is unterminated. */
function endOfQuoted(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return -1;
}

/**
 * The URI entries of a subjectAltName as node:crypto prints it (`X509Certificate#subjectAltName`, a TLS peer's
 * `subjectaltname`): `TYPE:value` entries joined by ", ". Node prints a value holding a character that could break
 * that format (`,` `"` `\` `'` or a control character) as a JSON string literal, so a crafted value cannot pose as a
 * second entry; such values are decoded here, never split.
 */
export function subjectAltNameUris(subjectAltName: string): string[] {
  const fail = (why: string) => new CertificateError(`cannot parse subjectAltName ${JSON.stringify(subjectAltName)}: ${why}`);
  const uris: string[] = [];
  let at = 0;
  while (at < subjectAltName.length) {
    const colon = subjectAltName.indexOf(':', at);
    if (colon < 0) throw fail(`entry at offset ${at} has no type`);
    let value: string;
    let end: number;
    if (subjectAltName[colon + 1] === '"') {
      end = endOfQuoted(subjectAltName, colon + 1);
      if (end < 0) throw fail(`unterminated quoted value at offset ${colon + 1}`);
      try {
        value = JSON.parse(subjectAltName.slice(colon + 1, end)) as string;
      } catch (e) {
        throw fail(`bad quoted value at offset ${colon + 1}: ${(e as Error).message}`);
      }
    } else {
      // An unquoted value never contains a comma.
      end = subjectAltName.indexOf(',', colon + 1);
      if (end < 0) end = subjectAltName.length;
      value = subjectAltName.slice(colon + 1, end);
    }
    if (subjectAltName.slice(at, colon) === 'URI') uris.push(value);
    if (end === subjectAltName.length) break;
    if (!subjectAltName.startsWith(', ', end)) throw fail(`expected ", " at offset ${end}`);
    at = end + 2;
  }
  return uris;
}

/** URI SANs of a certificate given as PEM or DER. */
export function certificateUriSans(cert: string | Uint8Array): string[] {
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
  } catch (e) {
    throw new CertificateError(`cannot parse certificate: ${(e as Error).message}`);
  }
  // Node gives undefined for a certificate without the extension and null for one it cannot decode.
  return parsed.subjectAltName == null ? [] : subjectAltNameUris(parsed.subjectAltName);
}

function parseCertificate(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new CertificateError(`cannot parse ${what}: ${(e as Error).message}`);
  }
}

function checkValidity(cert: X509Certificate, what: string, now: Date): void {
  if (now < new Date(cert.validFrom)) throw new CertificateError(`${what} is not valid before ${cert.validFrom}`);
  if (now > new Date(cert.validTo)) throw new CertificateError(`${what} expired at ${cert.validTo}`);
}

/**
 * Verifies that `chainPems` (leaf first, then intermediates; a trailing root is allowed) chains to one of
 * `rootPems`: issuer names, signatures, CA flags and validity windows. Throws CertificateError naming the
 * certificate that failed.
 */
export function verifyCertificateChain(chainPems: string[], rootPems: string[], now: Date = new Date()): void {
  if (chainPems.length === 0) throw new CertificateError('empty certificate chain');
  if (rootPems.length === 0) throw new CertificateError('no root certificates to verify against');
  const roots = rootPems.map((p, i) => parseCertificate(p, `root certificate #${i}`));
  const chain = chainPems.map((p, i) => parseCertificate(p, i === 0 ? 'leaf certificate' : `chain certificate #${i}`));
  const isRoot = (c: X509Certificate) => roots.some((r) => r.fingerprint256 === c.fingerprint256);
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const what = i === 0 ? 'leaf certificate' : `chain certificate #${i} (${cert.subject || 'empty subject'})`;
    if (isRoot(cert)) {
      if (i === 0) throw new CertificateError('leaf certificate is a root certificate');
      checkValidity(cert, what, now);
      return;
    }
    checkValidity(cert, what, now);
    const next = chain[i + 1];
    if (next && !isRoot(next)) {
      if (!next.ca) throw new CertificateError(`chain certificate #${i + 1} (${next.subject || 'empty subject'}) is not a CA certificate but is used as an issuer`);
      if (!cert.checkIssued(next) || !cert.verify(next.publicKey)) {
        throw new CertificateError(`${what} is not signed by chain certificate #${i + 1}`);
      }
      continue;
    }
    const root = roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (!root) throw new CertificateError(`${what} (issuer ${cert.issuer || 'empty'}) does not chain to a trusted root`);
    checkValidity(root, `root certificate ${root.subject}`, now);
    return;
  }
}
