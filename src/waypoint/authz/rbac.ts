// The waypoint's L7 authorization: AuthorizationPolicies (ALLOW, DENY, AUDIT; CUSTOM never reaches the waypoint)
// evaluated as the Envoy RBAC filters istiod generates for a waypoint behave (pilot/pkg/security/authz/builder and
// model, envoy rbac_filter.cc). Policies are compiled once per configuration change; `authorize` then runs per
// request without allocating unless AUDIT or dry-run policies have something to report.
import type { PolicyOperation, PolicyRule, PolicySource, WaypointPolicy } from '../../xds/types.js';
import {
  AuthorityPredicate,
  CidrSet,
  ClaimPredicate,
  HeaderPredicate,
  IpPredicate,
  MethodPredicate,
  PortPredicate,
  PrincipalPredicate,
  RequestPrincipalPredicate,
  SniPredicate,
  StringSet,
  UrlPathPredicate,
  addHeaderForm,
  addNamespaceForm,
  addPrincipalForm,
  addServiceAccountForm,
  addStringForm,
  addTrustDomainForm,
  containsPathTemplate,
  parsePort,
  pathTemplateRegex,
  type IpAttribute,
  type Predicate,
} from './matchers.js';
import { RequestView, asciiLowerCase, type RequestAttributes, type TrafficKind } from './request.js';

export type { HttpRequestAttributes, RequestAttributes, TrafficKind } from './request.js';

/** 403 body Envoy sends on an RBAC denial. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

export interface CompileProblem {
  /** `<namespace>/<name>` of the policy. */
  policy: string;
  /** Index of the rule in `spec.rules`. */
  rule: number;
  message: string;
}

export interface ShadowResult {
  /** The dry-run policy id that decided; '' when none matched (Envoy then leaves shadow_effective_policy_id unset). */
  readonly policy: string;
  readonly result: 'allowed' | 'denied';
}

/** Decisions without AUDIT or dry-run results are shared objects: treat every decision as read-only. */
export interface AuthzDecision {
  readonly allowed: boolean;
  /**
   * Envoy's matched policy id for the response details `rbac_access_denied_matched_policy[<id>]`:
   * `ns[<ns>]-policy[<name>]-rule[<i>]` for a DENY hit, `none` for an ALLOW miss. Undefined when allowed.
   */
  readonly matchedPolicy?: string;
  /** AUDIT policies whose rules matched, one id (as above) per policy; they never change the decision. */
  readonly audited?: readonly string[];
  /**
   * Dry-run outcome when dry-run policies exist, per engine: Envoy's `istio_dry_run_deny_` / `istio_dry_run_allow_`
   * shadow_effective_policy_id and shadow_engine_result. `allow` is absent when an enforced DENY already denied.
   */
  readonly shadow?: { readonly deny?: ShadowResult; readonly allow?: ShadowResult };
}

interface Condition {
  readonly positive: Predicate | undefined;
  readonly negative: Predicate | undefined;
}

interface CompiledRule {
  /** `ns[<ns>]-policy[<name>]-rule[<i>]`, the key of the Envoy RBAC policy istiod generates for the rule. */
  readonly id: string;
  /** Position of its policy in the input, to report each AUDIT policy once. */
  readonly policyIndex: number;
  /** OR of AND lists; one empty list when the rule has no `from`/`to` (matches anything). */
  readonly from: readonly (readonly Condition[])[];
  readonly to: readonly (readonly Condition[])[];
  readonly when: readonly Condition[];
  /** The decision a DENY hit on this rule returns, built once. */
  readonly denial: AuthzDecision;
}

/** One RBAC engine: its rules sorted by id, the order Envoy's std::map iterates them. */
interface Engine {
  readonly rules: readonly CompiledRule[];
}

/** The compiled form of a waypoint's policies for one traffic kind; opaque to callers. */
export interface CompiledPolicies {
  readonly kind: TrafficKind;
  readonly audit: Engine | undefined;
  readonly deny: Engine | undefined;
  readonly denyShadow: Engine | undefined;
  /** Present whenever an enforced ALLOW policy exists, even if none of its rules survived compilation. */
  readonly allow: Engine | undefined;
  readonly allowShadow: Engine | undefined;
}

// ---- fields -----------------------------------------------------------------------------------------------------

/** How one policy field or `when` key compiles: all valid values into one predicate, invalid ones reported. */
interface Field {
  /** Field name as istiod names it in "<field> is HTTP only". */
  readonly name: string;
  readonly httpOnly: boolean;
  compile(values: readonly string[], invalid: (message: string) => void): Predicate | undefined;
}

/** A field whose values all go into one StringSet; `add` returns an error message for a value it cannot express. */
function setField(
  name: string,
  httpOnly: boolean,
  add: (set: StringSet, value: string) => string | undefined,
  make: (set: StringSet) => Predicate,
): Field {
  return {
    name,
    httpOnly,
    compile(values, invalid) {
      const set = new StringSet();
      let valid = 0;
      for (const v of values) {
        const error = add(set, v);
        if (error === undefined) valid++;
        else invalid(error);
      }
      return valid > 0 ? make(set) : undefined;
    },
  };
}

function infallible(add: (set: StringSet, value: string) => void): (set: StringSet, value: string) => undefined {
  return (set, value) => {
    add(set, value);
    return undefined;
  };
}

const principalField = setField('principals', false, infallible(addPrincipalForm), (s) => new PrincipalPredicate(s));
const namespaceField = setField('namespaces', false, infallible(addNamespaceForm), (s) => new PrincipalPredicate(s));
const trustDomainField = setField('trustDomains', false, infallible(addTrustDomainForm), (s) => new PrincipalPredicate(s));
const sniField = setField('connection.sni', false, infallible(addStringForm), (s) => new SniPredicate(s));
const methodField = setField('methods', true, infallible(addHeaderForm), (s) => new MethodPredicate(s));
const hostField = setField(
  'hosts',
  true,
  infallible((set, v) => addHeaderForm(set, asciiLowerCase(v))),
  (s) => new AuthorityPredicate(s),
);
const pathField = setField(
  'paths',
  true,
  (set, v) => {
    if (!containsPathTemplate(v)) {
      addStringForm(set, v);
      return undefined;
    }
    const regex = pathTemplateRegex(v);
    if (regex === undefined) return `invalid or unsupported path template "${v}"`;
    set.addRegex(regex);
    return undefined;
  },
  (s) => new UrlPathPredicate(s),
);

function serviceAccountField(policyNamespace: string): Field {
  return setField('serviceAccounts', false, infallible((set, v) => addServiceAccountForm(set, v, policyNamespace)), (s) => new PrincipalPredicate(s));
}

function headerField(name: string): Field {
  return setField('request.headers', true, infallible(addHeaderForm), (s) => new HeaderPredicate(name, s));
}

function claimField(name: string, path: readonly string[]): Field {
  return setField(name, true, infallible(addStringForm), (s) => new ClaimPredicate(path, s));
}

function ipField(name: string, attribute: IpAttribute): Field {
  return {
    name,
    httpOnly: false,
    compile(values, invalid) {
      const cidrs = new CidrSet();
      let valid = 0;
      for (const v of values) {
        if (cidrs.add(v)) valid++;
        else invalid(`invalid IP address or CIDR "${v}"`);
      }
      return valid > 0 ? new IpPredicate(attribute, cidrs) : undefined;
    },
  };
}

function portField(name: string): Field {
  return {
    name,
    httpOnly: false,
    compile(values, invalid) {
      const ports = new Set<number>();
      for (const v of values) {
        const port = parsePort(v);
        if (port === undefined) invalid(`invalid port "${v}"`);
        else ports.add(port);
      }
      return ports.size > 0 ? new PortPredicate(ports) : undefined;
    },
  };
}

/** `<iss>/<sub>` split at the last `/` (issuers are URLs), each side an Envoy string matcher (generator.go). */
function requestPrincipalField(name: string): Field {
  return {
    name,
    httpOnly: true,
    compile(values) {
      const alternatives = values.map((v) => {
        const iss = new StringSet();
        const sub = new StringSet();
        const slash = v.lastIndexOf('/');
        const found = slash >= 0;
        const issText = found ? v.slice(0, slash) : v;
        const subText = found ? v.slice(slash + 1) : '';
        if (v === '*') {
          iss.addNonEmpty();
          sub.addNonEmpty();
        } else if (v.startsWith('*')) {
          if (!found) {
            iss.addNonEmpty();
            sub.addSuffix(v.slice(1));
          } else {
            if (issText === '*') iss.addNonEmpty();
            else iss.addSuffix(issText.slice(1));
            sub.addExact(subText);
          }
        } else if (v.endsWith('*')) {
          if (!found) {
            iss.addPrefix(v.slice(0, -1));
            sub.addNonEmpty();
          } else {
            iss.addExact(issText);
            if (subText === '*') sub.addNonEmpty();
            else sub.addPrefix(subText.slice(0, -1));
          }
        } else {
          iss.addExact(issText);
          sub.addExact(subText);
        }
        return { iss, sub };
      });
      return new RequestPrincipalPredicate(alternatives);
    },
  };
}

/** A key whose every use is an error (malformed brackets, unsupported attribute): one problem per value list. */
function failingField(name: string, httpOnly: boolean, message: string): Field {
  return {
    name,
    httpOnly,
    compile(_values, invalid) {
      invalid(message);
      return undefined;
    },
  };
}

/** extractNameInBrackets: `[<name>]`. */
function nameInBrackets(s: string): string | undefined {
  return s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : undefined;
}

/** extractNameInNestedBrackets: `[a][b]…`, or a single `[a[b]]`-style name when the brackets do not pair up. */
function namesInNestedBrackets(s: string): string[] | undefined {
  const names: string[] = [];
  for (let begin = 0; begin < s.length; ) {
    let end = -1;
    if (s[begin] === '[') {
      for (let i = begin + 1; i < s.length && s[i] !== '['; i++) {
        if (s[i] === ']') {
          end = i;
          break;
        }
      }
    }
    if (end < 0) {
      const whole = nameInBrackets(s);
      return whole === undefined ? undefined : [whole];
    }
    names.push(s.slice(begin + 1, end));
    begin = end + 1;
  }
  return names;
}

const REQUEST_HEADERS = 'request.headers';
const REQUEST_CLAIMS = 'request.auth.claims';
const ENVOY_FILTER = 'experimental.envoy.filters.';

/** The field a `when` key selects (model.go New), or undefined for an unknown attribute. */
function whenField(key: string, policyNamespace: string): Field | undefined {
  switch (key) {
    case 'source.ip':
      return ipField(key, 'source');
    case 'remote.ip':
      return ipField(key, 'remote');
    case 'source.namespace':
      return namespaceField;
    case 'source.principal':
      return principalField;
    case 'source.serviceAccount':
      return serviceAccountField(policyNamespace);
    case 'source.trustDomain':
      return trustDomainField;
    case 'request.auth.principal':
      return requestPrincipalField(key);
    case 'request.auth.audiences':
      return claimField(key, ['aud']);
    case 'request.auth.presenter':
      return claimField(key, ['azp']);
    case 'destination.ip':
      return ipField(key, 'destination');
    case 'destination.port':
      return portField(key);
    case 'connection.sni':
      return sniField;
  }
  if (key.startsWith(ENVOY_FILTER)) {
    // Istio matches Envoy filter metadata here; the waypoint has no such metadata, so the condition cannot be
    // expressed and gets the generation-error treatment (ALLOW rule dropped, DENY condition ignored).
    return failingField(key, false, `${key} is not supported by the waypoint (Envoy filter metadata)`);
  }
  if (key.startsWith(REQUEST_HEADERS)) {
    const name = nameInBrackets(key.slice(REQUEST_HEADERS.length));
    if (name === undefined) return failingField(key, true, `expecting format ${REQUEST_HEADERS}[<NAME>], found ${key}`);
    return headerField(asciiLowerCase(name));
  }
  if (key.startsWith(REQUEST_CLAIMS)) {
    const path = namesInNestedBrackets(key.slice(REQUEST_CLAIMS.length));
    if (path === undefined) return failingField(key, true, `expecting format ${REQUEST_CLAIMS}[<NAME>]..., found ${key}`);
    return claimField(key, path);
  }
  return undefined;
}

type SourceKey = keyof PolicySource;
type OperationKey = keyof PolicyOperation;

function sourceFields(policyNamespace: string): readonly [SourceKey, SourceKey, Field][] {
  return [
    ['ipBlocks', 'notIpBlocks', ipField('ipBlocks', 'source')],
    ['remoteIpBlocks', 'notRemoteIpBlocks', ipField('remoteIpBlocks', 'remote')],
    ['principals', 'notPrincipals', principalField],
    ['namespaces', 'notNamespaces', namespaceField],
    ['serviceAccounts', 'notServiceAccounts', serviceAccountField(policyNamespace)],
    ['trustDomains', 'notTrustDomains', trustDomainField],
    ['requestPrincipals', 'notRequestPrincipals', requestPrincipalField('requestPrincipals')],
  ];
}

const OPERATION_FIELDS: readonly [OperationKey, OperationKey, Field][] = [
  ['ports', 'notPorts', portField('ports')],
  ['methods', 'notMethods', methodField],
  ['hosts', 'notHosts', hostField],
  ['paths', 'notPaths', pathField],
];

// ---- compilation ------------------------------------------------------------------------------------------------

type Action = 'ALLOW' | 'DENY' | 'AUDIT';

/** State of one rule's compilation. */
class RuleCompiler {
  /** Set when a value could not be expressed; an ALLOW rule is then dropped as a whole. */
  failed = false;

  constructor(
    private readonly policy: string,
    private readonly rule: number,
    private readonly action: Action,
    private readonly kind: TrafficKind,
    private readonly problems: CompileProblem[],
  ) {}

  report(message: string): void {
    this.problems.push({ policy: this.policy, rule: this.rule, message });
  }

  /** istiod's checkError: an ALLOW policy loses the rule (smaller allow), DENY/AUDIT ignore the value (wider match). */
  private fail(message: string): void {
    this.failed = true;
    this.report(this.action === 'ALLOW' ? `${message}; the ALLOW rule is dropped` : `${message}; ignored, which widens the ${this.action} rule`);
  }

  /** One field's values (ORed) and notValues (none may match); `where`/`notWhere` name the lists in problems. */
  condition(field: Field, values: readonly string[] | undefined, notValues: readonly string[] | undefined, where: string, notWhere: string): Condition | undefined {
    const pos = values ?? [];
    const neg = notValues ?? [];
    if (pos.length === 0 && neg.length === 0) return undefined;
    if (field.httpOnly && this.kind === 'tcp') {
      this.fail(`${pos.length > 0 ? where : notWhere}: "${field.name}" is HTTP only`);
      return undefined;
    }
    const positive = pos.length > 0 ? field.compile(pos, (m) => this.fail(`${where}: ${m}`)) : undefined;
    const negative = neg.length > 0 ? field.compile(neg, (m) => this.fail(`${notWhere}: ${m}`)) : undefined;
    return positive === undefined && negative === undefined ? undefined : { positive, negative };
  }
}

function pushDefined<T>(list: T[], v: T | undefined): void {
  if (v !== undefined) list.push(v);
}

const MATCH_ANY: readonly (readonly Condition[])[] = [[]];

function compileRule(
  policy: WaypointPolicy,
  rule: PolicyRule,
  ruleIndex: number,
  action: Action,
  kind: TrafficKind,
  problems: CompileProblem[],
): Omit<CompiledRule, 'id' | 'policyIndex' | 'denial'> | undefined {
  const c = new RuleCompiler(`${policy.namespace}/${policy.name}`, ruleIndex, action, kind, problems);

  // An unknown `when` key makes istiod skip the rule whatever the action (model.New fails before generation).
  const whenFields: Field[] = [];
  let unknown = false;
  (rule.when ?? []).forEach((w, i) => {
    const field = whenField(w.key, policy.namespace);
    if (field === undefined) {
      c.report(`when[${i}]: unknown attribute ${w.key}; the rule is skipped`);
      unknown = true;
    } else {
      whenFields.push(field);
    }
  });
  if (unknown) return undefined;

  const when: Condition[] = [];
  (rule.when ?? []).forEach((w, i) => {
    pushDefined(when, c.condition(whenFields[i]!, w.values, w.notValues, `when[${i}] ${w.key} values`, `when[${i}] ${w.key} notValues`));
  });

  const fields = sourceFields(policy.namespace);
  const from = (rule.from ?? []).map((f, i) => {
    const conditions: Condition[] = [];
    const s = f.source;
    if (s !== undefined) {
      for (const [key, notKey, field] of fields) {
        pushDefined(conditions, c.condition(field, s[key], s[notKey], `from[${i}].source.${key}`, `from[${i}].source.${notKey}`));
      }
    }
    return conditions;
  });

  const to = (rule.to ?? []).map((t, i) => {
    const conditions: Condition[] = [];
    const o = t.operation;
    if (o !== undefined) {
      for (const [key, notKey, field] of OPERATION_FIELDS) {
        pushDefined(conditions, c.condition(field, o[key], o[notKey], `to[${i}].operation.${key}`, `to[${i}].operation.${notKey}`));
      }
    }
    return conditions;
  });

  if (c.failed && action === 'ALLOW') return undefined;
  return { from: from.length > 0 ? from : MATCH_ANY, to: to.length > 0 ? to : MATCH_ANY, when };
}

class EngineBuilder {
  present = false;
  readonly rules: CompiledRule[] = [];

  build(): Engine | undefined {
    if (!this.present) return undefined;
    this.rules.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { rules: this.rules };
  }
}

/**
 * Compiles the policies that apply to one waypoint traffic kind (HTTP chains or TCP chains). Values istiod could not
 * turn into Envoy config are reported, with what that does to the rule.
 */
export function compilePolicies(policies: readonly WaypointPolicy[], kind: TrafficKind): { compiled: CompiledPolicies; problems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const audit = new EngineBuilder();
  const deny = new EngineBuilder();
  const denyShadow = new EngineBuilder();
  const allow = new EngineBuilder();
  const allowShadow = new EngineBuilder();

  policies.forEach((policy, policyIndex) => {
    const action: Action = policy.action === 'DENY' || policy.action === 'AUDIT' ? policy.action : 'ALLOW';
    const dryRun = policy.dryRun === true;
    // Envoy's shadow engine for the LOG action sets nothing (rbac engine_impl: no access-log hint in shadow mode),
    // so a dry-run AUDIT policy has no observable effect.
    if (action === 'AUDIT' && dryRun) return;
    const engine = action === 'AUDIT' ? audit : action === 'DENY' ? (dryRun ? denyShadow : deny) : dryRun ? allowShadow : allow;
    engine.present = true;
    const rules = policy.rules ?? [];
    // A policy without rules becomes a never-matching `…-rule[0]`: it only makes its engine exist.
    for (let i = 0; i < rules.length; i++) {
      const compiled = compileRule(policy, rules[i]!, i, action, kind, problems);
      if (compiled === undefined) continue;
      const id = `ns[${policy.namespace}]-policy[${policy.name}]-rule[${i}]`;
      engine.rules.push({ ...compiled, id, policyIndex, denial: Object.freeze({ allowed: false, matchedPolicy: id }) });
    }
  });

  return {
    compiled: {
      kind,
      audit: audit.build(),
      deny: deny.build(),
      denyShadow: denyShadow.build(),
      allow: allow.build(),
      allowShadow: allowShadow.build(),
    },
    problems,
  };
}

/**
 * The policies in force while the waypoint's configuration is incomplete (a policy that applies, or the waypoint's
 * own resource, has not arrived): an enforced ALLOW engine without rules. Envoy's RBAC filter denies every request
 * such an engine sees with `rbac_access_denied_matched_policy[none]`, which fails closed where skipping the missing
 * policy could allow what it was there to restrict.
 */
export function denyAllPolicies(kind: TrafficKind): CompiledPolicies {
  return { kind, audit: undefined, deny: undefined, denyShadow: undefined, allow: { rules: [] }, allowShadow: undefined };
}

// ---- evaluation -------------------------------------------------------------------------------------------------

const ALLOWED: AuthzDecision = Object.freeze({ allowed: true });
const DENIED_NO_ALLOW_MATCH: AuthzDecision = Object.freeze({ allowed: false, matchedPolicy: 'none' });

/** Reused for every call: authorize is synchronous and never re-entered. */
const view = new RequestView();

function allOf(conditions: readonly Condition[]): boolean {
  for (let i = 0; i < conditions.length; i++) {
    const c = conditions[i]!;
    if (c.positive !== undefined && !c.positive.matches(view)) return false;
    if (c.negative !== undefined && c.negative.matches(view)) return false;
  }
  return true;
}

function anyOf(alternatives: readonly (readonly Condition[])[]): boolean {
  for (let i = 0; i < alternatives.length; i++) if (allOf(alternatives[i]!)) return true;
  return false;
}

function ruleMatches(rule: CompiledRule): boolean {
  return allOf(rule.when) && anyOf(rule.to) && anyOf(rule.from);
}

/** The first matching rule in Envoy's order, as its RBAC engine reports the effective policy id. */
function firstMatch(engine: Engine): CompiledRule | undefined {
  const rules = engine.rules;
  for (let i = 0; i < rules.length; i++) if (ruleMatches(rules[i]!)) return rules[i];
  return undefined;
}

function auditedPolicies(engine: Engine): string[] | undefined {
  let audited: string[] | undefined;
  let lastPolicy = -1;
  for (let i = 0; i < engine.rules.length; i++) {
    const rule = engine.rules[i]!;
    // A policy's rule ids share their prefix, so its rules are adjacent in the sorted order.
    if (rule.policyIndex === lastPolicy || !ruleMatches(rule)) continue;
    lastPolicy = rule.policyIndex;
    (audited ??= []).push(rule.id);
  }
  return audited;
}

function shadowResult(engine: Engine, action: 'ALLOW' | 'DENY'): ShadowResult {
  const hit = firstMatch(engine);
  if (action === 'DENY') return { policy: hit?.id ?? '', result: hit ? 'denied' : 'allowed' };
  return { policy: hit?.id ?? '', result: hit ? 'allowed' : 'denied' };
}

function decision(base: AuthzDecision, audited: string[] | undefined, deny: ShadowResult | undefined, allow: ShadowResult | undefined): AuthzDecision {
  if (audited === undefined && deny === undefined && allow === undefined) return base;
  const shadow = deny === undefined && allow === undefined ? undefined : allow === undefined ? { deny } : deny === undefined ? { allow } : { deny, allow };
  return { ...base, ...(audited !== undefined && { audited }), ...(shadow !== undefined && { shadow }) };
}

/**
 * Envoy's filter order at the waypoint: AUDIT (log only), then DENY, then ALLOW. Within an engine each filter
 * evaluates its dry-run rules first, and a request denied by DENY never reaches the ALLOW filter.
 */
export function authorize(compiled: CompiledPolicies, req: RequestAttributes): AuthzDecision {
  view.reset(req);
  const audited = compiled.audit === undefined ? undefined : auditedPolicies(compiled.audit);
  const denyShadow = compiled.denyShadow === undefined ? undefined : shadowResult(compiled.denyShadow, 'DENY');
  if (compiled.deny !== undefined) {
    const hit = firstMatch(compiled.deny);
    if (hit !== undefined) return decision(hit.denial, audited, denyShadow, undefined);
  }
  const allowShadow = compiled.allowShadow === undefined ? undefined : shadowResult(compiled.allowShadow, 'ALLOW');
  if (compiled.allow !== undefined && firstMatch(compiled.allow) === undefined) {
    return decision(DENIED_NO_ALLOW_MATCH, audited, denyShadow, allowShadow);
  }
  return decision(ALLOWED, audited, denyShadow, allowShadow);
}
