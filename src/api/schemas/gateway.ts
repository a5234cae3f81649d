// gateway.networking.k8s.io (v1 and v1beta1 share one schema): Gateway, HTTPRoute, GRPCRoute. Limits, patterns and
// CEL messages follow the Gateway API v1.6 standard-channel CRDs, plus the experimental channel's HTTPRoute retry.
import { z } from 'zod';
import { ALWAYS, DNS1123_SUBDOMAIN, checkedString, dns1123Label, dns1123SubdomainProblem, isRecord, labelMap, objectMeta, port, show } from './common.js';

export const GATEWAY_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'] as const;

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Gateway API Duration: up to four "<number><unit>" groups, no fractions.
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const PROTOCOL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/;

const hostname = () =>
  checkedString((h) =>
    h.length >= 1 && h.length <= 253 && HOSTNAME.test(h) ? undefined : `must be a hostname such as "example.com" or "*.example.com", found ${show(h)}`,
  );
const gatewayDuration = () =>
  checkedString((d) => (GATEWAY_DURATION.test(d) ? undefined : `must be a duration such as "10s" or "1h30m", found ${show(d)}`));
const sectionName = () => checkedString(dns1123SubdomainProblem);
const group = () =>
  z.string().max(253).refine((g) => g === '' || DNS1123_SUBDOMAIN.test(g), { error: (i) => `must be an API group, found ${show(i.input)}` });
const kind = () =>
  z.string().min(1).max(63).regex(/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, { error: (i) => `must be a kind such as "Service", found ${show(i.input)}` });
const objectName = () => z.string().min(1, { error: 'must not be empty' }).max(253);

const parentRef = () =>
  z.looseObject({
    group: group().optional(),
    kind: kind().optional(),
    namespace: z.string().optional(),
    name: objectName(),
    sectionName: sectionName().optional(),
    port: port().optional(),
  });

const listener = z
  .looseObject({
    name: sectionName(),
    hostname: hostname().optional(),
    port: port(),
    protocol: z.string().min(1).max(255).regex(PROTOCOL, { error: (i) => `must be a protocol such as "HTTP", "HBONE" or "example.com/Custom", found ${show(i.input)}` }),
    tls: z.looseObject({ mode: z.enum(['Terminate', 'Passthrough']).optional() }).optional(),
    allowedRoutes: z
      .looseObject({
        namespaces: z
          .looseObject({ from: z.enum(['All', 'Same', 'Selector']).optional(), selector: z.looseObject({ matchLabels: labelMap().optional() }).optional() })
          .optional(),
        kinds: z.array(z.looseObject({ group: group().optional(), kind: kind() })).max(8).optional(),
      })
      .optional(),
  })
  .superRefine((l, ctx) => {
    if (l.tls !== undefined && ['HTTP', 'TCP', 'UDP'].includes(l.protocol)) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']" });
    }
    if (l.hostname !== undefined && ['TCP', 'UDP'].includes(l.protocol)) {
      ctx.addIssue({ code: 'custom', path: ['hostname'], message: "hostname must not be specified for protocols ['TCP', 'UDP']" });
    }
  }, ALWAYS);

const gatewaySpec = z
  .looseObject({
    gatewayClassName: objectName(),
    listeners: z.array(listener).min(1, { error: 'must have at least one listener' }).max(64),
    addresses: z.array(z.looseObject({ type: z.string().optional(), value: z.string().min(1).max(253) })).max(16).optional(),
    infrastructure: z
      .looseObject({ labels: z.record(z.string(), z.string()).optional(), annotations: z.record(z.string(), z.string()).optional() })
      .optional(),
  })
  .superRefine((spec, ctx) => {
    if (!Array.isArray(spec.listeners)) return;
    const seen = new Map<string, number>();
    spec.listeners.forEach((l, i) => {
      if (!l || typeof l.name !== 'string') return;
      const first = seen.get(l.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['listeners', i, 'name'], message: `Listener name must be unique within the Gateway (also listeners[${first}])` });
      else seen.set(l.name, i);
    });
  }, ALWAYS);

export const gatewaySchema = z.looseObject({
  apiVersion: z.enum(GATEWAY_VERSIONS),
  kind: z.literal('Gateway'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: gatewaySpec,
  status: z.looseObject({}).optional(),
});

// GatewayClass: cluster-scoped; `controllerName` is immutable in the CRD (`Value is immutable`).
export const gatewayClassSchema = z.looseObject({
  apiVersion: z.enum(GATEWAY_VERSIONS),
  kind: z.literal('GatewayClass'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: z.looseObject({
    controllerName: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$/, {
        error: (i) => `must be a domain-prefixed path such as "example.com/gateway-controller", found ${show(i.input)}`,
      }),
    description: z.string().max(64).optional(),
    parametersRef: z.looseObject({}).optional(),
  }),
  status: z.looseObject({}).optional(),
});

// --- Route filters (HTTPRouteFilter, GRPCRouteFilter) and the rule-level rules about them. CEL messages are the CRDs'
// own words (Gateway API v1.6 apis/v1/httproute_types.go, grpcroute_types.go, shared_types.go) and are reported at the
// path kube-apiserver reports them: the object or list that carries the rule.

// HTTPHeaderName (shared_types.go HeaderName): an RFC 7230 token, 1-256 characters.
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const headerName = () =>
  checkedString((n) =>
    n.length >= 1 && n.length <= 256 && HEADER_NAME.test(n)
      ? undefined
      : `must be an HTTP header name (1-256 letters, digits or !#$%&'*+-.^_\`|~), found ${show(n)}`,
  );
// PreciseHostname: an RFC 1123 hostname without a wildcard.
const preciseHostname = () =>
  checkedString((h) =>
    h.length >= 1 && h.length <= 253 && DNS1123_SUBDOMAIN.test(h) ? undefined : `must be a hostname such as "example.com" (no wildcard, no port), found ${show(h)}`,
  );

/** A required enum: a missing value says "required" rather than listing the values. */
const requiredEnum = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => (iss.input === undefined ? 'required' : undefined) });

/** `listType=set`: kube-apiserver refuses a repeated item with "Duplicate value", at the repeated item. */
function uniqueItems(list: unknown, ctx: z.RefinementCtx): void {
  if (!Array.isArray(list)) return;
  const seen = new Set<unknown>();
  list.forEach((v, i) => {
    if (typeof v !== 'string' && typeof v !== 'number') return;
    if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message: `Duplicate value: ${JSON.stringify(v)}` });
    else seen.add(v);
  });
}

/** `!('*' in self && self.size() > 1)`, the CORS lists' wildcard rule. */
const wildcardAlone = (message: string) => (list: unknown[], ctx: z.RefinementCtx) => {
  if (Array.isArray(list) && list.includes('*') && list.length > 1) ctx.addIssue({ code: 'custom', path: [], message });
};

// HTTPHeaderFilter. `set` and `add` are `listType=map` keyed by name, so kube-apiserver refuses an exactly repeated
// name, in its words for a duplicate map-list key (a name repeated in another case passes, and istiod keeps the first).
// The experimental channel's value pattern (`^[!-~]+([\t ]?[!-~]+)*$`) is not applied: the standard CRD accepts any
// 1-4096 characters.
const headerList = () =>
  z
    .array(z.looseObject({ name: headerName(), value: z.string().min(1).max(4096) }))
    .max(16)
    .superRefine((list, ctx) => {
      if (!Array.isArray(list)) return;
      const seen = new Set<string>();
      list.forEach((h, i) => {
        if (!isRecord(h) || typeof h.name !== 'string') return;
        if (!seen.has(h.name)) seen.add(h.name);
        else ctx.addIssue({ code: 'custom', path: [i], message: `Duplicate value: map[string]interface {}{"name":${JSON.stringify(h.name)}}` });
      });
    }, ALWAYS);
const headerFilter = () =>
  z.looseObject({
    set: headerList().optional(),
    add: headerList().optional(),
    remove: z.array(z.string()).max(16).superRefine(uniqueItems, ALWAYS).optional(),
  });

// HTTPPathModifier: `type` says which of the two replacements is meant, and only that one may (and must) be set.
const pathModifier = () =>
  z
    .looseObject({
      type: requiredEnum(['ReplaceFullPath', 'ReplacePrefixMatch']),
      replaceFullPath: z.string().max(1024).optional(),
      replacePrefixMatch: z.string().max(1024).optional(),
    })
    .superRefine((p, ctx) => {
      if (!isRecord(p) || typeof p.type !== 'string') return;
      for (const field of ['replaceFullPath', 'replacePrefixMatch'] as const) {
        const type = field === 'replaceFullPath' ? 'ReplaceFullPath' : 'ReplacePrefixMatch';
        if (p.type === type && p[field] === undefined) ctx.addIssue({ code: 'custom', path: [], message: `${field} must be specified when type is set to '${type}'` });
        if (p[field] !== undefined && p.type !== type) ctx.addIssue({ code: 'custom', path: [], message: `type must be '${type}' when ${field} is set` });
      }
    }, ALWAYS);

// HTTPRequestRedirectFilter. statusCode: the v1.6 CRDs (both channels) allow 301, 302, 303, 307 and 308; the standard
// channel of earlier releases allowed only 301 and 302. Istio converts all five, so all five are accepted.
const requestRedirect = () =>
  z.looseObject({
    scheme: z.enum(['http', 'https']).optional(),
    hostname: preciseHostname().optional(),
    path: pathModifier().optional(),
    port: port().optional(),
    statusCode: z.literal([301, 302, 303, 307, 308]).optional(),
  });

const urlRewrite = () => z.looseObject({ hostname: preciseHostname().optional(), path: pathModifier().optional() });

/** BackendObjectReference: a Service (the default kind, core group) must name its port. */
const backendObjectReferenceShape = () => ({
  group: group().optional(),
  kind: kind().optional(),
  name: objectName(),
  namespace: dns1123Label().optional(),
  port: port().optional(),
});
function checkServicePort(b: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(b)) return;
  const isService = (b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service';
  if (isService && b.port === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'Must have port for Service reference' });
}

// HTTPRequestMirrorFilter (also GRPCRoute's RequestMirror). `fraction.denominator` defaults to 100.
const requestMirror = () =>
  z
    .looseObject({
      backendRef: z.looseObject(backendObjectReferenceShape()).superRefine(checkServicePort, ALWAYS),
      percent: z.int().min(0).max(100).optional(),
      fraction: z
        .looseObject({ numerator: z.int().min(0), denominator: z.int().min(1).optional() })
        .superRefine((f, ctx) => {
          if (!isRecord(f) || typeof f.numerator !== 'number') return;
          const denominator = f.denominator ?? 100;
          if (typeof denominator === 'number' && f.numerator > denominator) {
            ctx.addIssue({ code: 'custom', path: [], message: 'numerator must be less than or equal to denominator' });
          }
        }, ALWAYS)
        .optional(),
    })
    .superRefine((m, ctx) => {
      if (isRecord(m) && m.percent !== undefined && m.fraction !== undefined) {
        ctx.addIssue({ code: 'custom', path: [], message: 'Only one of percent or fraction may be specified in HTTPRequestMirrorFilter' });
      }
    }, ALWAYS);

// HTTPCORSFilter.
const CORS_ORIGIN = /(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)/;
const cors = () =>
  z.looseObject({
    allowOrigins: z
      .array(
        checkedString((o) =>
          o.length >= 1 && o.length <= 253 && CORS_ORIGIN.test(o)
            ? undefined
            : `must be "*" or an origin such as "https://example.com", "https://*.example.com" or "http://example.com:8080", found ${show(o)}`,
        ),
      )
      .max(64)
      .superRefine(uniqueItems, ALWAYS)
      .superRefine(wildcardAlone("AllowOrigins cannot contain '*' alongside other origins"), ALWAYS)
      .optional(),
    allowCredentials: z.boolean().optional(),
    allowMethods: z
      .array(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', '*']))
      .max(9)
      .superRefine(uniqueItems, ALWAYS)
      .superRefine(wildcardAlone("AllowMethods cannot contain '*' alongside other methods"), ALWAYS)
      .optional(),
    // The CRD's message for allowHeaders says "methods" too.
    allowHeaders: z
      .array(headerName())
      .max(64)
      .superRefine(uniqueItems, ALWAYS)
      .superRefine(wildcardAlone("AllowHeaders cannot contain '*' alongside other methods"), ALWAYS)
      .optional(),
    exposeHeaders: z.array(headerName()).max(64).superRefine(uniqueItems, ALWAYS).optional(),
    maxAge: z.int().min(1).optional(),
  });

// LocalObjectReference: group is required but may be "" (the core group).
const extensionRef = () => z.looseObject({ group: group(), kind: kind(), name: objectName() });

/** A filter kind: its `type` value, the field carrying its settings, and that field's schema. */
type FilterKind = readonly [type: string, field: string, schema: () => z.ZodType];

/**
 * A filter object: `type` from the CRD's enum (in the CRD's order, for the message), and the union rules
 * "filter.<field> must be nil if the filter.type is not <Type>" / "must be specified for <Type> filter.type", checked
 * in the order the CRD lists them.
 */
function routeFilter(types: readonly [string, ...string[]], kinds: readonly FilterKind[]) {
  return z
    .looseObject({
      type: requiredEnum(types),
      ...Object.fromEntries(kinds.map(([, field, schema]) => [field, schema().optional()])),
    })
    .superRefine((f, ctx) => {
      if (!isRecord(f) || typeof f.type !== 'string') return;
      for (const [type, field] of kinds) {
        if (f[field] !== undefined && f.type !== type) ctx.addIssue({ code: 'custom', path: [], message: `filter.${field} must be nil if the filter.type is not ${type}` });
        if (f[field] === undefined && f.type === type) ctx.addIssue({ code: 'custom', path: [], message: `filter.${field} must be specified for ${type} filter.type` });
      }
    }, ALWAYS);
}

const httpRouteFilter = routeFilter(
  ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'],
  [
    ['CORS', 'cors', cors],
    ['RequestHeaderModifier', 'requestHeaderModifier', headerFilter],
    ['ResponseHeaderModifier', 'responseHeaderModifier', headerFilter],
    ['RequestMirror', 'requestMirror', requestMirror],
    ['RequestRedirect', 'requestRedirect', requestRedirect],
    ['URLRewrite', 'urlRewrite', urlRewrite],
    ['ExtensionRef', 'extensionRef', extensionRef],
  ],
);

// GRPCRouteFilter: header modifiers, mirror and ExtensionRef only (the enum's order is the CRD's).
const grpcRouteFilter = routeFilter(
  ['ResponseHeaderModifier', 'RequestHeaderModifier', 'RequestMirror', 'ExtensionRef'],
  [
    ['RequestHeaderModifier', 'requestHeaderModifier', headerFilter],
    ['ResponseHeaderModifier', 'responseHeaderModifier', headerFilter],
    ['RequestMirror', 'requestMirror', requestMirror],
    ['ExtensionRef', 'extensionRef', extensionRef],
  ],
);

const typeOf = (f: unknown) => (isRecord(f) ? f.type : undefined);

/** The list rules on a filters list: which filter types may appear at most once, and redirect/rewrite exclusion. */
function filterList(filter: z.ZodType, notRepeated: readonly string[], redirectOrRewrite: boolean) {
  return z
    .array(filter)
    .max(16)
    .superRefine((list, ctx) => {
      if (!Array.isArray(list)) return;
      if (redirectOrRewrite && list.some((f) => typeOf(f) === 'RequestRedirect') && list.some((f) => typeOf(f) === 'URLRewrite')) {
        ctx.addIssue({ code: 'custom', path: [], message: 'May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both' });
      }
      for (const type of notRepeated) {
        if (list.filter((f) => typeOf(f) === type).length > 1) ctx.addIssue({ code: 'custom', path: [], message: `${type} filter cannot be repeated` });
      }
    }, ALWAYS);
}

const httpFilterList = () =>
  filterList(httpRouteFilter, ['CORS', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'], true);

const backendRef = (filters: z.ZodType) =>
  z.looseObject({ ...backendObjectReferenceShape(), weight: z.int().min(0).max(1000000).optional(), filters: filters.optional() }).superRefine(checkServicePort, ALWAYS);

/** `f.<field>.path.type == 'ReplacePrefixMatch' && has(f.<field>.path.replacePrefixMatch)` */
function replacesPrefix(f: unknown, field: 'requestRedirect' | 'urlRewrite'): boolean {
  const settings = isRecord(f) ? f[field] : undefined;
  const path = isRecord(settings) ? settings.path : undefined;
  return isRecord(path) && path.type === 'ReplacePrefixMatch' && path.replacePrefixMatch !== undefined;
}
const existsOne = (list: unknown, pred: (v: unknown) => boolean) => Array.isArray(list) && list.filter(pred).length === 1;

/** HTTPRouteRule's rules about its filters and its backends' filters, reported at the rule. */
function checkHTTPRuleFilters(rule: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(rule)) return;
  const { filters, backendRefs } = rule;
  if (Array.isArray(backendRefs) && backendRefs.length > 0 && Array.isArray(filters) && filters.some((f) => isRecord(f) && f.requestRedirect !== undefined)) {
    ctx.addIssue({ code: 'custom', path: [], message: 'RequestRedirect filter must not be used together with backendRefs' });
  }
  // An absent `matches` is defaulted to one PathPrefix "/" match, and an absent path or path type to PathPrefix.
  const matches = rule.matches === undefined ? [{}] : rule.matches;
  const onePrefixMatch = () => {
    if (!Array.isArray(matches) || matches.length !== 1) return false;
    const path = isRecord(matches[0]) ? matches[0].path : undefined;
    return (isRecord(path) ? path.type ?? 'PathPrefix' : 'PathPrefix') === 'PathPrefix';
  };
  const backendsWith = (field: 'requestRedirect' | 'urlRewrite') =>
    existsOne(backendRefs, (b) => isRecord(b) && existsOne(b.filters, (f) => replacesPrefix(f, field)));
  const rules: [boolean, string][] = [
    [existsOne(filters, (f) => replacesPrefix(f, 'requestRedirect')), 'When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified'],
    [existsOne(filters, (f) => replacesPrefix(f, 'urlRewrite')), 'When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified'],
    [backendsWith('requestRedirect'), 'Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified'],
    [backendsWith('urlRewrite'), 'Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified'],
  ];
  for (const [applies, message] of rules) if (applies && !onePrefixMatch()) ctx.addIssue({ code: 'custom', path: [], message });
}

/** A Gateway API Duration in milliseconds (the syntax is checked by gatewayDuration). */
function durationMs(d: unknown): number | undefined {
  if (typeof d !== 'string' || !GATEWAY_DURATION.test(d)) return undefined;
  const unit: Record<string, number> = { h: 3600000, m: 60000, s: 1000, ms: 1 };
  let ms = 0;
  for (const [, n, u] of d.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(n) * unit[u!]!;
  return ms;
}

const headerMatch = () =>
  z.looseObject({
    type: z.enum(['Exact', 'RegularExpression']).optional(),
    name: z.string().min(1).max(256),
    value: z.string().max(4096),
  });

const httpPathMatch = z
  .looseObject({ type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).optional(), value: z.string().max(1024).optional() })
  .superRefine((m, ctx) => {
    const type = m.type ?? 'PathPrefix';
    if (typeof m.value !== 'string') return;
    if (type !== 'RegularExpression' && !m.value.startsWith('/')) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']" });
    } else if (type !== 'RegularExpression' && m.value.includes('//')) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: "must not contain '//' when type one of ['Exact', 'PathPrefix']" });
    }
  }, ALWAYS);

const httpRouteRule = z
  .looseObject({
    name: sectionName().optional(),
    matches: z
      .array(
        z.looseObject({
          path: httpPathMatch.optional(),
          headers: z.array(headerMatch()).max(16).optional(),
          queryParams: z.array(headerMatch()).max(16).optional(),
          method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']).optional(),
        }),
      )
      .max(64)
      .optional(),
    filters: httpFilterList().optional(),
    backendRefs: z.array(backendRef(httpFilterList())).max(16).optional(),
    timeouts: z
      .looseObject({ request: gatewayDuration().optional(), backendRequest: gatewayDuration().optional() })
      .superRefine((t, ctx) => {
        if (!isRecord(t)) return;
        const request = durationMs(t.request);
        const backendRequest = durationMs(t.backendRequest);
        if (request !== undefined && request !== 0 && backendRequest !== undefined && backendRequest > request) {
          ctx.addIssue({ code: 'custom', path: [], message: 'backendRequest timeout cannot be longer than request timeout' });
        }
      }, ALWAYS)
      .optional(),
    // Experimental channel. v1.6 sets attempts' minimum to 1; earlier releases had none and Istio reads 0 as "do not
    // retry", so 0 stays accepted. `codes` is a listType=set.
    retry: z
      .looseObject({
        attempts: z.int().min(0).optional(),
        backoff: gatewayDuration().optional(),
        codes: z.array(z.int().min(400).max(599)).superRefine(uniqueItems, ALWAYS).optional(),
      })
      .optional(),
  })
  .superRefine(checkHTTPRuleFilters, ALWAYS);

const routeSpec = <R extends z.ZodType>(rule: R) =>
  z.looseObject({
    parentRefs: z.array(parentRef()).max(32).optional(),
    hostnames: z.array(hostname()).max(16).optional(),
    rules: z.array(rule).max(16).optional(),
  });

export const httpRouteSchema = z.looseObject({
  apiVersion: z.enum(GATEWAY_VERSIONS),
  kind: z.literal('HTTPRoute'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: routeSpec(httpRouteRule).default({}),
  status: z.looseObject({}).optional(),
});

const grpcMethodMatch = z
  .looseObject({ type: z.enum(['Exact', 'RegularExpression']).optional(), service: z.string().max(1024).optional(), method: z.string().max(1024).optional() })
  .superRefine((m, ctx) => {
    if (!isRecord(m)) return;
    if (m.service === undefined && m.method === undefined) ctx.addIssue({ code: 'custom', path: [], message: "One or both of 'service' or 'method' must be specified" });
    // Exact (the default type) names must be protobuf identifiers; regular expressions are not checked.
    if (m.type !== undefined && m.type !== 'Exact') return;
    if (typeof m.service === 'string' && !/^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i.test(m.service)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)' });
    }
    if (typeof m.method === 'string' && !/^[A-Za-z_][A-Za-z_0-9]*$/.test(m.method)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)' });
    }
  }, ALWAYS);

const grpcRouteRule = z.looseObject({
  name: sectionName().optional(),
  matches: z.array(z.looseObject({ method: grpcMethodMatch.optional(), headers: z.array(headerMatch()).max(16).optional() })).max(64).optional(),
  filters: filterList(grpcRouteFilter, ['RequestHeaderModifier', 'ResponseHeaderModifier'], false).optional(),
  // The CRD has no list rules on a GRPCRoute backend's filters.
  backendRefs: z.array(backendRef(z.array(grpcRouteFilter).max(16))).max(16).optional(),
});

export const grpcRouteSchema = z.looseObject({
  apiVersion: z.enum(GATEWAY_VERSIONS),
  kind: z.literal('GRPCRoute'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: routeSpec(grpcRouteRule).default({}),
  status: z.looseObject({}).optional(),
});
