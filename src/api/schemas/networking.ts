// networking.istio.io (v1, v1beta1 and v1alpha3 share one schema): DestinationRule and VirtualService. Only the
// parts a waypoint honours are typed; the rest of each spec is carried through for later use.
import { z } from 'zod';
import { ALWAYS, duration, nonEmptyString, objectMeta, port, show, workloadSelector } from './common.js';

export const NETWORKING_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;

const portSelector = () => z.looseObject({ number: port() });

const trafficPolicyFields = {
  loadBalancer: z
    .looseObject({ simple: z.enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']).optional() })
    .optional(),
  connectionPool: z
    .looseObject({
      tcp: z.looseObject({ maxConnections: z.int().min(0).optional(), connectTimeout: duration().optional() }).optional(),
      http: z
        .looseObject({
          http1MaxPendingRequests: z.int().min(0).optional(),
          http2MaxRequests: z.int().min(0).optional(),
          maxRequestsPerConnection: z.int().min(0).optional(),
          maxRetries: z.int().min(0).optional(),
          idleTimeout: duration().optional(),
          h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
          useClientProtocol: z.boolean().optional(),
        })
        .optional(),
    })
    .optional(),
  outlierDetection: z
    .looseObject({
      consecutive5xxErrors: z.int().min(0).optional(),
      consecutiveGatewayErrors: z.int().min(0).optional(),
      interval: duration().optional(),
      baseEjectionTime: duration().optional(),
      maxEjectionPercent: z.int().min(0).max(100).optional(),
    })
    .optional(),
  tls: z
    .looseObject({
      mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
      sni: z.string().optional(),
      caCertificates: z.string().optional(),
      clientCertificate: z.string().optional(),
      privateKey: z.string().optional(),
      credentialName: z.string().optional(),
      insecureSkipVerify: z.boolean().optional(),
    })
    .optional(),
};

const trafficPolicy = () =>
  z.looseObject({
    ...trafficPolicyFields,
    portLevelSettings: z
      .array(z.looseObject({ ...trafficPolicyFields, port: portSelector() }))
      .max(4096)
      .optional(),
  });

const destinationRuleSpec = z
  .looseObject({
    host: nonEmptyString(),
    trafficPolicy: trafficPolicy().optional(),
    subsets: z
      .array(z.looseObject({ name: nonEmptyString(), labels: z.record(z.string(), z.string()).optional(), trafficPolicy: trafficPolicy().optional() }))
      .optional(),
    exportTo: z.array(z.string()).optional(),
    workloadSelector: workloadSelector().optional(),
  })
  .superRefine((spec, ctx) => {
    if (!Array.isArray(spec.subsets)) return;
    const seen = new Map<string, number>();
    spec.subsets.forEach((s, i) => {
      if (!s || typeof s.name !== 'string') return;
      const first = seen.get(s.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['subsets', i, 'name'], message: `duplicate subset name ${show(s.name)} (also subsets[${first}])` });
      else seen.set(s.name, i);
    });
  }, ALWAYS);

export const destinationRuleSchema = z.looseObject({
  apiVersion: z.enum(NETWORKING_VERSIONS),
  kind: z.literal('DestinationRule'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: destinationRuleSpec,
});

/** Istio StringMatch: exactly one of exact, prefix, regex. */
const stringMatch = () =>
  z
    .looseObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() })
    .superRefine((m, ctx) => {
      const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
      if (set.length !== 1) {
        ctx.addIssue({ code: 'custom', message: `must set exactly one of exact, prefix or regex, found ${set.length === 0 ? 'none' : set.join(' and ')}` });
      }
      if (typeof m.regex === 'string') {
        try {
          new RegExp(m.regex);
        } catch {
          ctx.addIssue({ code: 'custom', path: ['regex'], message: `invalid regular expression ${show(m.regex)}` });
        }
      }
    }, ALWAYS);

const destination = () => z.looseObject({ host: nonEmptyString(), subset: z.string().optional(), port: portSelector().optional() });
const routeDestinations = () => z.array(z.looseObject({ destination: destination(), weight: z.int().min(0).optional() }));

const httpRoute = z
  .looseObject({
    name: z.string().optional(),
    match: z
      .array(
        z.looseObject({
          name: z.string().optional(),
          uri: stringMatch().optional(),
          method: stringMatch().optional(),
          authority: stringMatch().optional(),
          headers: z.record(z.string(), stringMatch()).optional(),
          queryParams: z.record(z.string(), stringMatch()).optional(),
          port: port().optional(),
          sourceLabels: z.record(z.string(), z.string()).optional(),
        }),
      )
      .optional(),
    route: routeDestinations().optional(),
    redirect: z.looseObject({}).optional(),
    directResponse: z.looseObject({ status: z.int().min(200).max(599) }).optional(),
    delegate: z.looseObject({ name: nonEmptyString(), namespace: z.string().optional() }).optional(),
    timeout: duration().optional(),
    retries: z.looseObject({ attempts: z.int().min(0).optional(), perTryTimeout: duration().optional(), retryOn: z.string().optional() }).optional(),
  })
  .superRefine((r, ctx) => {
    // A delegate VirtualService supplies the routes, so it counts as the action here.
    const actions = (['route', 'redirect', 'directResponse', 'delegate'] as const).filter((k) => r[k] !== undefined);
    if (actions.length === 0) ctx.addIssue({ code: 'custom', message: 'HTTP route, redirect or direct response is required' });
    else if (actions.length > 1) ctx.addIssue({ code: 'custom', path: [actions[1]!], message: `only one of ${actions.join(' and ')} may be set` });
  }, ALWAYS);

const virtualServiceSpec = z.looseObject({
  hosts: z.array(nonEmptyString()).optional(),
  gateways: z.array(z.string()).optional(),
  http: z.array(httpRoute).optional(),
  tcp: z.array(z.looseObject({ match: z.array(z.looseObject({ port: port().optional() })).optional(), route: routeDestinations().optional() })).optional(),
  tls: z
    .array(z.looseObject({ match: z.array(z.looseObject({ sniHosts: z.array(nonEmptyString()).min(1), port: port().optional() })), route: routeDestinations().optional() }))
    .optional(),
  exportTo: z.array(z.string()).optional(),
});

export const virtualServiceSchema = z.looseObject({
  apiVersion: z.enum(NETWORKING_VERSIONS),
  kind: z.literal('VirtualService'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: virtualServiceSpec,
});
