// The kubelet's and API server's share of service account tokens: an ES256 issuer key made once per cluster, and per
// pod a token bound to that pod, shaped like the projected `istio-token` Kubernetes gives Istio's proxies (audience
// `istio-ca`, `sub: system:serviceaccount:<ns>:<sa>`, the pod under `kubernetes.io`). The control plane verifies them
// with the public JWKS (and that the pod still exists), so a waypoint gets certificates and configuration for its own
// identity only.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, calculateJwkThumbprint } from 'jose';
import { ISTIO_CA_AUDIENCE, KUBERNETES_TOKEN_ISSUER } from '../controlplane/auth.js';

/** Kubernetes' default for projected tokens is an hour; the kubelet rewrites them at 80% of that. */
export const TOKEN_TTL_SECONDS = 3600;
export const TOKEN_REFRESH_MS = TOKEN_TTL_SECONDS * 800;

export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
  pod: { name: string; uid: string };
  node: string;
}

export class ServiceAccountIssuer {
  private constructor(
    private readonly key: KeyObject,
    private readonly kid: string,
  ) {}

  /** Loads the issuer key, creating it (and its public JWKS next to it) on first use. */
  static async load(keyPath: string, jwksPath: string): Promise<ServiceAccountIssuer> {
    if (!existsSync(keyPath)) {
      mkdirSync(dirname(keyPath), { recursive: true, mode: 0o700 });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    }
    const key = createPrivateKey(readFileSync(keyPath, 'utf8'));
    const jwk = await exportJWK(createPublicKey(key));
    const kid = await calculateJwkThumbprint(jwk);
    writeFileSync(jwksPath, JSON.stringify({ keys: [{ ...jwk, kid, alg: 'ES256', use: 'sig' }] }, null, 2) + '\n');
    return new ServiceAccountIssuer(key, kid);
  }

  /** A token for `subject`, audience istio-ca, valid for TOKEN_TTL_SECONDS. */
  token(subject: TokenSubject, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({
      'kubernetes.io': {
        namespace: subject.namespace,
        pod: { name: subject.pod.name, uid: subject.pod.uid },
        serviceaccount: { name: subject.serviceAccount },
        node: { name: subject.node },
      },
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid })
      .setIssuer(KUBERNETES_TOKEN_ISSUER)
      .setSubject(`system:serviceaccount:${subject.namespace}:${subject.serviceAccount}`)
      .setAudience([ISTIO_CA_AUDIENCE])
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + TOKEN_TTL_SECONDS)
      .sign(this.key);
  }

  /** Writes a fresh token for `subject` to `path` (mode 0600) without a moment where the file is half written. */
  async writeToken(path: string, subject: TokenSubject): Promise<void> {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, (await this.token(subject)) + '\n', { mode: 0o600 });
    renameSync(tmp, path);
  }
}
