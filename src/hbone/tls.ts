// mTLS for HBONE, matching ztunnel: TLS 1.3 only, AES-GCM suites only, ALPN h2, no SNI, SPIFFE identities.
//
// Certificate selection: the client sends no SNI (ztunnel never does), so a server cannot pick a certificate
// from the handshake. Instead the HBONE server asks for the certificate of the pod the connection was
// addressed to (its local address, which in in-pod mode is the pod IP) before the handshake starts, and hands
// the socket to a TLS server built for that certificate (see `HboneServer`'s `certificateFor`). TLS state is
// cached per WorkloadCertificate object, so a rotated certificate (a new object) gets new state automatically.
import * as tls from 'node:tls';
import { subjectAltNameUris } from '../identity/verify.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';

export const HBONE_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';
export const HBONE_ALPN = 'h2';

export class HboneIdentityError extends Error {
  override name = 'HboneIdentityError';
}

const contexts = new WeakMap<WorkloadCertificate, tls.SecureContext>();

/** The client-side TLS 1.3 context presenting `cert` and trusting its roots. */
function clientSecureContext(cert: WorkloadCertificate): tls.SecureContext {
  let ctx = contexts.get(cert);
  if (!ctx) {
    ctx = tls.createSecureContext({
      key: cert.keyPem,
      cert: cert.certChainPem,
      ca: cert.rootPems,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: HBONE_CIPHERSUITES,
    });
    contexts.set(cert, ctx);
  }
  return ctx;
}

/**
 * Options for the `tls.Server` that terminates connections addressed to `cert`'s pod. One such server exists
 * per certificate and is fed accepted sockets with `emit('connection')`; it never listens itself.
 * `rejectUnauthorized` is false only so that the HBONE server can log *why* a client was refused: the chain
 * result (`authorized`) is checked unconditionally before any HTTP/2 byte is read (see HboneServer).
 */
export function serverTlsOptions(cert: WorkloadCertificate, handshakeTimeoutMs: number): tls.TlsOptions {
  return {
    key: cert.keyPem,
    cert: cert.certChainPem,
    ca: cert.rootPems,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: HBONE_CIPHERSUITES,
    ALPNProtocols: [HBONE_ALPN],
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/**
 * URI SANs of a peer certificate that parse as SPIFFE workload identities. Read from the SAN text Node already
 * produced for the verified certificate: parsing the DER again on every connection would cost more.
 */
function peerIdentities(peer: tls.PeerCertificate): string[] {
  try {
    return subjectAltNameUris(peer.subjectaltname ?? '').filter((u) => parseSpiffeId(u) !== undefined);
  } catch {
    // A SAN we cannot read names no identity: the caller refuses the peer with its usual identity error.
    return [];
  }
}

/**
 * Server-side client check after the chain verified: the client must present a SPIFFE identity in our trust
 * domain. Which identity is allowed is left to authorization. Returns the client's identity.
 */
export function verifyClientTrustDomain(socket: tls.TLSSocket, trustDomain: string): string {
  const peer = socket.getPeerCertificate();
  const ids = peer?.raw ? peerIdentities(peer) : [];
  const match = ids.find((id) => parseSpiffeId(id)!.trustDomain === trustDomain);
  if (!match) {
    throw new HboneIdentityError(
      `identity verification error: peer did not present the expected trustdomain (${trustDomain}), got ${ids.join(',')}`,
    );
  }
  return match;
}

/** Client-side server check: the server's URI SAN must be one of the expected identities. */
function verifyServerIdentity(peer: tls.PeerCertificate, expected: readonly string[]): HboneIdentityError | undefined {
  const ids = peerIdentities(peer);
  if (ids.some((id) => expected.includes(id))) return undefined;
  return new HboneIdentityError(
    `identity verification error: peer did not present the expected SAN (${expected.join(',')}), got ${ids.join(',')}`,
  );
}

/**
 * Options for `tls.connect({socket, …})` from a workload holding `cert` to a peer that must be one of
 * `expectedIdentities`. `servername` is deliberately absent: Node then sends no SNI extension (verified by
 * test), like ztunnel. Session resumption stays off because no `session` is ever passed.
 */
export function clientTlsOptions(cert: WorkloadCertificate, expectedIdentities: readonly string[]): tls.ConnectionOptions {
  return {
    secureContext: clientSecureContext(cert),
    ALPNProtocols: [HBONE_ALPN],
    rejectUnauthorized: true,
    // Called only after the chain verified against the mesh roots; hostnames are never checked, only SPIFFE.
    checkServerIdentity: (_host, peer) => verifyServerIdentity(peer, expectedIdentities),
  };
}
