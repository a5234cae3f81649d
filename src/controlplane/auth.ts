// Who is calling: every xDS stream and CA request carries `authorization: Bearer <token>`, and an authenticator maps
// the token to a caller. Two kinds of callers exist, as in Istio: a node proxy (ztunnel) that acts for the pods on its
// node, and a workload that acts for itself (a waypoint) with its pod's service account token. With a Kubernetes API,
// both show service account tokens that the API server reviews (kube-auth.ts, asynchronous, hence the interface's
// Promise). Without one (a control plane serving files), node proxies show opaque tokens listed in a JSON file of
// {token: node}, and workloads service account JWTs verified offline against their issuer's public keys.
import { readFileSync, statSync } from 'node:fs';
import type { Metadata } from '@grpc/grpc-js';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { ROOT_NAMESPACE } from '../api/types.js';

/** A pod's service account, proven by a token bound to that pod. */
export interface ServiceAccountCaller {
  namespace: string;
  name: string;
  pod: { name: string; uid: string };
}

/** Exactly one of `node` (a node proxy) and `serviceAccount` (a workload speaking for itself) is set. */
export interface CallerIdentity {
  /** Name of the node the caller (a ztunnel) runs on. */
  node?: string;
  serviceAccount?: ServiceAccountCaller;
}

export interface NodeAuthenticator {
  /**
   * The caller a token proves; undefined when the token is not of a kind this authenticator knows. A token of its
   * kind that it refuses (expired, bound to a deleted pod…) throws an AuthenticationError saying why.
   */
  authenticate(token: string): CallerIdentity | undefined | Promise<CallerIdentity | undefined>;
}

/** A token refused by the authenticator whose kind it is; the message says why (callers pass it on). */
export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
}

/** How a caller is named in log lines and errors: `node node-1`, `serviceaccount ns/sa`. */
export function describeCaller(c: CallerIdentity): string {
  return c.serviceAccount ? `serviceaccount ${c.serviceAccount.namespace}/${c.serviceAccount.name}` : `node ${c.node}`;
}

/** The bearer token of a gRPC call, or undefined when the metadata has none. */
export function bearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m?.[1];
}

const TokenFile = z.record(z.string().min(1), z.string().min(1));

/**
 * Tokens from a JSON file `{"<token>": "<node name>"}`. The file is re-read when its modification time or size
 * changes, so nodes added to a running local cluster can connect without restarting the control plane. If an edit
 * makes the file unreadable or invalid, the last good token set stays in force and `lastError` says why.
 */
export class TokenFileAuthenticator implements NodeAuthenticator {
  private tokens = new Map<string, string>();
  private readonly file: ReloadedFile;

  /** A missing or invalid file is not fatal (the local cluster may write it later): check `lastError`. */
  constructor(readonly path: string) {
    this.file = new ReloadedFile(path, 'node token file');
    this.reload();
  }

  authenticate(token: string): CallerIdentity | undefined {
    this.reload();
    const node = this.tokens.get(token);
    return node === undefined ? undefined : { node };
  }

  private reload(): void {
    this.file.reload((text) => {
      const parsed = TokenFile.safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw new Error(`expected an object of "token": "node name" strings (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      }
      this.tokens = new Map(Object.entries(parsed.data));
    });
  }

  get lastError(): string | undefined {
    return this.file.lastError;
  }
}

/**
 * A file re-read whenever its modification time, size or inode changes. When an edit makes it unreadable or invalid,
 * what was last loaded stays in force and `lastError` says why.
 */
class ReloadedFile {
  private stamp = '';
  lastError: string | undefined;

  constructor(
    readonly path: string,
    /** What the file holds, for error texts: `node token file`, `service account issuer keys`. */
    private readonly what: string,
  ) {}

  /** Calls `load` with the file's text if it changed since the last successful read; `load` throws when invalid. */
  reload(load: (text: string) => void): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (e) {
      this.lastError = `cannot read ${this.what} ${this.path}: ${(e as Error).message}`;
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      load(readFileSync(this.path, 'utf8'));
      this.lastError = undefined;
    } catch (e) {
      this.lastError = `invalid ${this.what} ${this.path}: ${(e as Error).message}`;
    }
  }
}

/** The audience Istio's proxies request for the tokens they show the control plane (istio-token). */
export const ISTIO_CA_AUDIENCE = 'istio-ca';
/**
 * The projected token Istio's charts give a proxy pod (the waypoint template's `istio-token` volume): the proxy reads
 * it at `<mountPath>/<path>`, /var/run/secrets/tokens/istio-token.
 */
export const ISTIO_TOKEN = {
  volume: 'istio-token',
  path: 'istio-token',
  audience: ISTIO_CA_AUDIENCE,
  expirationSeconds: 43200,
  mountPath: '/var/run/secrets/tokens',
} as const;
/**
 * The service accounts whose pods are node proxies (Istio's CA_TRUSTED_NODE_ACCOUNTS, `<namespace>/<name>`, the value
 * Istio's chart gives istiod): their tokens speak for the pods of their node.
 */
export const DEFAULT_TRUSTED_NODE_ACCOUNTS: readonly string[] = [`${ROOT_NAMESPACE}/ztunnel`];

/** A comma-separated list of `<namespace>/<service account>`, as istiod reads CA_TRUSTED_NODE_ACCOUNTS. */
export function parseTrustedNodeAccounts(value: string, name: string): string[] {
  return value.split(',').map((entry) => {
    const account = entry.trim();
    if (!/^[^/\s]+\/[^/\s]+$/.test(account)) throw new Error(`${name}: invalid entry "${entry}": expected <namespace>/<service account>, e.g. ${DEFAULT_TRUSTED_NODE_ACCOUNTS[0]}`);
    return account;
  });
}

/** The issuer of Kubernetes service account tokens in a kind-like cluster. */
export const KUBERNETES_TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';

const SERVICE_ACCOUNT_SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;
const CLOCK_SKEW_SECONDS = 60;

// `pod` is required too, but checked on its own: an unbound token deserves its own refusal, not a schema message.
const BoundClaims = z.looseObject({
  namespace: z.string().min(1),
  serviceaccount: z.looseObject({ name: z.string().min(1) }),
  pod: z.looseObject({ name: z.string().min(1), uid: z.string().min(1) }).optional(),
});

/** Kubernetes' wording for the time checks (pkg/serviceaccount/claims.go), jose's for the rest. */
function verificationProblem(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'service account token has expired';
  if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'nbf' && e.reason === 'check_failed') return 'service account token is not valid yet';
  if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'exp' && e.reason === 'missing') {
    return 'service account token has no expiry ("exp" claim): only bound tokens, as a projected volume gives a pod, are accepted';
  }
  return `invalid service account token: ${(e as Error).message}`;
}

function boundClaimsProblem(claims: unknown, error: z.ZodError): string {
  if (claims === undefined) return 'service account token has no "kubernetes.io" claims';
  const issue = error.issues[0]!;
  return `service account token has an invalid claim ${['kubernetes.io', ...issue.path].join('.')}: ${issue.message}`;
}

/**
 * Bound service account JWTs as the Kubernetes API server issues them for a pod's projected volume
 * (`sub: system:serviceaccount:<ns>:<sa>`, an expiry, the pod binding under `kubernetes.io`), verified against the
 * issuer's public keys (a JWKS file, re-read when it changes). Legacy tokens (no `exp`) and tokens bound to no pod are
 * refused. `podExists` answers whether the pod a token is bound to still exists, as a TokenReview would: a token
 * outlives neither its pod nor its expiry.
 */
export class ServiceAccountTokenAuthenticator implements NodeAuthenticator {
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private readonly file: ReloadedFile;

  constructor(
    readonly jwksPath: string,
    private readonly podExists: (namespace: string, name: string, uid: string) => boolean,
    private readonly issuer = KUBERNETES_TOKEN_ISSUER,
    private readonly audience = ISTIO_CA_AUDIENCE,
  ) {
    this.file = new ReloadedFile(jwksPath, 'service account issuer keys');
    this.reload();
  }

  async authenticate(token: string): Promise<CallerIdentity | undefined> {
    // Node tokens are opaque; only a JWT (three dot-separated parts) can be a service account token.
    if (token.split('.').length !== 3) return undefined;
    this.reload();
    if (!this.keys) throw new AuthenticationError(`service account tokens cannot be verified: ${this.lastError}`);
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: ['ES256', 'RS256'],
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      throw new AuthenticationError(verificationProblem(e));
    }
    // A token issued in the future is refused, as the API server's validator does (beyond a minute of clock skew).
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) throw new AuthenticationError('service account token is issued in the future');
    const sub = SERVICE_ACCOUNT_SUBJECT.exec(payload.sub ?? '');
    if (!sub) throw new AuthenticationError(`service account token subject ${JSON.stringify(payload.sub ?? '')} is not system:serviceaccount:<namespace>:<name>`);
    const namespace = sub[1]!;
    const name = sub[2]!;
    const claims = payload['kubernetes.io'];
    const bound = BoundClaims.safeParse(claims);
    if (!bound.success) throw new AuthenticationError(boundClaimsProblem(claims, bound.error));
    if (bound.data.namespace !== namespace || bound.data.serviceaccount.name !== name) {
      throw new AuthenticationError(`service account token subject ${payload.sub} does not match its "kubernetes.io" claims (${bound.data.namespace}/${bound.data.serviceaccount.name})`);
    }
    const pod = bound.data.pod;
    if (!pod) throw new AuthenticationError('service account token is not bound to a pod (no kubernetes.io.pod claim): only a projected token of a pod is accepted');
    if (!this.podExists(namespace, pod.name, pod.uid)) throw new AuthenticationError(`pod ${namespace}/${pod.name} has been deleted`);
    return { serviceAccount: { namespace, name, pod: { name: pod.name, uid: pod.uid } } };
  }

  private reload(): void {
    this.file.reload((text) => {
      this.keys = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
    });
  }

  get lastError(): string | undefined {
    return this.file.lastError;
  }
}

/** Asks each authenticator in turn; the first that accepts the token wins, else the first refusal is thrown. */
export class AnyAuthenticator implements NodeAuthenticator {
  constructor(private readonly authenticators: readonly NodeAuthenticator[]) {}

  async authenticate(token: string): Promise<CallerIdentity | undefined> {
    let refusal: AuthenticationError | undefined;
    for (const a of this.authenticators) {
      try {
        const id = await a.authenticate(token);
        if (id) return id;
      } catch (e) {
        if (!(e instanceof AuthenticationError)) throw e;
        refusal ??= e;
      }
    }
    if (refusal) throw refusal;
    return undefined;
  }
}
