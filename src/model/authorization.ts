// AuthorizationPolicy → istio.security.Authorization for ztunnel, as istiod converts it
// (istio/istio pilot/pkg/serviceregistry/ambient/authorization.go: convertAuthorizationPolicy, handleRule), including
// the ZtunnelAccepted status message texts users see on the policy.
import net from 'node:net';
import type { AuthorizationPolicy, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../api/types.js';
import type { Action, Authorization, CidrAddress, Clause, Match, Rule, ServiceAccountMatch, StringMatch } from './xds-types.js';

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

/** Go's strconv.ParseBool, which istiod uses for the `istio.io/dry-run` annotation. */
function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
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

function httpSourceFields(s: AuthzSource): string[] {
  const found: string[] = [];
  if (s.remoteIpBlocks?.length) found.push('remoteIpBlocks');
  if (s.notRemoteIpBlocks?.length) found.push('notRemoteIpBlocks');
  if (s.requestPrincipals?.length) found.push('requestPrincipals');
  if (s.notRequestPrincipals?.length) found.push('notRequestPrincipals');
  // A Match has no trust-domain field and folding it into principals would widen the source, so istiod reports
  // trust domains like HTTP attributes (dropping the ALLOW rule) instead of silently ignoring them.
  if (s.trustDomains?.length) found.push('trustDomains');
  if (s.notTrustDomains?.length) found.push('notTrustDomains');
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

function parseCidr(v: string): CidrAddress | undefined {
  if (v === '') return undefined;
  const slash = v.indexOf('/');
  const ip = slash >= 0 ? v.slice(0, slash) : v;
  const address = ipToBytes(ip);
  if (address === undefined) return undefined;
  const bits = address.length * 8;
  if (slash < 0) return { address, length: bits };
  const lenText = v.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const length = Number(lenText);
  return length <= bits ? { address, length } : undefined;
}

/** Dotted-quad IPv4 without leading zeros (Go's netip rules), parsed without allocating intermediate strings. */
function parseIpv4(ip: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; // end of input acts as a final '.'
    if (c === 46) {
      if (digits === 0 || part > 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  return part === 4 ? out : undefined;
}

/** Raw 4- or 16-byte form of an IP address (IPv4-mapped IPv6 stays 16 bytes, as Go's netip keeps it). */
export function ipToBytes(ip: string): Uint8Array | undefined {
  const v4 = parseIpv4(ip);
  if (v4 !== undefined) return v4;
  // Anything else must be IPv6 (net.isIP also accepts IPv4 forms Go's netip rejects, handled above).
  if (net.isIP(ip) !== 6) return undefined;
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded dotted IPv4 tail becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined ? headGroups : [...headGroups, ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

/** Text form of raw address bytes (IPv6 compressed like Go/Rust print it). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // Longest run (≥2) of zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
