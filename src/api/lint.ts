// Warnings for objects the API server would store but that probably do not do what the author meant. Some repeat
// the warnings istiod's webhook gives; others are checks istiod's webhook rejects but the CRD does not. Those stay
// warnings here, because istiod still defines what happens when such a value reaches it (an ALLOW rule with a bad
// port is dropped, a DENY rule ignores the value), and the model reproduces that behaviour.
import { isIP } from 'node:net';
import { isRecord, show } from './schemas/common.js';
import type { AuthorizationPolicy, DestinationRule, PeerAuthentication, RequestAuthentication, Resource, WorkloadSelector } from './types.js';

export type IssuePath = (string | number)[];

export interface ValidationIssue {
  path: IssuePath;
  message: string;
  severity: 'error' | 'warning';
  /** The problem is the mapping key that ends `path` (e.g. a label key), not the value stored under it. */
  aboutKey?: boolean;
  /** A field the kind does not declare (kube-apiserver's strict decoding); `message` is its `unknown field "…"`. */
  unknownField?: true;
}

const warning = (path: IssuePath, message: string): ValidationIssue => ({ path, message, severity: 'warning' });

function ipOrCidrProblem(s: string): string | undefined {
  const [addr, bits, extra] = s.split('/');
  const family = isIP(addr ?? '');
  const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  return family !== 0 && bitsOk && extra === undefined ? undefined : `must be an IP address or CIDR, found ${show(s)}`;
}

function portProblem(s: string): string | undefined {
  return /^\d+$/.test(s) && Number(s) <= 65535 ? undefined : `must be a port number 0-65535, found ${show(s)}`;
}

function eachValue(list: string[] | undefined, path: IssuePath, check: (s: string) => string | undefined, out: ValidationIssue[], prefix = ''): void {
  list?.forEach((v, i) => {
    const problem = check(v);
    if (problem) out.push(warning([...path, i], prefix + problem));
  });
}

function selectorWarnings(selector: WorkloadSelector | undefined): ValidationIssue[] {
  if (selector === undefined || Object.keys(selector.matchLabels ?? {}).length > 0) return [];
  return [warning(['spec', 'selector'], 'workload selector specified without labels')];
}

// Condition keys istiod understands (pilot/pkg/security/authz/model); anything else never matches.
const EXACT_KEYS = new Set([
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'source.trustDomain',
  'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'destination.ip', 'destination.port',
  'connection.sni',
]);
const PATTERN_KEYS = [/^request\.headers\[[^\]]+\]$/, /^request\.auth\.claims(\[[^\]]+\])+$/, /^experimental\.envoy\.filters\.[^[]+(\[[^\]]+\])+$/];
const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);
const IP_FIELDS = ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const;
// Fields that exist at L4; a DENY rule with none of them cannot be evaluated for plain TCP traffic.
const TCP_SOURCE_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', ...IP_FIELDS, 'serviceAccounts', 'notServiceAccounts'] as const;

function authorizationPolicyWarnings(ap: AuthorizationPolicy): ValidationIssue[] {
  const out = selectorWarnings(ap.spec.selector);
  const action = ap.spec.action ?? 'ALLOW';
  if ((action === 'DENY' || action === 'CUSTOM') && ap.spec.rules === undefined) {
    out.push(warning(['spec', 'action'], `${action} action without \`rules\` is meaningless as it will never be triggered, add an empty rule \`{}\` if you want it be triggered for every request`));
  }
  (ap.spec.rules ?? []).forEach((rule, r) => {
    const rulePath = ['spec', 'rules', r];
    (rule.from ?? []).forEach((f, i) => {
      for (const field of IP_FIELDS) eachValue(f.source?.[field], [...rulePath, 'from', i, 'source', field], ipOrCidrProblem, out);
    });
    (rule.to ?? []).forEach((t, i) => {
      for (const field of ['ports', 'notPorts'] as const) eachValue(t.operation?.[field], [...rulePath, 'to', i, 'operation', field], portProblem, out);
    });
    (rule.when ?? []).forEach((c, i) => {
      const path = [...rulePath, 'when', i];
      if (!EXACT_KEYS.has(c.key) && !PATTERN_KEYS.some((re) => re.test(c.key))) {
        out.push(warning([...path, 'key'], `unknown attribute ${show(c.key)}`));
        return;
      }
      const check = c.key === 'destination.port' ? portProblem : IP_KEYS.has(c.key) ? ipOrCidrProblem : undefined;
      if (!check) return;
      eachValue(c.values, [...path, 'values'], check, out, `invalid value for key ${c.key}: `);
      eachValue(c.notValues, [...path, 'notValues'], check, out, `invalid value for key ${c.key}: `);
    });
    if (action !== 'DENY') return;
    const sources = (rule.from ?? []).flatMap((f) => (f.source ? [f.source] : []));
    const operations = (rule.to ?? []).flatMap((t) => (t.operation ? [t.operation] : []));
    const tcpInFrom = sources.some((s) => TCP_SOURCE_FIELDS.some((k) => s[k] !== undefined));
    const tcpInTo = operations.some((o) => o.ports !== undefined || o.notPorts !== undefined);
    if ((sources.length > 0 && operations.length === 0 && !tcpInFrom) || (operations.length > 0 && !tcpInTo)) {
      out.push(
        warning(
          rulePath,
          'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port',
        ),
      );
    }
  });
  return out;
}

function peerAuthenticationWarnings(pa: PeerAuthentication): ValidationIssue[] {
  const out = selectorWarnings(pa.spec.selector);
  // In ambient, HBONE between ztunnels is always mTLS; DISABLE can only mean "also accept plaintext".
  const disabled: IssuePath[] = [];
  if (pa.spec.mtls?.mode === 'DISABLE') disabled.push(['spec', 'mtls', 'mode']);
  for (const [p, m] of Object.entries(pa.spec.portLevelMtls ?? {})) if (m.mode === 'DISABLE') disabled.push(['spec', 'portLevelMtls', p, 'mode']);
  for (const path of disabled) out.push(warning(path, 'DISABLE mode is not supported in ambient mode; it is treated as PERMISSIVE'));
  return out;
}

function requestAuthenticationWarnings(ra: RequestAuthentication): ValidationIssue[] {
  const out = selectorWarnings(ra.spec.selector);
  // Only waypoints validate JWTs in ambient mode, and only for the targets named in targetRefs.
  if (!ra.spec.targetRefs?.length && ra.spec.targetRef === undefined) {
    out.push(warning(ra.spec.selector ? ['spec', 'selector'] : ['spec'], 'in ambient mode only waypoints enforce a RequestAuthentication, through targetRefs (a Gateway or a Service bound to a waypoint); one with a selector or none applies to sidecars and is not enforced'));
  }
  (ra.spec.jwtRules ?? []).forEach((rule, i) => {
    if (rule.jwks === undefined) return;
    const path = ['spec', 'jwtRules', i, 'jwks'];
    try {
      if (!Array.isArray((JSON.parse(rule.jwks) as { keys?: unknown } | null)?.keys)) out.push(warning(path, 'jwks parse error: expected a JSON object with a "keys" list'));
    } catch (err) {
      out.push(warning(path, `jwks parse error: ${(err as Error).message}`));
    }
  });
  return out;
}

/**
 * A DestinationRule's traffic policies (the rule's, its port-level ones, its subsets' and theirs): istiod's webhook
 * warnings for deprecated fields and locality failover without outlier detection, and a consistent hash without a key,
 * which the CRD accepts but which hashes nothing (Envoy then picks endpoints at random).
 */
function destinationRuleWarnings(dr: DestinationRule): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const check = (policy: unknown, path: IssuePath, portLevel: boolean) => {
    if (!isRecord(policy)) return;
    const lb = isRecord(policy.loadBalancer) ? policy.loadBalancer : {};
    const hash = lb.consistentHash;
    if (isRecord(hash)) {
      const at = [...path, 'loadBalancer', 'consistentHash'];
      if (!['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].some((k) => hash[k] !== undefined)) {
        out.push(warning(at, 'consistentHash sets none of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName: requests have no hash and go to random endpoints'));
      }
      if (hash.minimumRingSize) out.push(warning([...at, 'minimumRingSize'], "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead"));
    }
    const locality = lb.localityLbSetting;
    if (isRecord(locality) && ((Array.isArray(locality.failover) && locality.failover.length > 0) || (Array.isArray(locality.failoverPriority) && locality.failoverPriority.length > 0)) && policy.outlierDetection === undefined) {
      out.push(warning([...path, 'loadBalancer', 'localityLbSetting'], 'outlier detection policy must be provided for failover'));
    }
    if (isRecord(policy.outlierDetection) && policy.outlierDetection.consecutiveErrors) {
      out.push(warning([...path, 'outlierDetection', 'consecutiveErrors'], 'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead'));
    }
    if (!portLevel && Array.isArray(policy.portLevelSettings)) policy.portLevelSettings.forEach((p, i) => check(p, [...path, 'portLevelSettings', i], true));
  };
  check(dr.spec.trafficPolicy, ['spec', 'trafficPolicy'], false);
  (dr.spec.subsets ?? []).forEach((s, i) => check(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy'], false));
  return out;
}

/** Warnings for a resource that passed validation. */
export function lint(r: Resource): ValidationIssue[] {
  switch (r.kind) {
    case 'AuthorizationPolicy':
      return authorizationPolicyWarnings(r);
    case 'PeerAuthentication':
      return peerAuthenticationWarnings(r);
    case 'RequestAuthentication':
      return requestAuthenticationWarnings(r);
    case 'Telemetry':
      return selectorWarnings(r.spec.selector);
    case 'DestinationRule':
      return destinationRuleWarnings(r);
    default:
      return [];
  }
}
