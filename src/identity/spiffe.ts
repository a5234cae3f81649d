// SPIFFE identities as Istio uses them: spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
// Parsing is strict on purpose: the identity decides authorization, so anything that is not exactly this
// shape (extra path segments, empty parts, "." / "..", characters outside the SPIFFE spec) is rejected
// instead of being normalised into something that might match a policy by accident.

export interface SpiffeIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const SCHEME = 'spiffe://';
// SPIFFE ID spec §2.1: trust domains are lowercase letters, digits, '.', '-' and '_'.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
// SPIFFE ID spec §2.2: path segments use letters, digits, '.', '-' and '_', and are never '.' or '..'.
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

function validSegment(s: string): boolean {
  return PATH_SEGMENT.test(s) && s !== '.' && s !== '..';
}

/** Builds `spiffe://<td>/ns/<ns>/sa/<sa>`; throws when a part would make an unparsable identity. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new Error(`invalid SPIFFE trust domain "${trustDomain}"`);
  if (!validSegment(namespace)) throw new Error(`invalid namespace "${namespace}" for a SPIFFE identity`);
  if (!validSegment(serviceAccount)) {
    throw new Error(`invalid service account "${serviceAccount}" for a SPIFFE identity`);
  }
  return `${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Parses an Istio workload SPIFFE URI; returns undefined for anything else. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  if (!uri.startsWith(SCHEME)) return undefined;
  const parts = uri.slice(SCHEME.length).split('/');
  if (parts.length !== 5) return undefined;
  const [trustDomain, nsKey, namespace, saKey, serviceAccount] = parts as [string, string, string, string, string];
  if (nsKey !== 'ns' || saKey !== 'sa') return undefined;
  if (!TRUST_DOMAIN.test(trustDomain) || !validSegment(namespace) || !validSegment(serviceAccount)) return undefined;
  return { trustDomain, namespace, serviceAccount };
}

export function formatSpiffeId(id: SpiffeIdentity): string {
  return spiffeId(id.trustDomain, id.namespace, id.serviceAccount);
}
