// security.istio.io (v1 and v1beta1 share one schema): AuthorizationPolicy, PeerAuthentication,
// RequestAuthentication. Rules are the CRD's (OpenAPI + CEL) plus the checks istiod's validation webhook makes,
// with their wording where users grep for it.
import { z } from 'zod';
import {
  ALWAYS,
  checkTargetOneOf,
  duration,
  nonEmptyString,
  objectMeta,
  policyTargetReference,
  show,
  workloadSelector,
} from './common.js';

export const SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;

// The CRD types these lists as plain strings; value syntax (IPs, port numbers, non-empty) is only checked by
// istiod's webhook and reported as warnings by ../lint.ts, because istiod also has defined behaviour for such
// values when they reach it (the rule is dropped for ALLOW and widened for DENY).
const values = () => z.array(z.string());

const serviceAccountEntry = () =>
  z
    .string()
    .min(1, { error: 'must not be empty' })
    .max(320)
    .refine((s) => !s.includes('*'), { error: (i) => `wildcards are not supported in serviceAccounts, found ${show(i.input)}` })
    .refine((s) => s.split('/').length <= 2, { error: (i) => `must be "<namespace>/<serviceaccount>" or "<serviceaccount>", found ${show(i.input)}` });

const source = z
  .looseObject({
    principals: values().optional(),
    notPrincipals: values().optional(),
    requestPrincipals: values().optional(),
    notRequestPrincipals: values().optional(),
    namespaces: values().optional(),
    notNamespaces: values().optional(),
    serviceAccounts: z.array(serviceAccountEntry()).max(16).optional(),
    notServiceAccounts: z.array(serviceAccountEntry()).max(16).optional(),
    ipBlocks: values().optional(),
    notIpBlocks: values().optional(),
    remoteIpBlocks: values().optional(),
    notRemoteIpBlocks: values().optional(),
    trustDomains: values().optional(),
    notTrustDomains: values().optional(),
  })
  .superRefine((src, ctx) => {
    // serviceAccounts is an alternative spelling of the identity match, so mixing it with principals/namespaces
    // would make the rule ambiguous; the CRD rejects it.
    const sa = (['serviceAccounts', 'notServiceAccounts'] as const).find((k) => src[k] !== undefined);
    const other = (['principals', 'notPrincipals', 'namespaces', 'notNamespaces'] as const).some((k) => src[k] !== undefined);
    if (sa && other) ctx.addIssue({ code: 'custom', path: [sa], message: 'Cannot set serviceAccounts with namespaces or principals' });
  }, ALWAYS);

const operation = z.looseObject({
  hosts: values().optional(),
  notHosts: values().optional(),
  ports: values().optional(),
  notPorts: values().optional(),
  methods: values().optional(),
  notMethods: values().optional(),
  paths: values().optional(),
  notPaths: values().optional(),
});

const condition = z
  .looseObject({
    key: z.string().min(1, { error: '`key` must not be empty' }),
    values: values().optional(),
    notValues: values().optional(),
  })
  .superRefine((c, ctx) => {
    if (typeof c.key !== 'string' || c.key === '') return;
    if (!c.values?.length && !c.notValues?.length) {
      ctx.addIssue({ code: 'custom', path: [], message: `at least one of \`values\` or \`notValues\` must be set for key ${c.key}` });
    }
  }, ALWAYS);

const rule = z.looseObject({
  from: z.array(z.looseObject({ source: source })).max(512).optional(),
  to: z.array(z.looseObject({ operation: operation })).optional(),
  when: z.array(condition).optional(),
});

const authorizationPolicySpec = z
  .looseObject({
    selector: workloadSelector().optional(),
    targetRef: policyTargetReference().optional(),
    targetRefs: z.array(policyTargetReference()).max(16).optional(),
    action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
    provider: z.looseObject({ name: z.string().optional() }).optional(),
    rules: z.array(rule).max(512).optional(),
  })
  .superRefine((spec, ctx) => {
    checkTargetOneOf(spec, ctx);
    const action = spec.action ?? 'ALLOW';
    if (spec.provider !== undefined && action !== 'CUSTOM') {
      ctx.addIssue({ code: 'custom', path: ['provider'], message: `\`provider\` must not be with non CUSTOM action, found ${action}` });
    }
    if (action === 'CUSTOM' && (!spec.provider || !spec.provider.name)) {
      ctx.addIssue({ code: 'custom', path: spec.provider ? ['provider', 'name'] : ['action'], message: '`provider.name` must not be empty' });
    }
  }, ALWAYS);

const statusCondition = z.looseObject({ type: z.string() });

export const authorizationPolicySchema = z.looseObject({
  apiVersion: z.enum(SECURITY_VERSIONS),
  kind: z.literal('AuthorizationPolicy'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: authorizationPolicySpec.default({}),
  status: z.looseObject({ conditions: z.array(statusCondition).optional() }).optional(),
});

const mtlsMode = () => z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']);

const peerAuthenticationSpec = z
  .looseObject({
    selector: workloadSelector().optional(),
    mtls: z.looseObject({ mode: mtlsMode().optional() }).optional(),
    portLevelMtls: z
      .record(
        z.string().refine((k) => /^\d+$/.test(k) && Number(k) >= 1 && Number(k) <= 65535, { error: 'port must be between 1-65535' }),
        z.looseObject({ mode: mtlsMode().optional() }),
      )
      .refine((m) => Object.keys(m).length > 0, { error: 'must have at least one port when set' })
      .optional(),
  })
  .superRefine((spec, ctx) => {
    const labels = spec.selector?.matchLabels;
    const hasSelector = !!labels && typeof labels === 'object' && Object.keys(labels).length > 0;
    if (spec.portLevelMtls !== undefined && !hasSelector) {
      ctx.addIssue({ code: 'custom', path: ['portLevelMtls'], message: 'portLevelMtls requires selector' });
    }
  }, ALWAYS);

export const peerAuthenticationSchema = z.looseObject({
  apiVersion: z.enum(SECURITY_VERSIONS),
  kind: z.literal('PeerAuthentication'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: peerAuthenticationSpec.default({}),
});

const jwtRule = z
  .looseObject({
    issuer: z.string().min(1, { error: 'must not be empty' }),
    audiences: values().optional(),
    jwksUri: z
      .string()
      .max(2048)
      .refine((u) => /^https?:\/\/[^/]/.test(u), { error: (i) => `must be an http:// or https:// URL, found ${show(i.input)}` })
      .optional(),
    jwks: z.string().optional(),
    fromHeaders: z.array(z.looseObject({ name: nonEmptyString(), prefix: z.string().optional() })).optional(),
    fromParams: values().optional(),
    fromCookies: values().optional(),
    outputPayloadToHeader: z.string().optional(),
    forwardOriginalToken: z.boolean().optional(),
    outputClaimToHeaders: z
      .array(
        z.looseObject({
          header: z.string().regex(/^[-_A-Za-z0-9]+$/, { error: (i) => `must be an HTTP header name (letters, digits, '-' and '_'), found ${show(i.input)}` }),
          claim: nonEmptyString(),
        }),
      )
      .optional(),
    timeout: duration().optional(),
    spaceDelimitedClaims: values().max(64).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.jwks !== undefined && r.jwksUri !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'only one of jwks or jwksUri can be set' });
    }
  }, ALWAYS);

const requestAuthenticationSpec = z
  .looseObject({
    selector: workloadSelector().optional(),
    targetRef: policyTargetReference().optional(),
    targetRefs: z.array(policyTargetReference()).max(16).optional(),
    jwtRules: z.array(jwtRule).max(4096).optional(),
  })
  .superRefine(checkTargetOneOf, ALWAYS);

export const requestAuthenticationSchema = z.looseObject({
  apiVersion: z.enum(SECURITY_VERSIONS),
  kind: z.literal('RequestAuthentication'),
  metadata: objectMeta('dns1123-subdomain'),
  spec: requestAuthenticationSpec.default({}),
});
