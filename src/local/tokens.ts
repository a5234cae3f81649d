// The kubelet's and API server's share of service account tokens: an ES256 issuer key made once per cluster, and for
// each projected `serviceAccountToken` source of a pod a token bound to that pod, shaped like Kubernetes' bound tokens
// (`sub: system:serviceaccount:<ns>:<sa>`, `jti`, the service account, pod and node under `kubernetes.io`) with the
// audience and lifetime the source asks for; and the API server's TokenReview of them. The control plane checks a
// proxy's token with that TokenReview (or, without a Kubernetes API, against the issuer's public JWKS), so a waypoint
// gets certificates and configuration for its own identity only and a ztunnel for the pods of its node.
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, errors, exportJWK, jwtVerify, type JWTPayload } from 'jose';
import { ISTIO_TOKEN, KUBERNETES_TOKEN_ISSUER } from '../controlplane/auth.js';

/** A TokenRequest's spec, what a projected source asks the API server for. */
export interface TokenRequestSpec {
  audiences: string[];
  expirationSeconds: number;
}

/** Kubernetes' default `expirationSeconds` of a projected token, and the range its validation allows. */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;
export const MIN_TOKEN_EXPIRATION_SECONDS = 600;
export const MAX_TOKEN_EXPIRATION_SECONDS = 2 ** 32;

/** The kubelet refreshes a token once it is past 80 % of its lifetime or a day old, whichever comes first. */
const MAX_TOKEN_AGE_SECONDS = 24 * 3600;
/** The clock skew kube-apiserver allows when it checks a token's `exp` and `nbf` (go-jose's DefaultLeeway). */
const CLOCK_LEEWAY_SECONDS = 60;
/** How long a failed refresh waits before the next attempt (the kubelet retries on its next pod sync). */
const REFRESH_RETRY_MS = 10_000;

/** How long after it is written the kubelet rewrites a token of that lifetime. */
export function tokenRefreshDelayMs(expirationSeconds: number): number {
  return Math.min(expirationSeconds * 0.8, MAX_TOKEN_AGE_SECONDS) * 1000;
}

/** The token Istio's proxies are given (their `istio-token` volume): ztunnel's DaemonSet and waypoints alike. */
export const ISTIO_TOKEN_REQUEST: TokenRequestSpec = { audiences: [ISTIO_TOKEN.audience], expirationSeconds: ISTIO_TOKEN.expirationSeconds };

export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
  /** The ServiceAccount object's uid; left out of the token when the caller has no object (Kubernetes' `omitempty`). */
  serviceAccountUid?: string;
  /** The pod a token is bound to (projected tokens always are; `kubectl create token` may leave it out). */
  pod?: { name: string; uid: string };
  node?: string;
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

  /** A token for `subject` as the API server answers a TokenRequest bound to the pod (Istio's istio-token by default). */
  token(subject: TokenSubject, request: TokenRequestSpec = ISTIO_TOKEN_REQUEST, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({
      'kubernetes.io': {
        namespace: subject.namespace,
        ...(subject.pod ? { pod: { name: subject.pod.name, uid: subject.pod.uid } } : {}),
        serviceaccount: { name: subject.serviceAccount, ...(subject.serviceAccountUid ? { uid: subject.serviceAccountUid } : {}) },
        ...(subject.node ? { node: { name: subject.node } } : {}),
      },
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid })
      .setIssuer(KUBERNETES_TOKEN_ISSUER)
      .setSubject(`system:serviceaccount:${subject.namespace}:${subject.serviceAccount}`)
      .setAudience(request.audiences)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + request.expirationSeconds)
      .sign(this.key);
  }

  /**
   * A TokenReview's status for a token this issuer signed, as kube-apiserver's service account authenticator answers
   * it (pkg/serviceaccount): signature, issuer, lifetime, an audience in common with `audiences` (none asked: the API
   * server's own, the issuer), then the service account and the pod it is bound to still there with the uids the token
   * names. A bad token is `authenticated: false` with kube's error text, not an HTTP error; kube-apiserver's union of
   * authenticators reports it together with the bearer token authenticator's `invalid bearer token`.
   */
  async review(token: string, audiences: string[], uidOf: (kind: 'Pod' | 'ServiceAccount', namespace: string, name: string) => string | undefined): Promise<Record<string, unknown>> {
    const refused = (error: string) => ({ authenticated: false, error: `[invalid bearer token, ${error}]` });
    const wanted = audiences.length ? audiences : [KUBERNETES_TOKEN_ISSUER];
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, createPublicKey(this.key), { issuer: KUBERNETES_TOKEN_ISSUER, algorithms: ['ES256'], clockTolerance: CLOCK_LEEWAY_SECONDS }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) return refused('service account token has expired');
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf') return refused('service account token is not valid yet');
      return refused((err as Error).message);
    }
    const aud = Array.isArray(payload.aud) ? payload.aud : payload.aud ? [payload.aud] : [];
    const common = wanted.filter((a) => aud.includes(a));
    if (common.length === 0) return refused(`token audiences ${goQuoted(aud)} is invalid for the target audiences ${goQuoted(wanted)}`);
    const claims = payload['kubernetes.io'] as { namespace?: string; serviceaccount?: { name?: string; uid?: string }; pod?: { name?: string; uid?: string }; node?: { name?: string } } | undefined;
    const ns = claims?.namespace;
    const sa = claims?.serviceaccount;
    if (!ns || !sa?.name || payload.sub !== `system:serviceaccount:${ns}:${sa.name}`) return refused('token lacks the service account claims');
    const saUid = uidOf('ServiceAccount', ns, sa.name);
    if (saUid === undefined) return refused(`serviceaccount "${sa.name}" not found`);
    if (sa.uid && saUid !== sa.uid) return refused(`service account UID (${saUid}) does not match claim (${sa.uid})`);
    const pod = claims.pod;
    if (pod?.name) {
      const podUid = uidOf('Pod', ns, pod.name);
      if (podUid === undefined) return refused('service account token has been invalidated');
      if (podUid !== pod.uid) return refused(`pod UID (${podUid}) does not match service account pod ref claim (${pod.uid})`);
    }
    const extra: Record<string, string[]> = {};
    if (pod?.name && pod.uid) Object.assign(extra, { 'authentication.kubernetes.io/pod-name': [pod.name], 'authentication.kubernetes.io/pod-uid': [pod.uid] });
    if (claims.node?.name) extra['authentication.kubernetes.io/node-name'] = [claims.node.name];
    if (payload.jti) extra['authentication.kubernetes.io/credential-id'] = [`JTI=${payload.jti}`];
    return {
      authenticated: true,
      user: {
        username: payload.sub,
        ...(sa.uid ? { uid: sa.uid } : {}),
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
        extra,
      },
      audiences: common,
    };
  }

  /**
   * Writes a fresh token to `path` without a moment where the file is half written: mode 0600 and owned by `owner`
   * when one is given (the kubelet's fsUser), else 0644 (the projected volume's default mode), as the kubelet does.
   */
  async writeToken(path: string, subject: TokenSubject, request: TokenRequestSpec = ISTIO_TOKEN_REQUEST, owner?: number): Promise<void> {
    const tmp = `${path}.tmp`;
    rmSync(tmp, { force: true });
    // O_EXCL: a file (or link) someone placed there is never written through.
    writeFileSync(tmp, (await this.token(subject, request)) + '\n', { mode: owner === undefined ? 0o644 : 0o600, flag: 'wx' });
    if (owner === undefined) chmodSync(tmp, 0o644);
    else chownSync(tmp, owner, -1);
    renameSync(tmp, path);
  }
}

/** A list of strings as Go's `%q` prints a []string, as kube's error texts show them: `["a" "b"]`. */
function goQuoted(values: string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;
}

/** One projected token of a pod: the file it is written to, what it asks for, and the uid owning it (default root). */
export interface ProjectedToken {
  file: string;
  request: TokenRequestSpec;
  owner?: number;
}

/**
 * The kubelet's token manager for one pod: writes each of the pod's projected tokens, then rewrites each once it is
 * past 80 % of its lifetime, until stopped.
 */
export class ProjectedTokenWriter {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly issuer: ServiceAccountIssuer,
    private readonly subject: TokenSubject,
    private readonly tokens: readonly ProjectedToken[],
    private readonly log: (line: string) => void,
  ) {}

  /** Writes every token now; rejects if one cannot be written (it is retried, and the others refreshed, regardless). */
  async start(): Promise<void> {
    await Promise.all(this.tokens.map((t) => this.write(t)));
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async write(token: ProjectedToken): Promise<void> {
    // Stopped (the pod is gone): writing now would bring its deleted directory back.
    if (this.stopped) return;
    try {
      // Directories of the volume are traversable, as the kubelet's are; the token file itself carries the protection.
      mkdirSync(dirname(token.file), { recursive: true, mode: 0o755 });
      await this.issuer.writeToken(token.file, this.subject, token.request, token.owner);
    } catch (err) {
      this.schedule(token, REFRESH_RETRY_MS);
      throw err;
    }
    this.schedule(token, tokenRefreshDelayMs(token.request.expirationSeconds));
  }

  private schedule(token: ProjectedToken, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.write(token).catch((err: Error) => this.log(`cannot refresh the service account token ${token.file}: ${err.message}`));
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
  }
}
