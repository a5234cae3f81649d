// Who is calling, when the control plane has a Kubernetes API: istiod's way (its KubeJWTAuthenticator and node
// authorizer). Every caller shows a service account token of audience istio-ca, and the API server judges it with a
// TokenReview; the answer names the service account and, for a pod's projected token, the pod it is bound to. A
// caller whose service account is a trusted node account (CA_TRUSTED_NODE_ACCOUNTS, istio-system/ztunnel) is a node
// proxy acting for the pods of its node: which node is the `spec.nodeName` of the pod its token is bound to, read
// through the API, so a ztunnel's token proves its node without a credential of its own. Any other caller is a
// workload speaking for itself (a waypoint).
import { DEFAULT_CLUSTER_ID } from '../api/types.js';
import { AuthenticationError, ISTIO_CA_AUDIENCE, type CallerIdentity, type NodeAuthenticator } from './auth.js';
import { KubeApiError, type KubeClient } from './kube-client.js';

/**
 * How long an accepted token's caller is remembered, so a node's stream of CSRs does not cost two API round trips
 * each: kube-apiserver's own cache of token authentications keeps successes 10 s (and failures not at all).
 */
export const REVIEW_CACHE_MS = 10_000;

/** The TokenReview status fields read here (authentication.k8s.io/v1). */
interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; groups?: string[]; extra?: Record<string, string[]> };
}

/** The pod fields the node check reads. */
interface BoundPod {
  metadata: { uid?: string };
  spec?: { nodeName?: string; serviceAccountName?: string };
}

/** kube-apiserver's keys of a bound token's pod in the user's `extra` (k8s.io/apiserver serviceaccount). */
const POD_NAME_KEY = 'authentication.kubernetes.io/pod-name';
const POD_UID_KEY = 'authentication.kubernetes.io/pod-uid';

export interface TokenReviewAuthenticatorOptions {
  client: KubeClient;
  /** `namespace/name` of the service accounts whose pods are node proxies (CA_TRUSTED_NODE_ACCOUNTS). */
  trustedNodeAccounts: ReadonlySet<string>;
  /** The cluster the API server is, as refusals name it (istiod's CLUSTER_ID). */
  clusterId?: string;
  /** How long an accepted token's caller is remembered; default REVIEW_CACHE_MS. */
  cacheMs?: number;
}

export class TokenReviewAuthenticator implements NodeAuthenticator {
  /** Accepted tokens (and those being reviewed, so concurrent calls share one review), by token. */
  private readonly cache = new Map<string, { caller: Promise<CallerIdentity>; expiresAt: number }>();
  private readonly clusterId: string;

  constructor(private readonly opts: TokenReviewAuthenticatorOptions) {
    this.clusterId = opts.clusterId ?? DEFAULT_CLUSTER_ID;
  }

  authenticate(token: string): Promise<CallerIdentity> {
    const now = Date.now();
    const cached = this.cache.get(token);
    if (cached && cached.expiresAt > now) return cached.caller;
    for (const [t, entry] of this.cache) if (entry.expiresAt <= now) this.cache.delete(t);
    const caller = this.review(token);
    // In flight it is shared; once settled a success is kept for cacheMs and a refusal forgotten.
    const entry = { caller, expiresAt: Infinity };
    this.cache.set(token, entry);
    caller.then(
      () => {
        entry.expiresAt = Date.now() + (this.opts.cacheMs ?? REVIEW_CACHE_MS);
      },
      () => {
        if (this.cache.get(token) === entry) this.cache.delete(token);
      },
    );
    return caller;
  }

  private async review(token: string): Promise<CallerIdentity> {
    let status: TokenReviewStatus;
    try {
      status = (
        await this.opts.client.request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [ISTIO_CA_AUDIENCE] },
        })
      ).status ?? {};
    } catch (err) {
      throw this.invalid((err as Error).message);
    }
    // istiod's reading of the answer (security/pkg/k8s/tokenreview), plus the audience check Kubernetes asks of a
    // client that names audiences: an API server that ignored them would accept any of the pod's tokens.
    if (status.error) throw this.invalid(`the service account authentication returns an error: ${status.error}`);
    if (!status.authenticated) throw this.invalid('the token is not authenticated');
    if (!status.audiences?.includes(ISTIO_CA_AUDIENCE)) {
      throw this.invalid(`the token review's audiences ${JSON.stringify(status.audiences ?? [])} do not include ${ISTIO_CA_AUDIENCE}`);
    }
    const user = status.user ?? {};
    if (!user.groups?.includes('system:serviceaccounts')) throw this.invalid('the token is not a service account');
    const parts = (user.username ?? '').split(':');
    if (parts.length !== 4) throw this.invalid('invalid username field in the token review result');
    const [, , namespace, name] = parts as [string, string, string, string];
    if (!name) throw new AuthenticationError('failed to parse the JWT; service account required');
    if (!namespace) throw new AuthenticationError('failed to parse the JWT; namespace required');
    const pod = { name: user.extra?.[POD_NAME_KEY]?.[0] ?? '', uid: user.extra?.[POD_UID_KEY]?.[0] ?? '' };
    if (this.opts.trustedNodeAccounts.has(`${namespace}/${name}`)) return { node: await this.nodeOf(namespace, name, pod) };
    if (!pod.name || !pod.uid) {
      throw new AuthenticationError(`service account token of ${namespace}/${name} is not bound to a pod: only a projected token of a pod is accepted`);
    }
    return { serviceAccount: { namespace, name, pod } };
  }

  /** The node a node proxy runs on: its pod's, checked as istiod's node authorizer checks the caller's pod. */
  private async nodeOf(namespace: string, serviceAccount: string, pod: { name: string; uid: string }): Promise<string> {
    if (!pod.name) throw new AuthenticationError(`the token of node proxy service account ${namespace}/${serviceAccount} is not bound to a pod, so it names no node`);
    let found: BoundPod;
    try {
      found = await this.opts.client.get<BoundPod>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod.name)}`);
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) throw new AuthenticationError(`pod ${namespace}/${pod.name} not found`);
      throw new AuthenticationError(`cannot look up pod ${namespace}/${pod.name}: ${(err as Error).message}`);
    }
    // A pod re-created under the same name is another pod: its node is not the token's.
    if (found.metadata.uid !== pod.uid) throw new AuthenticationError(`pod found, but UID does not match: ${found.metadata.uid} vs ${pod.uid}`);
    const podServiceAccount = found.spec?.serviceAccountName;
    if (podServiceAccount !== serviceAccount) throw new AuthenticationError(`pod found, but ServiceAccount does not match: ${podServiceAccount} vs ${serviceAccount}`);
    const node = found.spec?.nodeName;
    if (!node) throw new AuthenticationError(`pod ${namespace}/${pod.name} is not scheduled on a node`);
    return node;
  }

  /** istiod's refusal of a token the cluster did not vouch for. */
  private invalid(why: string): AuthenticationError {
    return new AuthenticationError(`failed to validate the JWT from cluster ${JSON.stringify(this.clusterId)}: ${why}`);
  }
}
