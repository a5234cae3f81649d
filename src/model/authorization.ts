// AuthorizationPolicy → istio.security.Authorization for ztunnel, as istiod converts it
// (istio/istio pilot/pkg/serviceregistry/ambient/authorization.go: convertAuthorizationPolicy, handleRule), including
// the ZtunnelAccepted status message texts users see on the policy.
import type { AuthorizationPolicy, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../api/types.js';
import type { Action, Authorization, CidrAddress, Clause, Match, Rule, ServiceAccountMatch, StringMatch } from '../xds/types.js';
import { parseCidr } from '../common/ip.js';
import { parseGoBool } from '../common/settings.js';

/** The outcome istiod reports in the policy's ZtunnelAccepted condition (absent = plain "attached to ztunnel"). */
export interface ConversionStatus {
  reason: string;
  message: string;
}

export interface ConvertedPolicy {
  /** What ztunnel receives; undefined when the policy is not sent. */
  authorization?: Authorization;
  status?: ConversionStatus;
}

const HTTP_RULE_PREFIX = 'ztunnel does not support HTTP attributes';
const WAYPOINT_HINT = 'In ambient mode you must use a waypoint proxy to enforce HTTP rules.';
const DENY_NO_EFFECT =
  'After omitting unsupported HTTP attributes, this DENY policy has no enforceable rules at ztunnel and will have no effect. ' +
  'Deploy a waypoint proxy and use a targetRef to enforce this policy.';
const DENY_MIXED = 'DENY policy with HTTP attributes is enforced without the HTTP rules. This will be more restrictive than requested.';
const ALLOW_OMITTED = 'Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.';

/** `when` keys ztunnel can evaluate; every other key is an HTTP attribute. */
const L4_WHEN_KEYS = new Set(['source.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port']);

export function emptyMatch(): Match {
  return {
    namespaces: [],
    notNamespaces: [],
    principals: [],
    notPrincipals: [],
    sourceIps: [],
    notSourceIps: [],
    destinationIps: [],
    notDestinationIps: [],
    destinationPorts: [],
    notDestinationPorts: [],
    serviceAccounts: [],
    notServiceAccounts: [],
  };
}

export function isEmptyMatch(m: Match): boolean {
  for (const k in m) if ((m as unknown as Record<string, unknown[]>)[k]!.length > 0) return false;
  return true;
}

export function convertAuthorizationPolicy(rootNamespace: string, p: AuthorizationPolicy): ConvertedPolicy {
  const ns = p.metadata.namespace ?? '';
  const name = p.metadata.name;
  // An unparsable annotation value is not dry-run (istiod logs and proceeds).
  const dryRunValue = p.metadata.annotations?.['istio.io/dry-run'];
  const dryRun = dryRunValue ? parseGoBool(dryRunValue) === true : false;
  // Ambient dry-run support is off by default in istiod (AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY=false).
  if (dryRun) {
    return {
      status: {
        reason: 'UnsupportedValue',
        message: `found policy "${ns}/${name}" using dry-run annotation, but support for ambient dry-run authorizationPolicies isn't enabled`,
      },
    };
  }
  // targetRef(s) bind the policy to waypoints/gateways; ztunnel never sees it.
  if (p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0) return {};

  const scope = p.spec.selector !== undefined ? 'WORKLOAD_SELECTOR' : ns === rootNamespace ? 'GLOBAL' : 'NAMESPACE';
  const specAction = p.spec.action ?? 'ALLOW';
  if (specAction !== 'ALLOW' && specAction !== 'DENY') {
    return { status: { reason: 'UnsupportedValue', message: `ztunnel does not support the ${specAction} action` } };
  }
  const action: Action = specAction;
  const authorization: Authorization = { name, namespace: ns, scope, action, rules: [], dryRun };

  const httpAttributes = new Set<string>();
  for (const rule of p.spec.rules ?? []) {
    const clauses = convertRule(action, rule ?? {}, ns, httpAttributes);
    if (clauses !== undefined) authorization.rules.push({ clauses });
  }
  if (httpAttributes.size === 0) return { authorization };

  let detail: string;
  if (action === 'DENY' && !hasEffectiveRules(authorization.rules)) detail = DENY_NO_EFFECT;
  else if (action === 'DENY') detail = DENY_MIXED;
  else detail = ALLOW_OMITTED;
  const found = [...httpAttributes].sort().join(', ');
  return {
    authorization,
    status: { reason: 'UnsupportedValue', message: `${HTTP_RULE_PREFIX} (found: ${found}). ${WAYPOINT_HINT} ${detail}` },
  };
}

/**
 * True when at least one rule can fire at ztunnel: a rule without clauses matches everything; a rule fires only if
 * each of its clauses has a non-empty match (ztunnel skips empty matches, so a clause of only those never matches).
 */
export function hasEffectiveRules(rules: Rule[]): boolean {
  for (const r of rules) {
    if (r.clauses.length === 0) return true;
    if (r.clauses.every((c) => c.matches.some((m) => !isEmptyMatch(m)))) return true;
  }
  return false;
}

/** One AuthorizationPolicy rule → clauses (ANDed). Undefined when an ALLOW rule is dropped for HTTP attributes. */
function convertRule(action: Action, rule: AuthzRule, ns: string, httpAttributes: Set<string>): Clause[] | undefined {
  let foundHttp = false;
  const note = (attrs: string[]): void => {
    if (attrs.length === 0) return;
    foundHttp = true;
    for (const a of attrs) httpAttributes.add(a);
  };

  const toMatches: Match[] = [];
  for (const to of rule.to ?? []) {
    const op: AuthzOperation = to?.operation ?? {};
    note(httpOperationFields(op));
    const m = emptyMatch();
    m.destinationPorts = toPorts(op.ports);
    m.notDestinationPorts = toPorts(op.notPorts);
    toMatches.push(m);
  }
  const fromMatches: Match[] = [];
  for (const from of rule.from ?? []) {
    const src: AuthzSource = from?.source ?? {};
    note(httpSourceFields(src));
    const m = emptyMatch();
    m.sourceIps = toCidrs(src.ipBlocks);
    m.notSourceIps = toCidrs(src.notIpBlocks);
    m.namespaces = toStringMatches(src.namespaces);
    m.notNamespaces = toStringMatches(src.notNamespaces);
    m.serviceAccounts = toServiceAccounts(src.serviceAccounts, ns);
    m.notServiceAccounts = toServiceAccounts(src.notServiceAccounts, ns);
    m.principals = toStringMatches(src.principals);
    m.notPrincipals = toStringMatches(src.notPrincipals);
    fromMatches.push(m);
  }

  const clauses: Clause[] = [];
  if (toMatches.length > 0) clauses.push({ matches: toMatches });
  if (fromMatches.length > 0) clauses.push({ matches: fromMatches });
  for (const when of rule.when ?? []) {
    if (!L4_WHEN_KEYS.has(when.key)) note([when.key]);
    clauses.push({ matches: [whenMatch(when)] });
  }
  // An ALLOW rule that needs HTTP attributes can never be satisfied at L4: drop it (fails closed). A DENY keeps its
  // L4 parts; the emptied matches are skipped by ztunnel.
  if (action === 'ALLOW' && foundHttp) return undefined;
  return clauses;
}

function whenMatch(c: AuthzCondition): Match {
  const m = emptyMatch();
  const values = c.values ?? [];
  const notValues = c.notValues ?? [];
  switch (c.key) {
    case 'source.namespace':
      m.namespaces = toStringMatches(values);
      m.notNamespaces = toStringMatches(notValues);
      break;
    case 'source.principal':
      m.principals = toStringMatches(values);
      m.notPrincipals = toStringMatches(notValues);
      break;
    case 'source.ip':
      m.sourceIps = toCidrs(values);
      m.notSourceIps = toCidrs(notValues);
      break;
    case 'destination.port':
      m.destinationPorts = toPorts(values);
      m.notDestinationPorts = toPorts(notValues);
      break;
    case 'destination.ip':
      m.destinationIps = toCidrs(values);
      m.notDestinationIps = toCidrs(notValues);
      break;
  }
  return m;
}

function httpOperationFields(op: AuthzOperation): string[] {
  const found: string[] = [];
  if (op.hosts?.length) found.push('hosts');
  if (op.notHosts?.length) found.push('notHosts');
  if (op.methods?.length) found.push('methods');
  if (op.notMethods?.length) found.push('notMethods');
  if (op.paths?.length) found.push('paths');
  if (op.notPaths?.length) found.push('notPaths');
  return found;
}

/**
 * Source fields ztunnel cannot evaluate. `trustDomains`/`notTrustDomains` are not among them: istiod's conversion
 * (httpSources) neither reports nor converts them, so they are ignored at ztunnel.
 */
function httpSourceFields(s: AuthzSource): string[] {
  const found: string[] = [];
  if (s.remoteIpBlocks?.length) found.push('remoteIpBlocks');
  if (s.notRemoteIpBlocks?.length) found.push('notRemoteIpBlocks');
  if (s.requestPrincipals?.length) found.push('requestPrincipals');
  if (s.notRequestPrincipals?.length) found.push('notRequestPrincipals');
  return found;
}

/** Istio string forms: `*` presence, `*abc` suffix, `abc*` prefix, else exact. */
export function toStringMatches(values: string[] | undefined): StringMatch[] {
  return (values ?? []).map((v): StringMatch => {
    if (v === '*') return { presence: {} };
    if (v.startsWith('*')) return { suffix: v.slice(1) };
    if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
    return { exact: v };
  });
}

/** `ns/sa`, or a bare `sa` meaning the policy's namespace. */
function toServiceAccounts(values: string[] | undefined, policyNamespace: string): ServiceAccountMatch[] {
  return (values ?? []).map((v) => {
    const i = v.indexOf('/');
    return i >= 0 ? { namespace: v.slice(0, i), serviceAccount: v.slice(i + 1) } : { namespace: policyNamespace, serviceAccount: v };
  });
}

/** Decimal ports 0–65535; anything else (named ports, ranges) is skipped, as istiod does. */
function toPorts(values: string[] | undefined): number[] {
  const out: number[] = [];
  for (const v of values ?? []) {
    if (!/^[0-9]+$/.test(v)) continue;
    const n = Number(v);
    if (n <= 65535) out.push(n);
  }
  return out;
}

/** IPs and CIDRs as raw address bytes + prefix length; unparsable entries are skipped. */
export function toCidrs(values: string[] | undefined): CidrAddress[] {
  const out: CidrAddress[] = [];
  for (const v of values ?? []) {
    const c = parseCidr(v);
    if (c !== undefined) out.push(c);
  }
  return out;
}
