// networking.istio.io (v1, v1beta1 and v1alpha3 share one schema): DestinationRule, VirtualService, ServiceEntry and
// WorkloadEntry. Only the
// parts a waypoint reads are typed, with the checks the CRDs and istiod's webhook (pkg/config/validation) make; the
// rest of each spec is carried through for later use.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseCidr } from '../../common/ip.js';
import { isDNS1123Label } from '../kube-validation.js';
import { GRPC_STATUS_CODES } from '../../common/grpc-status.js';
import { parseDuration } from '../../common/settings.js';
import { ALWAYS, duration, durationProblem, isRecord, labelMap, nonEmptyString, objectMeta, port, show, workloadSelector } from './common.js';

export const NETWORKING_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;

const portSelector = () => z.looseObject({ number: port() });

const uint32 = () => z.int().min(0).max(4294967295);
const percent = () => z.int().min(0).max(100);

/** Exactly like Envoy's (and so istiod's) check of a maglev table size. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let f = 3; f * f <= x; f += 2) if (x % f === 0) return false;
  return true;
}

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const;

/** LoadBalancerSettings.ConsistentHashLB: at most one hash key and one of ringHash/maglev (the CRD's oneOfs), istiod's maglev checks. */
const consistentHash = () =>
  z
    .looseObject({
      httpHeaderName: z.string().optional(),
      httpCookie: z.looseObject({ name: nonEmptyString(), path: z.string().optional(), ttl: duration().optional() }).optional(),
      useSourceIp: z.boolean().optional(),
      httpQueryParameterName: z.string().optional(),
      ringHash: z.looseObject({ minimumRingSize: z.int().min(0).optional() }).optional(),
      maglev: z.looseObject({ tableSize: z.int().min(0).optional() }).optional(),
      minimumRingSize: z.int().min(0).optional(),
    })
    .superRefine((h, ctx) => {
      const keys = HASH_KEYS.filter((k) => h[k] !== undefined);
      if (keys.length > 1) ctx.addIssue({ code: 'custom', path: [keys[1]!], message: `only one of ${HASH_KEYS.join(', ')} may be set, found ${keys.join(' and ')}` });
      if (h.ringHash !== undefined && h.maglev !== undefined) ctx.addIssue({ code: 'custom', path: ['maglev'], message: 'only one of ringHash or maglev may be set' });
      if (h.minimumRingSize && (h.ringHash !== undefined || h.maglev !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['minimumRingSize'], message: 'only one of MinimumRingSize or Maglev/Ringhash can be specified' });
      }
      const size = h.maglev?.tableSize;
      if (h.maglev !== undefined && (size === undefined || Number.isInteger(size))) {
        const path = ['maglev', 'tableSize'];
        if (!size) ctx.addIssue({ code: 'custom', path, message: 'tableSize must be set for maglev' });
        else if (size >= 5000011) ctx.addIssue({ code: 'custom', path, message: `tableSize must be less than 5000011 for maglev, found ${size}` });
        else if (!isPrime(size)) ctx.addIssue({ code: 'custom', path, message: `tableSize must be a prime number for maglev, found ${size}` });
      }
    }, ALWAYS);

const TOPOLOGY_LABELS = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];

/** `region[/zone[/subzone]]`, a single trailing `*` allowed (istiod's validateLocalities, without its overlap check). */
function localityProblem(locality: string): string | undefined {
  const stars = locality.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) return `locality ${show(locality)} wildcard '*' number can not exceed 1 and must be in the end`;
  if (locality.split('/').slice(0, 3).some((p) => p === '')) return `locality ${show(locality)} must not contain empty region/zone/subzone info`;
  return undefined;
}

/** LocalityLoadBalancerSetting as istiod's ValidateLocalityLbSetting checks it (the warning without outlier detection is in lint). */
const localityLbSetting = () =>
  z
    .looseObject({
      enabled: z.boolean().optional(),
      distribute: z.array(z.looseObject({ from: z.string().optional(), to: z.record(z.string(), uint32()).optional() })).optional(),
      failover: z.array(z.looseObject({ from: z.string().optional(), to: z.string().optional() })).optional(),
      failoverPriority: z.array(z.string()).optional(),
    })
    .superRefine((lb, ctx) => {
      const distribute = Array.isArray(lb.distribute) ? lb.distribute : [];
      const failover = Array.isArray(lb.failover) ? lb.failover : [];
      if (distribute.length > 0 && failover.length > 0) {
        ctx.addIssue({ code: 'custom', path: ['failover'], message: "can not simultaneously specify 'distribute' and 'failover'" });
        return;
      }
      if (failover.length > 0 && Array.isArray(lb.failoverPriority)) {
        const topology = lb.failoverPriority.find((l) => TOPOLOGY_LABELS.includes(l));
        if (topology !== undefined) ctx.addIssue({ code: 'custom', path: ['failoverPriority'], message: `can not simultaneously set 'failover' and topology label '${topology}' in 'failover_priority'` });
      }
      distribute.forEach((d, i) => {
        if (!isRecord(d)) return;
        const to = isRecord(d.to) ? d.to : {};
        const weights = Object.values(to).filter((w): w is number => typeof w === 'number');
        if (weights.some((w) => w < 1 || w > 100)) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'to'], message: 'locality weight must be in range [1, 100]' });
        else if (weights.reduce((a, b) => a + b, 0) !== 100) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'to'], message: `total locality weight ${weights.reduce((a, b) => a + b, 0)} != 100` });
        for (const [at, loc] of [['from', d.from] as const, ...Object.keys(to).map((k) => [k, k] as const)]) {
          const problem = typeof loc === 'string' ? localityProblem(loc) : undefined;
          if (problem) ctx.addIssue({ code: 'custom', path: at === 'from' ? ['distribute', i, 'from'] : ['distribute', i, 'to', at], message: problem });
        }
      });
      failover.forEach((f, i) => {
        if (!isRecord(f)) return;
        const path = ['failover', i];
        const ends = [f.from, f.to].map((e) => (typeof e === 'string' ? e : ''));
        if (f.from === f.to) ctx.addIssue({ code: 'custom', path, message: 'locality lb failover settings must specify different regions' });
        if (ends.some((e) => e.includes('/'))) ctx.addIssue({ code: 'custom', path, message: 'locality lb failover only specify region' });
        if (ends.some((e) => e.includes('*'))) ctx.addIssue({ code: 'custom', path, message: "locality lb failover region should not contain '*' wildcard" });
      });
    }, ALWAYS);

const loadBalancer = () =>
  z
    .looseObject({
      simple: z.enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']).optional(),
      consistentHash: consistentHash().optional(),
      localityLbSetting: localityLbSetting().optional(),
      warmupDurationSecs: duration().optional(),
      warmup: z
        .looseObject({ duration: duration(), minimumPercent: z.number().min(0).max(100).optional(), aggression: z.number().positive({ error: 'aggression should be greater than 0' }).optional() })
        .optional(),
    })
    .superRefine((lb, ctx) => {
      if (lb.simple !== undefined && lb.consistentHash !== undefined) ctx.addIssue({ code: 'custom', path: ['consistentHash'], message: 'only one of simple or consistentHash may be set' });
      if (lb.localityLbSetting !== undefined && lb.zoneAwareLbSetting !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['zoneAwareLbSetting'], message: 'only one of localityLbSetting and zoneAwareLbSetting can be set' });
      }
    }, ALWAYS);

const connectionPool = () =>
  z
    .looseObject({
      tcp: z
        .looseObject({
          maxConnections: z.int().min(0).optional(),
          connectTimeout: duration().optional(),
          // 0s turns the idle timeout off.
          idleTimeout: duration().optional(),
          maxConnectionDuration: duration().optional(),
          tcpKeepalive: z.looseObject({ probes: uint32().optional(), time: duration().optional(), interval: duration().optional() }).optional(),
        })
        .optional(),
      http: z
        .looseObject({
          http1MaxPendingRequests: z.int().min(0).optional(),
          http2MaxRequests: z.int().min(0).optional(),
          maxRequestsPerConnection: z.int().min(0).optional(),
          maxRetries: z.int().min(0).optional(),
          idleTimeout: duration().optional(),
          h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
          useClientProtocol: z.boolean().optional(),
          maxConcurrentStreams: z.int().min(0).optional(),
        })
        .superRefine((h, ctx) => {
          if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol === true) {
            ctx.addIssue({ code: 'custom', path: ['useClientProtocol'], message: 'use client protocol must not be true when H2UpgradePolicy is UPGRADE' });
          }
        }, ALWAYS)
        .optional(),
    })
    .superRefine((cp, ctx) => {
      if (cp.tcp === undefined && cp.http === undefined) ctx.addIssue({ code: 'custom', message: 'connection pool must have at least one field' });
    }, ALWAYS);

const outlierDetection = () =>
  z
    .looseObject({
      consecutive5xxErrors: uint32().optional(),
      // Deprecated and not read by istiod (a warning in lint).
      consecutiveErrors: z.int().optional(),
      consecutiveGatewayErrors: uint32().optional(),
      consecutiveLocalOriginFailures: uint32().optional(),
      splitExternalLocalOriginErrors: z.boolean().optional(),
      interval: duration().optional(),
      baseEjectionTime: duration().optional(),
      maxEjectionPercent: percent().optional(),
      minHealthPercent: percent().optional(),
    })
    .superRefine((od, ctx) => {
      if (od.splitExternalLocalOriginErrors !== true && typeof od.consecutiveLocalOriginFailures === 'number' && od.consecutiveLocalOriginFailures > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['consecutiveLocalOriginFailures'],
          message: 'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false',
        });
      }
    }, ALWAYS);

/** ClientTLSSettings with istiod's ValidateTLS. */
const clientTls = () =>
  z
    .looseObject({
      mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
      sni: z.string().optional(),
      subjectAltNames: z.array(z.string()).optional(),
      caCertificates: z.string().optional(),
      clientCertificate: z.string().optional(),
      privateKey: z.string().optional(),
      credentialName: z.string().optional(),
      insecureSkipVerify: z.boolean().optional(),
      caCrl: z.string().optional(),
    })
    .superRefine((tls, ctx) => {
      const originating = tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL';
      const sans = (tls.subjectAltNames?.length ?? 0) > 0;
      if (tls.insecureSkipVerify === true) {
        if (tls.mode === 'SIMPLE' && (tls.caCertificates || tls.credentialName || sans)) {
          ctx.addIssue({ code: 'custom', path: ['insecureSkipVerify'], message: 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true' });
        }
        if (tls.mode === 'MUTUAL' && (tls.caCertificates || sans)) {
          ctx.addIssue({ code: 'custom', path: ['insecureSkipVerify'], message: 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true' });
        }
      }
      if (originating && tls.credentialName) {
        if (tls.clientCertificate || tls.caCertificates || tls.privateKey || tls.caCrl) {
          ctx.addIssue({ code: 'custom', path: ['credentialName'], message: 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set' });
        }
        return;
      }
      if (tls.mode === 'MUTUAL') {
        if (!tls.clientCertificate) ctx.addIssue({ code: 'custom', path: ['clientCertificate'], message: 'client certificate required for mutual tls' });
        if (!tls.privateKey) ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'private key required for mutual tls' });
      }
    }, ALWAYS);

const PORT_POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;
const POLICY_FIELDS = [...PORT_POLICY_FIELDS, 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] as const;

const trafficPolicyFields = {
  loadBalancer: loadBalancer().optional(),
  connectionPool: connectionPool().optional(),
  outlierDetection: outlierDetection().optional(),
  tls: clientTls().optional(),
};

/** istiod's validateTrafficPolicy and validatePortTrafficPolicies: no empty policies. */
const trafficPolicy = () =>
  z
    .looseObject({
      ...trafficPolicyFields,
      portLevelSettings: z
        .array(
          z
            .looseObject({ ...trafficPolicyFields, port: portSelector() })
            .superRefine((p, ctx) => {
              if (PORT_POLICY_FIELDS.every((f) => p[f] === undefined)) ctx.addIssue({ code: 'custom', message: 'port traffic policy must have at least one field' });
            }, ALWAYS),
        )
        .max(4096)
        .optional(),
    })
    .superRefine((p, ctx) => {
      if (POLICY_FIELDS.every((f) => p[f] === undefined)) ctx.addIssue({ code: 'custom', message: 'traffic policy must have at least one field' });
      if (p.tunnel !== undefined && p.proxyProtocol !== undefined) ctx.addIssue({ code: 'custom', path: ['proxyProtocol'], message: 'tunnel and proxyProtocol must not be set together' });
    }, ALWAYS);

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

/** istiod's validatePercentage. */
const percentage = () =>
  z.looseObject({
    value: z
      .number()
      .refine((v) => v === 0 || (v >= 0.0001 && v <= 100), { error: (iss) => `percentage ${String(iss.input)} is neither 0.0, nor in range [0.0001, 100.0]` })
      .optional(),
  });

/** istiod's agent.ValidateDuration: at least 1 ms, whole milliseconds. */
const proxyDuration = () =>
  duration().superRefine((d, ctx) => {
    if (durationProblem(d) !== undefined) return;
    const ms = parseDuration(d, 'duration');
    if (ms < 1) ctx.addIssue({ code: 'custom', message: 'duration must be greater than 1ms' });
    else if (!Number.isInteger(ms)) ctx.addIssue({ code: 'custom', message: 'only durations to ms precision are supported' });
  });

/** istiod's validateHTTPFaultInjection. */
const fault = () =>
  z
    .looseObject({
      delay: z
        .looseObject({ fixedDelay: proxyDuration().optional(), exponentialDelay: proxyDuration().optional(), percentage: percentage().optional(), percent: z.int().min(0).max(100).optional() })
        .optional(),
      abort: z
        .looseObject({
          httpStatus: z
            .int()
            .refine((v) => v >= 200 && v <= 600, { error: (iss) => `HTTP status ${String(iss.input)} is not in range 200-599` })
            .optional(),
          grpcStatus: z
            .string()
            .refine((v) => v in GRPC_STATUS_CODES, {
              error: (iss) => `gRPC status ${JSON.stringify(iss.input)} is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`,
            })
            .optional(),
          http2Error: z.string().optional(),
          percentage: percentage().optional(),
        })
        .optional(),
    })
    .superRefine((f, ctx) => {
      if (f.abort === undefined && f.delay === undefined) ctx.addIssue({ code: 'custom', message: 'HTTP fault injection must have an abort and/or a delay' });
      if (f.abort?.http2Error !== undefined) ctx.addIssue({ code: 'custom', path: ['abort', 'http2Error'], message: 'HTTP/2 abort fault injection not supported yet' });
      if (f.delay?.exponentialDelay !== undefined) ctx.addIssue({ code: 'custom', path: ['delay', 'exponentialDelay'], message: 'exponentialDelay not supported yet' });
    }, ALWAYS);

const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const HEADER_NAME = /^[-_A-Za-z0-9]+$/;

/** istiod's validateCORSPolicy. */
const corsPolicy = () =>
  z.looseObject({
    allowOrigins: z
      .array(
        stringMatch().superRefine((m, ctx) => {
          if ((m.exact ?? m.prefix ?? m.regex) === '') ctx.addIssue({ code: 'custom', message: "'' is not a valid match type for CORS allow origins" });
        }, ALWAYS),
      )
      .optional(),
    allowOrigin: z.array(z.string()).optional(),
    allowMethods: z.array(z.string().refine((m) => CORS_METHODS.has(m), { error: (iss) => `${JSON.stringify(iss.input)} is not a supported HTTP method` })).optional(),
    allowHeaders: z.array(corsHeaderName()).optional(),
    exposeHeaders: z.array(corsHeaderName()).optional(),
    maxAge: proxyDuration()
      .refine((d) => durationProblem(d) !== undefined || parseDuration(d, 'maxAge') % 1000 === 0, { error: 'max_age duration is accurate only to seconds precision' })
      .optional(),
    allowCredentials: z.boolean().optional(),
    unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).optional(),
  });

function corsHeaderName() {
  return z.string().superRefine((n, ctx) => {
    if (n === '') ctx.addIssue({ code: 'custom', message: 'header name cannot be empty' });
    else if (n !== '*' && !HEADER_NAME.test(n)) ctx.addIssue({ code: 'custom', message: `header name ${n} is not a valid header name` });
  });
}

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
          scheme: stringMatch().optional(),
          headers: z.record(z.string(), stringMatch()).optional(),
          withoutHeaders: z.record(z.string(), stringMatch()).optional(),
          ignoreUriCase: z.boolean().optional(),
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
    fault: fault().optional(),
    corsPolicy: corsPolicy().optional(),
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

// ---- ServiceEntry and WorkloadEntry (istiod's ValidateServiceEntry and ValidateWorkloadEntry) ---------------------

const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;
/** Istio's protocol names (protocol.Parse), matched without regard to case. */
const PROTOCOLS = new Set(['grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tcp', 'tls', 'udp', 'mongo', 'redis', 'mysql']);

/** istiod's ValidateDNS1123Labels: RFC 1123 labels (a trailing dot allowed), a top-level label not all digits. */
function dnsLabelsProblem(domain: string): string | undefined {
  const parts = domain.split('.');
  const top = parts[parts.length - 1]!;
  if (/^[+-]?[0-9]+$/.test(top)) return `domain name ${JSON.stringify(domain)} invalid (top level domain ${JSON.stringify(top)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    if (i === parts.length - 1 && label === '') continue;
    if (isDNS1123Label(label).length > 0) return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(label)} invalid)`;
  }
  return undefined;
}

function domainPreconditionProblem(name: string): string | undefined {
  if (name.length > 255) return `domain name ${JSON.stringify(name)} too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

/** istiod's ValidateFQDN. */
function fqdnProblem(name: string): string | undefined {
  return domainPreconditionProblem(name) ?? dnsLabelsProblem(name);
}

/** istiod's ValidateWildcardDomain: a wildcard only as (or in) the first label. */
function wildcardDomainProblem(name: string): string | undefined {
  const pre = domainPreconditionProblem(name);
  if (pre !== undefined) return pre;
  const dot = name.indexOf('.');
  const first = dot < 0 ? name : name.slice(0, dot);
  if (first !== '*' && isDNS1123Label(first.startsWith('*') ? first.slice(1) || 'a' : first).length > 0) {
    return `domain name ${JSON.stringify(name)} invalid (label ${JSON.stringify(first)} invalid)`;
  }
  return dot < 0 ? undefined : dnsLabelsProblem(name.slice(dot + 1));
}

/** istiod's ValidateIPSubnet: an IP, or a CIDR when there is one `/`. */
function ipOrCidrProblem(v: string): string | undefined {
  if (v.split('/').length === 2) return parseCidr(v) === undefined ? `${v} is not a valid CIDR block` : undefined;
  return isIP(v) === 0 ? `${v} is not a valid IP` : undefined;
}

const portNameProblem = (name: string): string | undefined => (isDNS1123Label(name).length > 0 ? `invalid port name: ${name}` : undefined);
const portNumberProblem = (n: number): string | undefined => (n >= 1 && n <= 65535 ? undefined : `port number ${n} must be in the range 1..65535`);

const workloadEntrySpecShape = {
  address: z.string().optional(),
  ports: z.record(z.string(), z.int()).optional(),
  labels: labelMap().optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: z.int().min(0).max(4294967295).optional(),
  serviceAccount: z.string().optional(),
};

type EndpointShape = { address?: string | undefined; ports?: Record<string, number> | undefined; network?: string | undefined };

/**
 * istiod's validateWorkloadEntry: an address (unless a network is given), an IP or (when `allowFqdn`) a DNS name or a
 * `unix://` path; port names in `servicePorts` when known, valid names and numbers.
 */
function workloadEntryIssues(we: EndpointShape, servicePorts: Set<string> | undefined, allowFqdn: boolean, path: (string | number)[], ctx: z.RefinementCtx): void {
  const error = (message: string, at: (string | number)[] = []) => ctx.addIssue({ code: 'custom', path: [...path, ...at], message });
  const address = we.address ?? '';
  if (address === '') {
    if ((we.network ?? '') === '') error('address is required', ['address']);
  } else if (address.startsWith('unix://')) {
    if (Object.keys(we.ports ?? {}).length > 0) error(`unix endpoint ${address} must not include ports`, ['ports']);
  } else if (isIP(address) === 0) {
    if (!allowFqdn) error(`endpoint address ${JSON.stringify(address)} is not a valid IP address`, ['address']);
    else if (fqdnProblem(address) !== undefined) error(`endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`, ['address']);
  }
  for (const [name, n] of Object.entries(we.ports ?? {})) {
    if (servicePorts !== undefined && !servicePorts.has(name)) error(`endpoint port ${n} is not defined by the service entry`, ['ports', name]);
    for (const problem of [portNameProblem(name), portNumberProblem(n)]) if (problem) error(problem, ['ports', name]);
  }
}

const serviceEntrySpec = z
  .looseObject({
    hosts: z.array(z.string()),
    addresses: z.array(z.string()).optional(),
    ports: z
      .array(z.looseObject({ number: z.int(), protocol: z.string().optional(), name: z.string(), targetPort: z.int().min(0).optional() }))
      .optional(),
    location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
    resolution: z.enum(RESOLUTIONS).optional(),
    endpoints: z.array(z.looseObject(workloadEntrySpecShape)).optional(),
    workloadSelector: z.looseObject({ labels: labelMap().optional() }).optional(),
    exportTo: z.array(z.string()).optional(),
    subjectAltNames: z.array(z.string()).optional(),
  })
  .superRefine((spec, ctx) => {
    const error = (message: string, path: (string | number)[] = []) => ctx.addIssue({ code: 'custom', path, message });
    const resolution = spec.resolution ?? 'NONE';
    const hosts = Array.isArray(spec.hosts) ? spec.hosts : [];
    const addresses = spec.addresses ?? [];
    const endpoints = spec.endpoints ?? [];
    if (spec.workloadSelector !== undefined && spec.endpoints !== undefined) error('only one of WorkloadSelector or Endpoints is allowed in Service Entry', ['workloadSelector']);
    if (hosts.length === 0) error('service entry must have at least one host', ['hosts']);
    hosts.forEach((h, i) => {
      if (typeof h !== 'string') return;
      const problem = h === '*' ? `invalid host ${h}` : wildcardDomainProblem(h);
      if (problem) error(problem, ['hosts', i]);
    });
    addresses.forEach((a, i) => {
      const problem = typeof a === 'string' ? ipOrCidrProblem(a) : undefined;
      if (problem) error(problem, ['addresses', i]);
    });
    if (addresses.some((a) => typeof a === 'string' && a.includes('/')) && resolution !== 'NONE' && resolution !== 'STATIC') {
      error('CIDR addresses are allowed only for NONE/STATIC resolution types', ['addresses']);
    }
    const names = new Set<string>();
    const numbers = new Set<number>();
    (spec.ports ?? []).forEach((p, i) => {
      if (typeof p?.name !== 'string' || typeof p.number !== 'number') return;
      if (names.has(p.name)) error(`service entry port name ${JSON.stringify(p.name)} already defined`, ['ports', i, 'name']);
      if (numbers.has(p.number)) error(`service entry port ${p.number} already defined`, ['ports', i, 'number']);
      names.add(p.name);
      numbers.add(p.number);
      const targetProblem = p.targetPort ? portNumberProblem(p.targetPort) : undefined;
      if (targetProblem) error(targetProblem, ['ports', i, 'targetPort']);
      const nameProblem = portNameProblem(p.name);
      if (nameProblem) error(nameProblem, ['ports', i, 'name']);
      if (p.protocol !== undefined && p.protocol !== '' && !PROTOCOLS.has(p.protocol.toLowerCase())) error(`unsupported protocol: ${p.protocol}`, ['ports', i, 'protocol']);
      const numberProblem = portNumberProblem(p.number);
      if (numberProblem) error(numberProblem, ['ports', i, 'number']);
    });
    switch (resolution) {
      case 'NONE':
        if (endpoints.length > 0) error('no endpoints should be provided for resolution type none', ['endpoints']);
        break;
      case 'STATIC':
        endpoints.forEach((ep, i) => workloadEntryIssues(ep, names, false, ['endpoints', i], ctx));
        break;
      case 'DNS':
      case 'DNS_ROUND_ROBIN':
        if (endpoints.length === 0) {
          const problem = hosts.map((h) => (typeof h === 'string' ? fqdnProblem(h) : undefined)).find((p) => p !== undefined);
          if (problem) error(`hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}, ${problem}`, ['hosts']);
        }
        if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) error(`there must only be 0 or 1 endpoint for resolution mode ${resolution}`, ['endpoints']);
        endpoints.forEach((ep, i) => {
          const address = ep.address ?? '';
          if (isIP(address) === 0 && fqdnProblem(address) !== undefined) error(`endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`, ['endpoints', i, 'address']);
          for (const [name, n] of Object.entries(ep.ports ?? {})) {
            if (!names.has(name)) error(`endpoint port ${n} is not defined by the service entry`, ['endpoints', i, 'ports', name]);
            for (const problem of [portNameProblem(name), portNumberProblem(n)]) if (problem) error(problem, ['endpoints', i, 'ports', name]);
          }
        });
        break;
      case 'DYNAMIC_DNS':
        hosts.forEach((h, i) => {
          if (typeof h === 'string' && !h.startsWith('*')) error(`host must be wildcarded for resolution mode ${resolution}`, ['hosts', i]);
        });
        if (addresses.length > 0) error(`addresses cannot be set for resolution type ${resolution}. HTTP route domains will only be generatedfrom the hosts field values`, ['addresses']);
        if (endpoints.length > 0) error(`endpoints cannot be set for resolution type ${resolution}. Destination IP address determined from hostsfield values`, ['endpoints']);
        break;
    }
  }, ALWAYS);

export const serviceEntrySchema = z.looseObject({
  apiVersion: z.enum(NETWORKING_VERSIONS),
  kind: z.literal('ServiceEntry'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: serviceEntrySpec,
  status: z.looseObject({ addresses: z.array(z.looseObject({ host: z.string().optional(), value: z.string() })).optional() }).optional(),
});

export const workloadEntrySchema = z.looseObject({
  apiVersion: z.enum(NETWORKING_VERSIONS),
  kind: z.literal('WorkloadEntry'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: z.looseObject(workloadEntrySpecShape).superRefine((we, ctx) => workloadEntryIssues(we, undefined, true, [], ctx), ALWAYS),
});
