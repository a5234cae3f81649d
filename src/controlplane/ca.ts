// The mesh certificate authority: its signing material (a self-signed root made on first start and kept in the state
// directory, or the user's own root/intermediate) and the IstioCertificateService/CreateCertificate gRPC method.
//
// ztunnel asks for certificates on behalf of the pods on its node: it authenticates as itself and names the pod's
// identity in the CSR's URI SAN and in the request metadata `ImpersonatedIdentity`. The CA signs only if a pod with
// that identity is scheduled on the caller's node, so a compromised node cannot mint other nodes' identities.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createRootCA, parseCsr, signCertificate } from '../identity/certs.js';
import { generateKeyPair, privateKeyToPem } from '../identity/csr.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import { CertificateError, splitPemBundle, verifyCertificateChain } from '../identity/verify.js';
import { AuthenticationError, bearerToken, describeCaller, type NodeAuthenticator } from './auth.js';
import { scopedLogger, type Logger } from './log.js';
import type { ControlPlaneMetrics } from './metrics.js';
import { IMPERSONATED_IDENTITY, caServiceDefinition } from '../xds/protos.js';

/** Istio's SECRET_TTL default. */
export const DEFAULT_WORKLOAD_CERT_TTL_SECONDS = 24 * 3600;
/** Istio's MAX_WORKLOAD_CERT_TTL default (90 days): a longer requested lifetime is refused, not shortened. */
export const MAX_WORKLOAD_CERT_TTL_SECONDS = 90 * 24 * 3600;
/** Istio's self-signed root lives ten years. */
const SELF_SIGNED_ROOT_TTL_SECONDS = 10 * 365 * 24 * 3600;

/** Which workload identities (SPIFFE URIs) have a pod scheduled on a node; answered by the model. */
export interface IdentityPlacement {
  identitiesOnNode(node: string): Set<string>;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

function isSelfSigned(c: X509Certificate): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

/** The CA's signing certificate and key, the chain above it and the root everyone trusts. */
export class MeshCa {
  private constructor(
    readonly trustDomain: string,
    /** The certificate that signs workload certificates (the root itself, or an intermediate). */
    readonly signingCertPem: string,
    private readonly signingKeyPem: string,
    /** Certificates between the signing certificate and the root, signing certificate first; empty for a root. */
    readonly intermediatePems: string[],
    readonly rootPem: string,
  ) {}

  /**
   * Loads the CA named by `certFile`/`keyFile` or, without them, the self-signed root kept in
   * `<stateDir>/ca/`, creating it on first start. `certFile` is a PEM bundle: the signing certificate first, then any
   * intermediates, ending with the self-signed root (a lone root is fine).
   */
  static async load(opts: { trustDomain: string; stateDir?: string; certFile?: string; keyFile?: string }): Promise<MeshCa> {
    if ((opts.certFile === undefined) !== (opts.keyFile === undefined)) {
      throw new Error('--ca-cert and --ca-key must be given together');
    }
    if (opts.certFile !== undefined) {
      return MeshCa.fromPem(opts.trustDomain, readPem(opts.certFile, 'CA certificate'), readPem(opts.keyFile!, 'CA key'), opts.certFile);
    }
    if (opts.stateDir === undefined) throw new Error('the CA needs a state directory or --ca-cert/--ca-key');
    const dir = join(opts.stateDir, 'ca');
    const certPath = join(dir, 'root-cert.pem');
    const keyPath = join(dir, 'root-key.pem');
    if (!existsSync(certPath) || !existsSync(keyPath)) {
      const root = await createRootCA({ trustDomain: opts.trustDomain, ttlSeconds: SELF_SIGNED_ROOT_TTL_SECONDS });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(keyPath, root.keyPem, { mode: 0o600 });
      chmodSync(keyPath, 0o600);
      writeFileSync(certPath, root.certPem);
    }
    return MeshCa.fromPem(opts.trustDomain, readPem(certPath, 'CA certificate'), readPem(keyPath, 'CA key'), certPath);
  }

  static fromPem(trustDomain: string, bundlePem: string, keyPem: string, where = 'CA certificate'): MeshCa {
    const pems = splitPemBundle(bundlePem);
    if (pems.length === 0) throw new Error(`${where}: no PEM certificate found`);
    const certs = pems.map((p) => new X509Certificate(p));
    const root = certs[certs.length - 1]!;
    if (!isSelfSigned(root)) {
      throw new Error(`${where}: the last certificate (${root.subject || 'empty subject'}) is not a self-signed root; append the root certificate`);
    }
    if (!certs[0]!.ca) throw new Error(`${where}: the first certificate is not a CA certificate`);
    // A lone root has nothing to chain; a signing intermediate must chain to the root at the end of the bundle.
    if (pems.length > 1) {
      try {
        verifyCertificateChain(pems, [pems[pems.length - 1]!]);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
    }
    let key;
    try {
      key = createPrivateKey(keyPem);
    } catch (e) {
      throw new Error(`CA key for ${where}: ${(e as Error).message}`);
    }
    const certKey = certs[0]!.publicKey.export({ type: 'spki', format: 'der' });
    if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(certKey)) {
      throw new Error(`CA key does not match the first certificate of ${where}`);
    }
    return new MeshCa(trustDomain, pems[0]!, keyPem, pems.slice(1, -1), pems[pems.length - 1]!);
  }

  /** The chain that follows a leaf this CA signed: intermediates (if any) then the root. */
  private chainAbove(): string[] {
    return this.signingCertPem === this.rootPem ? [this.rootPem] : [this.signingCertPem, ...this.intermediatePems, this.rootPem];
  }

  /** Signs a verified CSR for one SPIFFE identity; returns [leaf, intermediates…, root]. */
  async signWorkload(csrPem: string, identity: string, ttlSeconds: number): Promise<string[]> {
    const leaf = await signCertificate({
      csr: csrPem,
      issuerCertPem: this.signingCertPem,
      issuerKeyPem: this.signingKeyPem,
      uriSans: [identity],
      ttlSeconds,
    });
    return [leaf, ...this.chainAbove()];
  }

  /** A fresh key and certificate for the control plane's own TLS port (istiod's DNS certificate). */
  async issueServing(dnsSans: string[], ipSans: string[], ttlSeconds: number): Promise<{ keyPem: string; chainPem: string }> {
    const keys = await generateKeyPair();
    const leaf = await signCertificate({
      publicKey: keys.publicKey,
      issuerCertPem: this.signingCertPem,
      issuerKeyPem: this.signingKeyPem,
      uriSans: [],
      dnsSans,
      ipSans,
      ttlSeconds,
    });
    // The server sends leaf + intermediates; clients hold the root.
    const chain = [leaf, ...this.chainAbove().filter((p) => p !== this.rootPem)];
    return { keyPem: privateKeyToPem(keys.privateKey), chainPem: chain.join('') };
  }
}

class CaRequestError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/** Decoded IstioCertificateRequest (protobufjs object form). */
interface CertificateRequest {
  csr?: string;
  validityDuration?: number;
  metadata?: { fields?: Record<string, { stringValue?: string }> };
}

export interface CertificateServiceOptions {
  ca: MeshCa;
  authenticator: NodeAuthenticator;
  placement: IdentityPlacement;
  defaultTtlSeconds?: number;
  maxTtlSeconds?: number;
  metrics?: ControlPlaneMetrics;
  log?: Logger;
}

// Key types a workload certificate may carry: what ztunnel generates (P-256) and what Istio's CA accepts besides.
function checkKeyType(publicKeyPem: string): void {
  const key = createPublicKey(publicKeyPem);
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && (details?.namedCurve === 'prime256v1' || details?.namedCurve === 'secp384r1')) return;
  if (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return;
  const what = key.asymmetricKeyType === 'ec' ? `EC ${details?.namedCurve}` : key.asymmetricKeyType === 'rsa' ? `RSA ${details?.modulusLength}-bit` : key.asymmetricKeyType;
  throw new CaRequestError(grpc.status.INVALID_ARGUMENT, `CSR public key type ${what} is not allowed; use ECDSA P-256/P-384 or RSA >= 2048 bits`);
}

export class CertificateService {
  private readonly defaultTtl: number;
  private readonly maxTtl: number;
  private readonly log: Logger;

  constructor(private readonly opts: CertificateServiceOptions) {
    this.defaultTtl = opts.defaultTtlSeconds ?? DEFAULT_WORKLOAD_CERT_TTL_SECONDS;
    this.maxTtl = opts.maxTtlSeconds ?? MAX_WORKLOAD_CERT_TTL_SECONDS;
    this.log = opts.log ?? scopedLogger('ca');
  }

  addTo(server: grpc.Server): void {
    server.addService(caServiceDefinition(), {
      CreateCertificate: (call: grpc.ServerUnaryCall<CertificateRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.createCertificate(call.request, call.metadata).then(
          (certChain) => callback(null, { certChain }),
          (e: unknown) => {
            if (e instanceof CaRequestError) {
              callback({ code: e.code, details: e.message });
            } else {
              this.log.error(`CreateCertificate failed: ${(e as Error).stack ?? e}`);
              callback({ code: grpc.status.INTERNAL, details: `certificate signing failed: ${(e as Error).message}` });
            }
          },
        );
      },
    });
  }

  /** Authenticates, authorizes and signs one request; rejects with CaRequestError carrying the gRPC status. */
  async createCertificate(req: CertificateRequest, metadata: grpc.Metadata): Promise<string[]> {
    const m = this.opts.metrics;
    m?.csrCount.inc();
    const token = bearerToken(metadata);
    let caller;
    let refusal = 'missing or unknown bearer token';
    try {
      caller = token === undefined ? undefined : await this.opts.authenticator.authenticate(token);
    } catch (e) {
      if (!(e instanceof AuthenticationError)) throw e;
      refusal = e.message;
    }
    if (!caller) {
      m?.caAuthFailures.inc();
      throw new CaRequestError(grpc.status.UNAUTHENTICATED, `request authenticate failure: ${refusal}`);
    }

    let parsed;
    try {
      parsed = await parseCsr(req.csr ?? '');
    } catch (e) {
      m?.csrErrors.inc();
      throw new CaRequestError(grpc.status.INVALID_ARGUMENT, `CSR parsing error: ${(e as Error).message}`);
    }
    checkKeyType(parsed.publicKeyPem);
    if (parsed.uriSans.length !== 1) {
      throw new CaRequestError(
        grpc.status.INVALID_ARGUMENT,
        `CSR must carry exactly one URI SAN (the SPIFFE identity), found ${parsed.uriSans.length}${parsed.uriSans.length ? `: ${parsed.uriSans.join(', ')}` : ''}`,
      );
    }
    const identity = parsed.uriSans[0]!;
    const spiffe = parseSpiffeId(identity);
    if (!spiffe) {
      throw new CaRequestError(grpc.status.INVALID_ARGUMENT, `CSR URI SAN "${identity}" is not a spiffe://<trust domain>/ns/<namespace>/sa/<service account> identity`);
    }
    const impersonated = req.metadata?.fields?.[IMPERSONATED_IDENTITY]?.stringValue;
    if (impersonated !== undefined && impersonated !== identity) {
      throw new CaRequestError(
        grpc.status.INVALID_ARGUMENT,
        `CSR URI SAN ${identity} does not match ${IMPERSONATED_IDENTITY} ${impersonated} in the request metadata`,
      );
    }
    const who = describeCaller(caller);
    if (spiffe.trustDomain !== this.opts.ca.trustDomain) {
      throw new CaRequestError(
        grpc.status.PERMISSION_DENIED,
        `${who} may not request ${identity}: trust domain ${spiffe.trustDomain} is not this mesh's ${this.opts.ca.trustDomain}`,
      );
    }
    if (caller.serviceAccount) {
      // A workload speaking for itself gets its own identity and nothing else.
      const sa = caller.serviceAccount;
      if (spiffe.namespace !== sa.namespace || spiffe.serviceAccount !== sa.name) {
        m?.caAuthFailures.inc();
        throw new CaRequestError(grpc.status.PERMISSION_DENIED, `${who} may only request a certificate for its own identity, not ${identity}`);
      }
    } else if (!this.opts.placement.identitiesOnNode(caller.node!).has(identity)) {
      m?.caAuthFailures.inc();
      throw new CaRequestError(
        grpc.status.PERMISSION_DENIED,
        `node ${caller.node} may not request a certificate for ${identity}: no pod with that identity is scheduled on it`,
      );
    }

    const requested = req.validityDuration ?? 0;
    if (requested > this.maxTtl) {
      // istiod's IstioCA refuses rather than shortens (a TTL_ERROR, InvalidArgument), and logs the refusal.
      const problem = `requested TTL ${goDuration(requested)} is greater than the max allowed TTL ${goDuration(this.maxTtl)}`;
      this.log.error(`CSR signing error: ${problem}`);
      throw new CaRequestError(grpc.status.INVALID_ARGUMENT, `CSR signing error (${problem})`);
    }
    const ttl = requested > 0 ? requested : this.defaultTtl;
    let chain: string[];
    try {
      chain = await this.opts.ca.signWorkload(req.csr!, identity, ttl);
    } catch (e) {
      if (e instanceof CertificateError) throw new CaRequestError(grpc.status.INVALID_ARGUMENT, `CSR signing error: ${e.message}`);
      throw e;
    }
    m?.certIssued.inc();
    this.log.info(`issued certificate for ${identity} to ${who} (ttl ${ttl}s)`);
    return chain;
  }
}

/** Go's time.Duration String() for whole seconds, as istiod prints TTLs: `2160h0m0s`, `30m0s`, `45s`. */
function goDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const sec = seconds % 60;
  if (h > 0) return `${h}h${m}m${sec}s`;
  if (m > 0) return `${m}m${sec}s`;
  return `${sec}s`;
}
