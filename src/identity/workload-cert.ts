// The certificate a workload (pod) presents on HBONE, both as server and as client, plus the roots it trusts.
// The proxy's secret cache holds one per local workload identity and refreshes it at half-life, like ztunnel.
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey } from 'node:crypto';
import { parseSpiffeId, type SpiffeIdentity } from './spiffe.js';
import { CertificateError, certificateUriSans, splitPemBundle, verifyCertificateChain } from './verify.js';

export interface WorkloadCertificateFields {
  /** SPIFFE URI of the leaf certificate. */
  identity: string;
  keyPem: string;
  /** Leaf first, then intermediates. Roots live in `rootPems`. */
  chainPem: string[];
  rootPems: string[];
  notBefore: Date;
  notAfter: Date;
}

export class WorkloadCertificate implements WorkloadCertificateFields {
  readonly identity: string;
  readonly keyPem: string;
  readonly chainPem: string[];
  readonly rootPems: string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Parsed form of `identity`; WorkloadCertificate only ever holds Istio-shaped SPIFFE identities. */
  readonly spiffe: SpiffeIdentity;

  constructor(f: WorkloadCertificateFields) {
    const spiffe = parseSpiffeId(f.identity);
    if (!spiffe) throw new CertificateError(`workload certificate identity "${f.identity}" is not a SPIFFE workload identity`);
    if (f.chainPem.length === 0) throw new CertificateError(`workload certificate for ${f.identity} has no certificate`);
    this.identity = f.identity;
    this.keyPem = f.keyPem;
    this.chainPem = [...f.chainPem];
    this.rootPems = [...f.rootPems];
    this.notBefore = f.notBefore;
    this.notAfter = f.notAfter;
    this.spiffe = spiffe;
  }

  /**
   * Builds a WorkloadCertificate from PEMs as a CA returns them: checks that the key matches the leaf, that the
   * leaf carries a SPIFFE identity (the first one if several) and that the chain verifies against the roots.
   * `chainPem` may be a bundle string or a list; a root at its end is moved out of the chain.
   */
  static fromPem(opts: { keyPem: string; chainPem: string | string[]; rootPems: string | string[] }): WorkloadCertificate {
    const chain = (Array.isArray(opts.chainPem) ? opts.chainPem : [opts.chainPem]).flatMap(splitPemBundle);
    const roots = (Array.isArray(opts.rootPems) ? opts.rootPems : [opts.rootPems]).flatMap(splitPemBundle);
    if (chain.length === 0) throw new CertificateError('workload certificate chain contains no PEM certificate');
    if (roots.length === 0) throw new CertificateError('workload root bundle contains no PEM certificate');
    const leaf = new NodeX509(chain[0]!);
    let key;
    try {
      key = createPrivateKey(opts.keyPem);
    } catch (e) {
      throw new CertificateError(`cannot parse workload private key: ${(e as Error).message}`);
    }
    const same = (a: ReturnType<typeof createPublicKey>, b: ReturnType<typeof createPublicKey>) =>
      a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
    if (!same(createPublicKey(key), leaf.publicKey)) {
      throw new CertificateError('workload private key does not match the leaf certificate');
    }
    const identity = certificateUriSans(chain[0]!).find((u) => parseSpiffeId(u) !== undefined);
    if (!identity) throw new CertificateError(`leaf certificate has no SPIFFE URI SAN (subject "${leaf.subject}")`);
    verifyCertificateChain(chain, roots);
    const rootPrints = new Set(roots.map((r) => new NodeX509(r).fingerprint256));
    const chainWithoutRoots = chain.filter((c, i) => i === 0 || !rootPrints.has(new NodeX509(c).fingerprint256));
    return new WorkloadCertificate({
      identity,
      keyPem: opts.keyPem,
      chainPem: chainWithoutRoots,
      rootPems: roots,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    });
  }

  get certPem(): string {
    return this.chainPem[0]!;
  }

  /** Leaf plus intermediates, the `cert` value for a TLS secure context. */
  get certChainPem(): string {
    return this.chainPem.join('');
  }

  get trustDomain(): string {
    return this.spiffe.trustDomain;
  }

  /** When to fetch a replacement: half way through the validity window. */
  refreshAt(): Date {
    return new Date(this.notBefore.getTime() + (this.notAfter.getTime() - this.notBefore.getTime()) / 2);
  }

  isExpired(now: Date = new Date()): boolean {
    return now.getTime() >= this.notAfter.getTime();
  }
}
