// gateway.networking.k8s.io (v1 and v1beta1 share one schema): Gateway, HTTPRoute, GRPCRoute. Limits, patterns and
// CEL messages follow the Gateway API standard-channel CRDs.
import { z } from 'zod';
import { ALWAYS, DNS1123_SUBDOMAIN, checkedString, dns1123SubdomainProblem, labelMap, objectMeta, port, show } from './common.js';

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

const filter = () =>
  z.looseObject({
    type: z.enum(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS']),
  });

const backendRef = () =>
  z
    .looseObject({
      group: group().optional(),
      kind: kind().optional(),
      name: objectName(),
      namespace: z.string().optional(),
      port: port().optional(),
      weight: z.int().min(0).max(1000000).optional(),
      filters: z.array(filter()).max(16).optional(),
    })
    .superRefine((b, ctx) => {
      const isService = (b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service';
      if (isService && b.port === undefined) ctx.addIssue({ code: 'custom', path: [], message: 'Must have port for Service reference' });
    }, ALWAYS);

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

const httpRouteRule = z.looseObject({
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
  filters: z.array(filter()).max(16).optional(),
  backendRefs: z.array(backendRef()).max(16).optional(),
  timeouts: z.looseObject({ request: gatewayDuration().optional(), backendRequest: gatewayDuration().optional() }).optional(),
  retry: z
    .looseObject({ attempts: z.int().min(0).optional(), backoff: gatewayDuration().optional(), codes: z.array(z.int().min(400).max(599)).optional() })
    .optional(),
});

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
    if (!m.service && !m.method) ctx.addIssue({ code: 'custom', path: [], message: "One or both of 'service' or 'method' must be specified" });
  }, ALWAYS);

const grpcRouteRule = z.looseObject({
  name: sectionName().optional(),
  matches: z.array(z.looseObject({ method: grpcMethodMatch.optional(), headers: z.array(headerMatch()).max(16).optional() })).max(64).optional(),
  filters: z.array(filter()).max(16).optional(),
  backendRefs: z.array(backendRef()).max(16).optional(),
});

export const grpcRouteSchema = z.looseObject({
  apiVersion: z.enum(GATEWAY_VERSIONS),
  kind: z.literal('GRPCRoute'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: routeSpec(grpcRouteRule).default({}),
  status: z.looseObject({}).optional(),
});
